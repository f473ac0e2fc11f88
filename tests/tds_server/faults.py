"""Faults a test plans on the server: drop the connection after N rows of a result, or stall a query."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .packets import ResponseWriter
    from .session import Session


@dataclass
class Fault:
    match: str  # a piece of the statement text (case-insensitive) the fault applies to
    action: Literal["drop", "stall"]
    after_rows: int = 0
    times: int = 1  # how many results it hits; then it is spent
    stall_seconds: float = 30.0

    def apply(self, session: Session, writer: ResponseWriter, rows_sent: int) -> None:
        if rows_sent < self.after_rows or not session.server.faults.spend(self):
            return
        if self.action == "drop":
            writer.finish_partial()  # the rows so far really leave, then the connection goes
            session.drop()
        else:
            writer.finish_partial()
            session.wait_for_attention(self.stall_seconds)


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._planned: list[Fault] = []
        self.hits = 0

    def plan(self, fault: Fault) -> Fault:
        with self._lock:
            self._planned.append(fault)
        return fault

    def drop_after(self, rows: int, *, match: str, times: int = 1) -> Fault:
        """The next ``times`` results of a statement containing ``match`` lose their connection after ``rows`` rows."""
        return self.plan(Fault(match, "drop", after_rows=rows, times=times))

    def stall_after(self, rows: int, *, match: str, seconds: float = 30.0) -> Fault:
        return self.plan(Fault(match, "stall", after_rows=rows, stall_seconds=seconds))

    def clear(self) -> None:
        with self._lock:
            self._planned.clear()

    def for_query(self, text: str) -> Fault | None:
        """The fault planned for this statement, if any (it is spent only when it fires: a short result passes)."""
        lowered = text.lower()
        with self._lock:
            return next((fault for fault in self._planned if fault.match.lower() in lowered), None)

    def spend(self, fault: Fault) -> bool:
        """Use up one of ``fault.times``; False when another session spent the last one first."""
        with self._lock:
            if fault not in self._planned:
                return False
            fault.times -= 1
            if fault.times <= 0:
                self._planned.remove(fault)
            self.hits += 1
            return True

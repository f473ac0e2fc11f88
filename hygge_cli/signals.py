"""SIGINT and SIGTERM during ``hygge start``: stop the run, keep every previous version, exit 130 or 143.

Two owners handle these signals in turn. Outside the Dagster run, hygge's handler
raises ``Interrupted`` (a ``KeyboardInterrupt``), which ``hygge_cli.main`` turns into the
exit code. While the run executes, Dagster installs its own handlers (SIGTERM mapped to
SIGINT): the executor forwards the interrupt to each running step, whose engine
removes its staging, and the run ends. Dagster's handlers do not say which signal
came, so a wakeup fd (``signal.set_wakeup_fd``: the interpreter writes each caught
signal's number to it, whoever's handler runs) tells a small thread, which records
the signal for the exit code and calls the listeners at once (the CLI marks the run
as canceling and says it is stopping).
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType, TracebackType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_WAKE_THREAD = 0  # not a signal number: asks the thread to end


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived while hygge's own handler was installed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


class StopSignals:
    """Context manager, entered on the main thread: which stop signal arrived first, and who to tell."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._listeners: list[Callable[[int], None]] = []
        self._lock = threading.RLock()  # re-entrant: the handler may run on the main thread while it holds the lock
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)  # set_wakeup_fd requires it; a full buffer drops bytes, never blocks
        self._thread = threading.Thread(target=self._listen, name="hygge-stop-signals", daemon=True)
        self._previous_fd = -1
        self._previous_handlers: dict[int, object] = {}

    def listen(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(signum)`` (on another thread) for the first stop signal; at once if one came already."""
        with self._lock:
            self._listeners.append(listener)
            received = self.received
        if received is not None:
            listener(received)

    @property
    def exit_code(self) -> int | None:
        return exit_code(self.received) if self.received is not None else None

    def __enter__(self) -> StopSignals:
        self._previous_handlers = {signum: signal.signal(signum, self._raise) for signum in STOP_SIGNALS}
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]  (what signal.signal returned before)
        self._writer.send(bytes([_WAKE_THREAD]))
        self._thread.join()
        self._reader.close()
        self._writer.close()

    def _raise(self, signum: int, _frame: FrameType | None) -> None:
        self._record(signum)
        raise Interrupted(signum)

    def _listen(self) -> None:
        while True:
            for signum in self._reader.recv(64):
                if signum == _WAKE_THREAD:
                    return
                if signum in STOP_SIGNALS:
                    self._record(signum)

    def _record(self, signum: int) -> None:
        with self._lock:
            if self.received is not None:
                return
            self.received = signum
            listeners = list(self._listeners)
        for listener in listeners:
            listener(signum)

"""The TDS test server: a loopback listener, one thread per connection, counters and planned faults.

Only 127.0.0.1 is ever bound. Tests use it as a context manager (``with
TdsServer(...) as server``); ``stop()`` closes the listener and every open
connection and joins their threads, so nothing outlives the test.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .engine import Engine, Rows
from .faults import Faults
from .tls import Certificate

if TYPE_CHECKING:
    from .session import Session

LOOPBACK = "127.0.0.1"
FIRST_SPID = 51


@dataclass
class Stats:
    """What the server counted; read by tests (connections opened, open now, at most at once, ...)."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    connections: int = 0
    sessions: int = 0  # successful logins
    active: int = 0
    max_active: int = 0
    failed_logins: int = 0
    attentions: int = 0
    drops: int = 0
    rows: int = 0
    encryption: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)

    def logged_in(self, session: Session) -> None:
        with self.lock:
            self.sessions += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.encryption.append(session.encryption)

    def logged_out(self, _session: Session) -> None:
        with self.lock:
            self.active -= 1

    def login_failed(self) -> None:
        with self.lock:
            self.failed_logins += 1

    def attention(self) -> None:
        with self.lock:
            self.attentions += 1

    def dropped(self) -> None:
        with self.lock:
            self.drops += 1

    def rows_sent(self, rows: int) -> None:
        with self.lock:
            self.rows += rows

    def request(self, text: str) -> None:
        with self.lock:
            self.statements.append(text)


class TdsServer:
    def __init__(
        self,
        engine: Engine,
        *,
        port: int = 0,
        logins: dict[str, str] | None = None,
        certificate: Certificate | None = None,
        access_token: str | None = None,
    ) -> None:
        self.engine = engine
        self.logins = dict(logins or {})
        self.certificate = certificate
        self.access_token = access_token
        self.stats = Stats()
        self.faults = Faults()
        self.stopping = threading.Event()
        self._listener = socket.create_server((LOOPBACK, port))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._next_spid = FIRST_SPID
        self._accept_thread = threading.Thread(target=self._accept, name=f"tds-accept-{self.port}", daemon=True)

    def start(self) -> TdsServer:
        self._accept_thread.start()
        return self

    def __enter__(self) -> TdsServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        from .session import Session

        while not self.stopping.is_set():
            try:
                sock, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                spid = self._next_spid
                self._next_spid += 1
                self._sockets.add(sock)
                self.stats.connections += 1
            session = Session(self, sock, spid)
            thread = threading.Thread(target=self._serve, args=(session, sock), name=f"tds-session-{spid}", daemon=True)
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _serve(self, session: Session, sock: socket.socket) -> None:
        try:
            session.serve()
        finally:
            with self._lock:
                self._sockets.discard(sock)

    def execute(self, sql: str) -> list[tuple]:
        """Run T-SQL on the engine from the test itself (set-up, inserts between runs); the rows of the last result."""
        session = self.engine.session(0)
        rows: list[tuple] = []
        try:
            for outcome in session.run(sql):
                if isinstance(outcome, Rows):
                    rows = [row for batch in outcome.batches for row in batch]
        finally:
            session.close()
        return rows

    def settled(self, patience: float = 30.0) -> int:
        """Sessions still open once every socket an ended client closed has been read to its EOF.

        The server learns of a close by reading, a moment after the client process is gone, so
        counting right after a run would race with the session threads; this waits (up to
        ``patience`` seconds) for the count to reach zero, and returns what is left.
        """
        deadline = time.monotonic() + patience
        while self.stats.active and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.stats.active

    def drop_all(self) -> int:
        """Close every open client connection (a server restart, as the clients see it)."""
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return len(sockets)

    def stop(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop_all()
        if self._accept_thread.is_alive():
            self._accept_thread.join(timeout=10)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=10)


def serve_folder(
    data: Path, *, port: int, logins: dict[str, str], certificate: Certificate | None, access_token: str | None
) -> TdsServer:
    return TdsServer(Engine(data), port=port, logins=logins, certificate=certificate, access_token=access_token).start()

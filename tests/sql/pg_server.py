"""A throwaway PostgreSQL server for tests and benchmarks: initdb into a temp folder, loopback TCP, torn down after.

``initdb`` and ``postgres`` refuse to run as root, and CI runs as root, so when
root the server runs as the ``postgres`` system user (through ``runuser``). The
binaries come from Debian's ``postgresql`` package
(``scripts/install-system-packages.sh`` installs it); when they are missing the
error says so instead of skipping, because a silently skipped SQL suite proves nothing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "run scripts/install-system-packages.sh (apt-get install postgresql odbc-postgresql unixodbc)"


@dataclass
class PgServer:
    host: str
    port: int
    superuser: str
    password: str
    data_dir: Path
    bin_dir: Path
    _process: subprocess.Popen | None = None

    def psql(self, sql: str, *, database: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        """Run SQL with psql over TCP (as a client, like everything else), return its unaligned output."""
        env = {**os.environ, "PGPASSWORD": password or self.password}
        completed = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                user or self.superuser,
                "-d",
                database,
            ],
            input=sql,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"psql failed: {completed.stderr.strip()}\nSQL: {sql[:500]}")
        return completed.stdout

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()  # SIGTERM = smart shutdown; fast shutdown is SIGINT
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def find_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    raise RuntimeError(f"PostgreSQL server binaries (initdb, postgres) not found; {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(*, password: str = "hygge-test-pw", max_connections: int = 100) -> PgServer:
    """initdb + start a server on a free loopback port; scram passwords on TCP, like production."""
    bin_dir = find_bin_dir()
    run_as: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(f"running as root but there is no 'postgres' user to run the server; {INSTALL_HINT}") from None
        run_as = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="hygge-pg-"))
    data_dir = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(password, encoding="utf-8")
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    superuser = "hygge_admin"
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            superuser,
            "--pwfile",
            str(pwfile),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    port = free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 (lives as long as the server)
    if owner is not None:
        os.chown(root / "server.log", owner.pw_uid, owner.pw_gid)
    process = subprocess.Popen(
        [
            *run_as,
            str(bin_dir / "postgres"),
            "-D",
            str(data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(root),
            "-c",
            f"max_connections={max_connections}",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "shared_buffers=64MB",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = PgServer("127.0.0.1", port, superuser, password, data_dir, bin_dir, process)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            text = (root / "server.log").read_text(errors="replace")
            raise RuntimeError(f"PostgreSQL exited at start (code {process.returncode}):\n{text[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
            server.psql("select 1")
            return server
        except (OSError, RuntimeError):
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.1)

"""A child Python process that pauses at a marker it prints, in its own process group, so a test can kill it there.

The reliability suite (Parquet store) and the store suite (Delta) both stop a real hygge run at a chosen point
and kill it with SIGKILL; each builds its own child script and environment, and both drive it through this class.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence


class PausedChild:
    """``python -c script args...`` started in a new session; ``kill`` signals the whole group (step processes too)."""

    def __init__(self, script: str, args: Sequence[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),
            start_new_session=True,
        )

    def wait_for(self, marker: str) -> None:
        """Block until the child prints ``marker`` on a line of its own; fail with its output if it ends first."""
        assert self.process.stdout is not None
        seen = []
        for line in self.process.stdout:
            if line.strip() == marker:
                return
            seen.append(line)
        self.process.wait()
        stderr = self.process.stderr.read() if self.process.stderr else ""
        raise AssertionError(f"child ended (exit {self.process.returncode}) before {marker!r}:\n{''.join(seen)}\n{stderr}")

    def kill(self) -> None:
        """SIGKILL the child's process group (when it still runs), wait for it and close its pipes."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            assert self.process.returncode == -signal.SIGKILL
        self.close()

    def close(self) -> None:
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

"""Running ``opendeploy`` as a user does, with a test server's AWS profile, and reading what it printed."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

from support.server import ServerProcess


def opendeploy(
    server: ServerProcess, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``opendeploy <args>`` as a user runs it with the server's profile (stdout is a pipe, not a tty)."""
    return subprocess.run(
        [sys.executable, "-m", "opendeploy", *args],
        env={**server.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class BackgroundRun:
    """``opendeploy <args>`` running in the background (a test drives agents meanwhile); its stdout and
    stderr go to files, so the test can read what it has printed so far."""

    def __init__(self, server: ServerProcess, directory: Path, *args: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._stdout = directory / "stdout"
        self._stderr = directory / "stderr"
        with self._stdout.open("wb") as stdout, self._stderr.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "opendeploy", *args], env=server.env, stdout=stdout, stderr=stderr
            )

    def stdout(self) -> str:
        return self._stdout.read_text()

    def stderr(self) -> str:
        return self._stderr.read_text()

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


ANSI_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


class TerminalRun:
    """``opendeploy <args>`` with a pseudo-terminal as its stdout (what a person at a terminal sees).

    A thread collects everything written; ``screen_text()`` is that output with the terminal's control
    sequences taken out, so each frame of a live view reads as plain lines.
    """

    def __init__(self, server: ServerProcess, *args: str, columns: int = 140) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        env = {**server.env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": "50"}
        env.pop("NO_COLOR", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "opendeploy", *args],
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
        os.close(slave)
        self._master = master
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            with self._lock:
                self._chunks.append(data)
        os.close(self._master)

    def raw(self) -> str:
        with self._lock:
            return b"".join(self._chunks).decode("utf-8", errors="replace")

    def screen_text(self) -> str:
        return ANSI_CODES.sub("", self.raw())

    def wait(self, timeout: float = 120) -> int:
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

"""Run a lifecycle event's hook scripts, one after another, and say how it went.

Scripts run in AppSpec order from the deployment archive; each must exit 0 before the next starts
(guide L24601–L24635, L25087–L25106). Each script:

- runs in a new session and process group, stdin from /dev/null, with the agent's environment plus the
  event's variables (LIFECYCLE_EVENT, DEPLOYMENT_ID, …);
- as its ``runas`` user through ``su`` when the agent is root;
- with its stdout and stderr logged line by line as they arrive;
- under its ``timeout``: when it runs out, the whole process group gets SIGTERM, then SIGKILL after a short
  grace, and the event fails with ScriptTimedOut. A script that exits but leaves a background process
  holding its stdout or stderr does not hold the event beyond its timeout either: it fails then as
  "outputs left open" (agent v2's error code 6), and the background process is left running.

When the agent must stop before a script is done (``stop_running_scripts``), the script's process group
gets SIGTERM, then SIGKILL after the grace, and the event fails saying the agent stopped it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import selectors
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from opendeploy.agent.diagnostics import Diagnostics, ErrorCode
from opendeploy.agent.script_log import EventLog
from opendeploy.appspec.model import HookScript

_READ_SIZE = 65536
_running: set[_Process] = set()
_running_lock = threading.Lock()
_shutting_down = threading.Event()
_MAX_LINE = 65536  # a longer run of output without a newline is logged in pieces


@dataclass(frozen=True)
class HookContext:
    """What every script of one lifecycle event shares."""

    lifecycle_event: str
    archive: Path
    environment: Mapping[str, str]
    kill_grace_seconds: float = 5.0


class _ScriptProblem(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Outcome:
    returncode: int | None
    timed_out: bool
    open_streams: tuple[str, ...]


def _script_path(archive: Path, location: str) -> Path:
    # Locations are relative to the bundle root; a leading "/" does not make them absolute (as on AWS).
    rel = os.path.normpath(location.lstrip("/"))
    path = archive / rel
    if rel == ".." or rel.startswith("../"):
        raise _ScriptProblem(
            ErrorCode.SCRIPT_MISSING, f"Script location {location} is outside the revision: {path}"
        )
    return path


def _make_executable(path: Path, location: str) -> None:
    if not path.exists():
        raise _ScriptProblem(ErrorCode.SCRIPT_MISSING, f"Script does not exist at specified location: {path}")
    if not path.is_file():
        raise _ScriptProblem(
            ErrorCode.SCRIPT_NOT_EXECUTABLE,
            f"Unable to set script at specified location: {location} as executable: it is not a file",
        )
    if os.access(path, os.X_OK):
        return
    try:
        path.chmod(path.stat().st_mode | 0o111)  # what AWS's agent does: chmod +x and go on
    except OSError as exc:
        raise _ScriptProblem(
            ErrorCode.SCRIPT_NOT_EXECUTABLE,
            f"Unable to set script at specified location: {location} as executable: {exc.strerror}",
        ) from None
    if not os.access(path, os.X_OK):
        raise _ScriptProblem(
            ErrorCode.SCRIPT_NOT_EXECUTABLE,
            f"Unable to set script at specified location: {location} as executable",
        )


def _command(path: Path, script: HookScript) -> list[str]:
    argv = [str(path)]
    euid = os.geteuid()
    if script.runas and script.runas != pwd.getpwuid(euid).pw_name:
        try:
            pwd.getpwnam(script.runas)
        except KeyError:
            raise _ScriptProblem(
                ErrorCode.SCRIPT_FAILED,
                f"Script at specified location: {script.location} cannot run as user {script.runas}: "
                f"no such user on this host",
            ) from None
        if euid != 0 and not script.sudo:
            raise _ScriptProblem(
                ErrorCode.SCRIPT_FAILED,
                f"Script at specified location: {script.location} cannot run as user {script.runas}: "
                f"running a script as another user needs the agent to run as root",
            )
        # A shell of our choosing, so users whose login shell is nologin can still run scripts.
        argv = ["su", "-s", "/bin/sh", "-c", shlex.quote(str(path)), script.runas]
    if script.sudo and euid != 0:
        argv = ["sudo", "-n", *argv]  # never prompt: no terminal to answer on
    return argv


class _Process:
    """A running script: its output pumped into the log until it exits and closes its outputs."""

    def __init__(self, argv: list[str], env: Mapping[str, str], on_line: Callable[[str, str], None]) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
        )
        self._on_line = on_line
        self._selector = selectors.DefaultSelector()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._streams: dict[int, tuple[str, bytearray]] = {
            self.proc.stdout.fileno(): ("stdout", bytearray()),
            self.proc.stderr.fileno(): ("stderr", bytearray()),
        }
        for fd in self._streams:
            self._selector.register(fd, selectors.EVENT_READ)
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(self.proc.pid)
            self._selector.register(self._pidfd, selectors.EVENT_READ)
        except (AttributeError, OSError):
            self._pidfd = None  # no pidfd: poll for the exit instead
        self.exited = False

    def _emit(self, stream: str, raw: bytes) -> None:
        self._on_line(stream, raw.decode("utf-8", "replace").rstrip("\r"))

    def _read(self, fd: int) -> None:
        stream, buffer = self._streams[fd]
        data = os.read(fd, _READ_SIZE)
        if not data:
            if buffer:
                self._emit(stream, bytes(buffer))
            self._selector.unregister(fd)
            del self._streams[fd]
            return
        buffer.extend(data)
        while True:
            newline = buffer.find(b"\n")
            if newline < 0:
                if len(buffer) >= _MAX_LINE:
                    self._emit(stream, bytes(buffer))
                    buffer.clear()
                return
            self._emit(stream, bytes(buffer[:newline]))
            del buffer[: newline + 1]

    def _check_exit(self) -> None:
        if not self.exited and self.proc.poll() is not None:
            self.exited = True

    def pump(self, until: float, *, stop_on_exit: bool = False) -> None:
        """Log output until the process has exited and closed its outputs, or until ``until``."""
        while True:
            self._check_exit()
            if self.exited and (stop_on_exit or not self._streams):
                return
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            wait = remaining if self._pidfd is not None else min(remaining, 0.05)
            for key, _ in self._selector.select(wait):
                if key.fd == self._pidfd:
                    self._selector.unregister(self._pidfd)
                    self.proc.wait()
                    self.exited = True
                elif key.fd in self._streams:
                    self._read(key.fd)

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)

    @property
    def open_streams(self) -> tuple[str, ...]:
        return tuple(name.upper() for name, _ in self._streams.values())

    def close(self) -> None:
        for fd in list(self._streams):
            self._selector.unregister(fd)
        self._streams.clear()
        self._selector.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdout.close()
        self.proc.stderr.close()


def stop_running_scripts(grace: float) -> int:
    """The agent is shutting down: end every running script (its process group gets SIGTERM, then
    SIGKILL after ``grace`` seconds); their events fail saying so. Returns how many were running."""
    _shutting_down.set()
    with _running_lock:
        processes = list(_running)
    for process in processes:
        process.signal_group(signal.SIGTERM)
    if processes:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(p.proc.poll() is None for p in processes):
            time.sleep(0.05)
        for process in processes:
            process.signal_group(signal.SIGKILL)
    return len(processes)


def _run(argv: list[str], env: Mapping[str, str], timeout: float, grace: float, log: EventLog) -> _Outcome:
    process = _Process(argv, env, lambda stream, line: log.entry(f"[{stream}]{line}"))
    with _running_lock:
        _running.add(process)
    try:
        deadline = time.monotonic() + timeout
        process.pump(deadline, stop_on_exit=True)
        if process.exited:
            # A script that succeeded has until its deadline to close its outputs; a failed one is
            # reported as failed once what it wrote has been read.
            if process.proc.returncode == 0:
                process.pump(deadline)
            else:
                process.pump(min(deadline, time.monotonic() + 1.0))
            return _Outcome(process.proc.returncode, False, process.open_streams)
        process.signal_group(signal.SIGTERM)
        process.pump(time.monotonic() + grace, stop_on_exit=True)
        if not process.exited:
            process.signal_group(signal.SIGKILL)
            process.proc.wait()
            process.exited = True
        # Output written before the end may still be in the pipes: log it, but wait no longer.
        process.pump(time.monotonic() + 0.2)
        return _Outcome(process.proc.returncode, True, ())
    finally:
        with _running_lock:
            _running.discard(process)
        if process.proc.poll() is None:
            # Interrupted (the agent itself is stopping): take the script down with us.
            process.signal_group(signal.SIGKILL)
            process.proc.wait()
        process.close()


def _failure_message(script: HookScript, returncode: int) -> str:
    who = f" run as user {script.runas}" if script.runas else ""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"Script at specified location: {script.location}{who} was terminated by {name}"
    return f"Script at specified location: {script.location}{who} failed with exit code {returncode}"


def run_hook(scripts: Sequence[HookScript], context: HookContext, log: EventLog) -> Diagnostics:
    """Run the event's scripts in order, stopping at the first failure; returns the event's diagnostics."""
    log.entry(f"LifecycleEvent - {context.lifecycle_event}")
    for script in scripts:
        log.entry(f"Script - {script.location}")
        try:
            path = _script_path(context.archive, script.location)
            _make_executable(path, script.location)
            argv = _command(path, script)
            try:
                outcome = _run(argv, context.environment, script.timeout, context.kill_grace_seconds, log)
            except OSError as exc:
                raise _ScriptProblem(
                    ErrorCode.SCRIPT_FAILED,
                    f"Script at specified location: {script.location} failed with error "
                    f"{type(exc).__name__} with message {exc.strerror or exc}",
                ) from None
            if outcome.timed_out:
                raise _ScriptProblem(
                    ErrorCode.SCRIPT_TIMED_OUT,
                    f"Script at specified location: {script.location} failed to complete in "
                    f"{script.timeout} seconds",
                )
            if outcome.returncode and _shutting_down.is_set():
                raise _ScriptProblem(
                    ErrorCode.SCRIPT_FAILED,
                    f"Script at specified location: {script.location} was stopped: the agent was shutting "
                    f"down and could not wait for it any longer",
                )
            if outcome.returncode:
                raise _ScriptProblem(ErrorCode.SCRIPT_FAILED, _failure_message(script, outcome.returncode))
            if outcome.open_streams:
                raise _ScriptProblem(
                    ErrorCode.OUTPUTS_LEFT_OPEN,
                    f"Script at specified location: {script.location} "
                    f"failed to close {outcome.open_streams[0]}",
                )
        except _ScriptProblem as problem:
            return Diagnostics(problem.code, script.location, problem.message, log.tail.text())
    return Diagnostics.success()

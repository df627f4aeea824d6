"""A lifecycle event's diagnostics: what the agent reports when a host command completes.

The wire form is the agent protocol's JSON payload
``{"error_code":N,"script_name":"…","message":"…","log":"…"}`` (keys in that order, no spaces), which the
control plane shows as the deployment's lifecycle event diagnostics (error code, script name, message,
log tail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum

LOG_TAIL_LIMIT = 2048
"""Characters of script output a diagnostics log tail may hold (whole entries only)."""


NOOP_MESSAGE = "Succeeded: CompletedNoopCommand"


class ErrorCode(IntEnum):
    """The agent protocol's numeric error codes."""

    SUCCEEDED = 0
    SCRIPT_MISSING = 1
    SCRIPT_NOT_EXECUTABLE = 2
    SCRIPT_TIMED_OUT = 3
    SCRIPT_FAILED = 4
    UNKNOWN_ERROR = 5
    OUTPUTS_LEFT_OPEN = 6
    FAILED_AFTER_RESTART = 7


# The names the CodeDeploy API shows for each code; codes 6 and 7 have no public name of their own.
_API_NAMES = {
    ErrorCode.SUCCEEDED: "Success",
    ErrorCode.SCRIPT_MISSING: "ScriptMissing",
    ErrorCode.SCRIPT_NOT_EXECUTABLE: "ScriptNotExecutable",
    ErrorCode.SCRIPT_TIMED_OUT: "ScriptTimedOut",
    ErrorCode.SCRIPT_FAILED: "ScriptFailed",
    ErrorCode.UNKNOWN_ERROR: "UnknownError",
    ErrorCode.OUTPUTS_LEFT_OPEN: "UnknownError",
    ErrorCode.FAILED_AFTER_RESTART: "UnknownError",
}

_DISPLAY_NAMES = {
    **_API_NAMES,
    ErrorCode.OUTPUTS_LEFT_OPEN: "OutputsLeftOpen",
    ErrorCode.FAILED_AFTER_RESTART: "FailedAfterRestart",
}


@dataclass(frozen=True)
class Diagnostics:
    """The outcome of one lifecycle event on one host."""

    error_code: ErrorCode
    script_name: str = ""
    message: str = ""
    log: str = ""

    @classmethod
    def success(cls, *, noop: bool = False) -> Diagnostics:
        return cls(ErrorCode.SUCCEEDED, "", NOOP_MESSAGE if noop else "Succeeded: ")

    @classmethod
    def unknown_error(cls, message: str) -> Diagnostics:
        return cls(ErrorCode.UNKNOWN_ERROR, "", message, "")

    @property
    def succeeded(self) -> bool:
        return self.error_code == ErrorCode.SUCCEEDED

    @property
    def noop(self) -> bool:
        """Succeeded with nothing to do (no scripts for the event on this host)."""
        return self.succeeded and self.message == NOOP_MESSAGE

    @property
    def api_error_code(self) -> str:
        """The name the CodeDeploy API's ``Diagnostics.errorCode`` uses for this outcome."""
        return _API_NAMES[self.error_code]

    @property
    def display_name(self) -> str:
        """A readable name for people, distinguishing the codes the API folds into UnknownError."""
        return _DISPLAY_NAMES[self.error_code]

    def to_json(self) -> str:
        """The agent protocol payload, byte for byte as AWS's agent writes it."""
        return json.dumps(
            {
                "error_code": int(self.error_code),
                "script_name": self.script_name,
                "message": self.message,
                "log": self.log,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, payload: str) -> Diagnostics:
        data = json.loads(payload)
        return cls(
            ErrorCode(int(data["error_code"])),
            str(data.get("script_name") or ""),
            str(data.get("message") or ""),
            str(data.get("log") or ""),
        )


class LogTail:
    """The newest whole log entries of one lifecycle event, at most ``LOG_TAIL_LIMIT`` characters in all.

    Entries are ``LifecycleEvent - X``, ``Script - loc``, ``[stdout]line`` and ``[stderr]line``, each ending
    in a newline. An entry longer than the limit on its own is dropped rather than cut, so the tail always
    consists of whole lines.
    """

    def __init__(self, limit: int = LOG_TAIL_LIMIT) -> None:
        self._limit = limit
        self._entries: list[str] = []
        self._size = 0

    def append(self, entry: str) -> None:
        self._entries.append(entry)
        self._size += len(entry)
        while self._entries and self._size > self._limit:
            self._size -= len(self._entries.pop(0))

    def text(self) -> str:
        return "".join(self._entries)

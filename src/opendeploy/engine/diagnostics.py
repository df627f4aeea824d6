"""Lifecycle event diagnostics: the agent's report of how an event went, as the API shows it.

The agent completes a host command with ``Diagnostics: {"Format": "JSON", "Payload":
'{"error_code":N,"script_name":"…","message":"…","log":"…"}'}`` (agent wire protocol §2.6). The API's
``Diagnostics`` has ``errorCode`` (a ``LifecycleErrorCode`` name), ``scriptName``, ``message`` and
``logTail`` ("up to the last 4 KB" of the script log). Codes 6 (outputs left open) and 7 (failed
after an agent restart) have no API name of their own: they show as ``UnknownError``, as AWS shows
them. A payload the server cannot read still completes the command; its diagnostics say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opendeploy.domain.json_text import parse_json
from opendeploy.domain.statuses import LifecycleErrorCode

LOG_TAIL_LIMIT = 4096

_CODES = {
    0: LifecycleErrorCode.SUCCESS,
    1: LifecycleErrorCode.SCRIPT_MISSING,
    2: LifecycleErrorCode.SCRIPT_NOT_EXECUTABLE,
    3: LifecycleErrorCode.SCRIPT_TIMED_OUT,
    4: LifecycleErrorCode.SCRIPT_FAILED,
    5: LifecycleErrorCode.UNKNOWN_ERROR,
    6: LifecycleErrorCode.UNKNOWN_ERROR,  # a script left stdout/stderr open
    7: LifecycleErrorCode.UNKNOWN_ERROR,  # the agent restarted while the event ran
}


@dataclass(frozen=True)
class EventDiagnostics:
    """A lifecycle event's diagnostics in the API's terms."""

    error_code: LifecycleErrorCode
    script_name: str = ""
    message: str = ""
    log_tail: str = ""


def log_tail(log: str) -> str:
    """The end of a script log, at most ``LOG_TAIL_LIMIT`` characters."""
    return log[-LOG_TAIL_LIMIT:]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _message(message: str, succeeded: bool) -> str:
    message = message.strip()
    # The agent reports success as "Succeeded: " (or "Succeeded: CompletedNoopCommand" for an event
    # without scripts); the API shows the first as "Succeeded".
    if succeeded and message.endswith(":"):
        message = message[:-1]
    return message


def from_agent(envelope: dict[str, Any] | None, *, succeeded: bool) -> EventDiagnostics:
    """Read the diagnostics envelope of a PutHostCommandComplete (``None`` if the agent sent none)."""
    fallback_code = LifecycleErrorCode.SUCCESS if succeeded else LifecycleErrorCode.UNKNOWN_ERROR
    if not envelope or not envelope.get("Payload"):
        return EventDiagnostics(fallback_code, message="Succeeded" if succeeded else "")
    payload = envelope.get("Payload") or ""
    try:
        data = parse_json(payload, "The agent's diagnostics")
    except ValueError:  # not JSON, or nested too deeply
        data = None
    if not isinstance(data, dict):
        fmt = envelope.get("Format") or "(no format)"
        return EventDiagnostics(
            fallback_code,
            message=f"The agent's diagnostics ({fmt}) are not a JSON object: {payload[:512]}",
        )
    code = data.get("error_code")
    error_code = _CODES.get(code, fallback_code) if isinstance(code, int) else fallback_code
    if succeeded:
        # A Succeeded completion is a success whatever code came with it.
        error_code = LifecycleErrorCode.SUCCESS
    elif error_code is LifecycleErrorCode.SUCCESS:
        error_code = LifecycleErrorCode.UNKNOWN_ERROR
    return EventDiagnostics(
        error_code,
        script_name=_text(data.get("script_name")),
        message=_message(_text(data.get("message")), succeeded),
        log_tail=log_tail(_text(data.get("log"))),
    )

"""Completions of host commands the server has not acknowledged yet, kept until it has.

Once a lifecycle event has run, its outcome is written to ``<root_dir>/unreported-completions/`` before
the agent reports it (PutHostCommandComplete), and removed once the server has it. An agent stopped or
killed while the server is out of reach therefore loses nothing: it reports the real outcome — not
"failed after restart" — when it starts again. A completion is idempotent on the server (the first one
wins), so reporting one twice is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opendeploy.agent.diagnostics import Diagnostics
from opendeploy.agent.kept_records import KeptRecords

DIRECTORY_NAME = "unreported-completions"


@dataclass(frozen=True)
class Completion:
    host_command_identifier: str
    status: str  # Succeeded or Failed
    diagnostics: Diagnostics


class UnreportedCompletions:
    """The directory of completions not yet reported, one JSON file each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._records = KeptRecords(directory)

    def keep(self, completion: Completion) -> None:
        self._records.keep(
            completion.host_command_identifier,
            {
                "HostCommandIdentifier": completion.host_command_identifier,
                "CommandStatus": completion.status,
                "Diagnostics": completion.diagnostics.to_json(),
            },
        )

    def forget(self, host_command_identifier: str) -> None:
        self._records.forget(host_command_identifier)

    def holds(self, host_command_identifier: str) -> bool:
        return self._records.holds(host_command_identifier)

    def kept(self, now: float | None = None) -> list[Completion]:
        """The completions still to report, oldest first; stale and unreadable ones are dropped."""
        return self._records.kept(_completion, now)


def _completion(record: dict[str, Any]) -> Completion:
    return Completion(
        str(record["HostCommandIdentifier"]),
        str(record["CommandStatus"]),
        Diagnostics.from_json(str(record["Diagnostics"])),
    )

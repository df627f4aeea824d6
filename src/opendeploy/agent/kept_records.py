"""Small records the agent keeps on disk across restarts, one JSON file per host command.

The agent keeps two kinds (``received_commands``, ``unreported_completions``): both must survive the
agent being stopped or killed, are looked at once when it starts again, and are useless after a day
(the server has long since timed the event out). Each record is written atomically under a name
derived from the host command's identifier (AWS's identifiers are base64 and may hold "/").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from opendeploy.agent.deployment_root import write_atomically

log = logging.getLogger("opendeploy.agent.kept_records")

STALE_AFTER_SECONDS = 24 * 3600
T = TypeVar("T")


class KeptRecords:
    """A directory of JSON records keyed by host command identifier."""

    def __init__(self, directory: Path, stale_after: float = STALE_AFTER_SECONDS) -> None:
        self.directory = directory
        self.stale_after = stale_after

    def _path(self, host_command_identifier: str) -> Path:
        digest = hashlib.sha256(host_command_identifier.encode()).hexdigest()
        return self.directory / f"{digest}.json"

    def keep(self, host_command_identifier: str, record: dict[str, Any]) -> None:
        write_atomically(self._path(host_command_identifier), json.dumps(record))

    def forget(self, host_command_identifier: str) -> None:
        self._path(host_command_identifier).unlink(missing_ok=True)

    def holds(self, host_command_identifier: str) -> bool:
        return self._path(host_command_identifier).is_file()

    def kept(self, parse: Callable[[dict[str, Any]], T], now: float | None = None) -> list[T]:
        """The records, each read by ``parse``, oldest first; stale files, and files that are not JSON
        or that ``parse`` refuses (KeyError, ValueError, TypeError), are deleted."""
        if not self.directory.is_dir():
            return []
        now = time.time() if now is None else now
        found: list[tuple[float, T]] = []
        for entry in os.scandir(self.directory):
            if not entry.is_file(follow_symlinks=False) or not entry.name.endswith(".json"):
                continue
            path = Path(entry.path)
            modified = entry.stat(follow_symlinks=False).st_mtime
            if now - modified > self.stale_after:
                path.unlink(missing_ok=True)
                continue
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                found.append((modified, parse(record)))
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.warning("dropping unreadable record %s: %s", path, error)
                path.unlink(missing_ok=True)
        return [item for _, item in sorted(found, key=lambda pair: pair[0])]

"""The ongoing-deployment markers: which lifecycle events this host was running, should the agent die.

While a host command runs, ``<root_dir>/ongoing-deployment/<deployment-id>`` holds its
HostCommandIdentifier (the AWS agent's file and format). The marker is removed once the server has the
command's result. A marker still there when the agent starts means the agent was killed mid-event; the
agent then reports that event Failed ("failed after restart", error code 7) so the deployment does not
wait for an event that will never finish.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from opendeploy.agent.deployment_root import write_atomically

STALE_AFTER_SECONDS = 24 * 3600
"""A marker older than this is ignored, as AWS's agent does: the server has long since timed the event out."""


@dataclass(frozen=True)
class InterruptedCommand:
    deployment_id: str
    host_command_identifier: str


class OngoingDeployments:
    """The marker directory ``<root_dir>/<ongoing_deployment_tracking>``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _marker(self, deployment_id: str) -> Path:
        if "/" in deployment_id or deployment_id in {"", ".", ".."}:
            raise ValueError(f"invalid deployment id {deployment_id!r}")
        return self.directory / deployment_id

    def start(self, deployment_id: str, host_command_identifier: str) -> None:
        """Record that this host is now running the command (before any of its work starts)."""
        write_atomically(self._marker(deployment_id), host_command_identifier)

    def finish(self, deployment_id: str) -> None:
        """The server has the command's result: forget it."""
        self._marker(deployment_id).unlink(missing_ok=True)

    def interrupted(self, now: float | None = None) -> list[InterruptedCommand]:
        """Commands a previous run of the agent started and never reported, oldest first; stale markers
        are deleted."""
        if not self.directory.is_dir():
            return []
        now = time.time() if now is None else now
        found: list[tuple[float, InterruptedCommand]] = []
        for entry in os.scandir(self.directory):
            if not entry.is_file(follow_symlinks=False) or entry.name.startswith("."):
                continue
            modified = entry.stat(follow_symlinks=False).st_mtime
            path = Path(entry.path)
            if now - modified > STALE_AFTER_SECONDS:
                path.unlink(missing_ok=True)
                continue
            identifier = path.read_text(encoding="utf-8").strip()
            if not identifier:
                path.unlink(missing_ok=True)
                continue
            found.append((modified, InterruptedCommand(entry.name, identifier)))
        return [command for _, command in sorted(found, key=lambda item: item[0])]

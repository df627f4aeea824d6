"""Host commands the agent received while stopping, kept to run first when it starts again.

The poller keeps a long poll open while commands run, so a poll in flight when the agent is told to stop
can still bring a command back. The agent does not start new work once stopping, and the protocol has no
way to hand a command back: the server gives an unacknowledged command out again only after its
redelivery interval (minutes), and a restarted agent would leave its deployment waiting that long. So the
command is written to ``<root_dir>/received-commands/`` and run (acknowledge, execute, complete) as soon
as the agent starts again; the acknowledgement tells the agent if the server has finished it meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from opendeploy.agent.command_client import HostCommand
from opendeploy.agent.deployment_root import write_atomically

log = logging.getLogger("opendeploy.agent.received_commands")

DIRECTORY_NAME = "received-commands"
STALE_AFTER_SECONDS = 24 * 3600
"""A kept command older than this is dropped: the server has long since timed its event out."""


class ReceivedCommands:
    """The directory of kept commands, one JSON file each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, host_command_identifier: str) -> Path:
        # Identifiers are opaque (AWS's are base64 and may hold "/"): name the file by a digest.
        digest = hashlib.sha256(host_command_identifier.encode()).hexdigest()
        return self.directory / f"{digest}.json"

    def keep(self, command: HostCommand) -> None:
        """Write ``command`` down to run when the agent starts again."""
        document = {
            "HostCommandIdentifier": command.host_command_identifier,
            "HostIdentifier": command.host_identifier,
            "DeploymentExecutionId": command.deployment_execution_id,
            "CommandName": command.command_name,
        }
        write_atomically(self._path(command.host_command_identifier), json.dumps(document))

    def forget(self, host_command_identifier: str) -> None:
        """The command has been run (or refused): it is not kept any more."""
        self._path(host_command_identifier).unlink(missing_ok=True)

    def kept(self, now: float | None = None) -> list[HostCommand]:
        """The kept commands, oldest first; stale and unreadable files are deleted."""
        if not self.directory.is_dir():
            return []
        now = time.time() if now is None else now
        found: list[tuple[float, HostCommand]] = []
        for entry in os.scandir(self.directory):
            if not entry.is_file(follow_symlinks=False) or not entry.name.endswith(".json"):
                continue
            path = Path(entry.path)
            modified = entry.stat(follow_symlinks=False).st_mtime
            if now - modified > STALE_AFTER_SECONDS:
                path.unlink(missing_ok=True)
                continue
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
                command = HostCommand(
                    host_command_identifier=str(document["HostCommandIdentifier"]),
                    host_identifier=str(document["HostIdentifier"]),
                    deployment_execution_id=str(document["DeploymentExecutionId"]),
                    command_name=str(document["CommandName"]),
                )
            except (ValueError, KeyError, TypeError) as error:
                log.warning("dropping unreadable kept command %s: %s", path, error)
                path.unlink(missing_ok=True)
                continue
            found.append((modified, command))
        return [command for _, command in sorted(found, key=lambda item: item[0])]

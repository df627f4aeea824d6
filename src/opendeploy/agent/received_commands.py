"""Host commands the agent received while stopping, kept to run first when it starts again.

The poller keeps a long poll open while commands run, so a poll in flight when the agent is told to stop
can still bring a command back; and a command whose acknowledgement cannot reach the server before the
agent stops has not started either. The agent starts no new work once stopping, and the protocol has no
way to hand a command back: the server would give it out again only at the agent's next poll, after its
redelivery interval, or never if it had recorded the acknowledgement. So the command is written to
``<root_dir>/received-commands/`` and run (acknowledge, execute, complete) as soon as the agent starts
again; the acknowledgement tells the agent if the server has finished it meanwhile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opendeploy.agent.command_client import HostCommand
from opendeploy.agent.kept_records import KeptRecords

DIRECTORY_NAME = "received-commands"


class ReceivedCommands:
    """The directory of kept commands, one JSON file each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._records = KeptRecords(directory)

    def keep(self, command: HostCommand) -> None:
        """Write ``command`` down to run when the agent starts again."""
        self._records.keep(
            command.host_command_identifier,
            {
                "HostCommandIdentifier": command.host_command_identifier,
                "HostIdentifier": command.host_identifier,
                "DeploymentExecutionId": command.deployment_execution_id,
                "CommandName": command.command_name,
            },
        )

    def forget(self, host_command_identifier: str) -> None:
        """The command has been run (or refused): it is not kept any more."""
        self._records.forget(host_command_identifier)

    def kept(self, now: float | None = None) -> list[HostCommand]:
        """The kept commands, oldest first; stale and unreadable ones are dropped."""
        return self._records.kept(_command, now)


def _command(record: dict[str, Any]) -> HostCommand:
    return HostCommand(
        host_command_identifier=str(record["HostCommandIdentifier"]),
        host_identifier=str(record["HostIdentifier"]),
        deployment_execution_id=str(record["DeploymentExecutionId"]),
        command_name=str(record["CommandName"]),
    )

"""Commands kept while the agent stops: written down whole, read back oldest first, forgotten once run,
and never trusted when stale or damaged."""

from __future__ import annotations

import os
import time
from pathlib import Path

from opendeploy.agent.command_client import HostCommand
from opendeploy.agent.kept_records import STALE_AFTER_SECONDS
from opendeploy.agent.received_commands import ReceivedCommands


def _command(identifier: str, name: str = "ApplicationStart") -> HostCommand:
    return HostCommand(
        host_command_identifier=identifier,
        host_identifier="arn:aws:iam::111122223333:user/host-1",
        deployment_execution_id="CodeDeploy/us-east-1/Prod/arn:aws:codedeploy:us-east-1:1:deployment/d-1",
        command_name=name,
    )


def test_kept_commands_come_back_whole_oldest_first_until_forgotten(tmp_path: Path) -> None:
    received = ReceivedCommands(tmp_path / "received-commands")
    assert received.kept() == []  # no directory yet
    # AWS's identifiers are base64 and may contain "/": they must not become paths.
    first, second = _command("eyJh/Ym+Mw==", "BeforeInstall"), _command("second/../x", "ValidateService")
    received.keep(first)
    os.utime(next((tmp_path / "received-commands").iterdir()), (time.time() - 60, time.time() - 60))
    received.keep(second)
    assert received.kept() == [first, second]
    assert all(p.parent == tmp_path / "received-commands" for p in (tmp_path / "received-commands").iterdir())
    received.forget(first.host_command_identifier)
    assert received.kept() == [second]
    received.forget("never kept")  # forgetting twice or an unknown one is harmless
    received.forget(second.host_command_identifier)
    assert received.kept() == []


def test_stale_and_damaged_files_are_dropped(tmp_path: Path) -> None:
    directory = tmp_path / "received-commands"
    received = ReceivedCommands(directory)
    received.keep(_command("old"))
    (stale,) = directory.iterdir()
    long_ago = time.time() - STALE_AFTER_SECONDS - 10
    os.utime(stale, (long_ago, long_ago))
    (directory / "broken.json").write_text("{not json")
    (directory / "partial.json").write_text('{"HostCommandIdentifier": "x"}')
    (directory / ".tmp-file").write_text("ignored: not a kept command")
    assert received.kept() == []
    assert sorted(p.name for p in directory.iterdir()) == [".tmp-file"]

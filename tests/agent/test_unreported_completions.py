"""Outcomes the server has not acknowledged yet: kept whole on disk until reported, oldest first, and
never trusted when stale or damaged."""

from __future__ import annotations

import os
import time
from pathlib import Path

from opendeploy.agent.diagnostics import Diagnostics, ErrorCode
from opendeploy.agent.kept_records import STALE_AFTER_SECONDS
from opendeploy.agent.unreported_completions import Completion, UnreportedCompletions


def test_a_kept_completion_comes_back_with_its_diagnostics_until_forgotten(tmp_path: Path) -> None:
    completions = UnreportedCompletions(tmp_path / "unreported-completions")
    assert completions.kept() == []
    failed = Completion(
        "eyJh/Ym+Mw==",
        "Failed",
        Diagnostics(ErrorCode.SCRIPT_FAILED, "scripts/start.sh", "exit code 7", "[stderr]port in use\n"),
    )
    succeeded = Completion("second", "Succeeded", Diagnostics.success())
    completions.keep(failed)
    (path,) = (tmp_path / "unreported-completions").iterdir()
    os.utime(path, (time.time() - 60, time.time() - 60))
    completions.keep(succeeded)
    assert completions.kept() == [failed, succeeded]
    assert completions.holds("eyJh/Ym+Mw==") and not completions.holds("never kept")
    completions.forget(failed.host_command_identifier)
    assert completions.kept() == [succeeded]


def test_stale_and_damaged_completions_are_dropped(tmp_path: Path) -> None:
    directory = tmp_path / "unreported-completions"
    completions = UnreportedCompletions(directory)
    completions.keep(Completion("old", "Succeeded", Diagnostics.success()))
    (stale,) = directory.iterdir()
    long_ago = time.time() - STALE_AFTER_SECONDS - 10
    os.utime(stale, (long_ago, long_ago))
    (directory / "broken.json").write_text("[1, 2")
    (directory / "no-diagnostics.json").write_text('{"HostCommandIdentifier": "x", "CommandStatus": "F"}')
    (directory / "bad-diagnostics.json").write_text(
        '{"HostCommandIdentifier": "y", "CommandStatus": "Failed", "Diagnostics": "{}"}'
    )
    assert completions.kept() == []
    assert list(directory.iterdir()) == []

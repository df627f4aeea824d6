"""Diagnostics in the wire format, the log tail rule, and pruning the revision archive (issue 2, 6–7)."""

from __future__ import annotations

import os
from pathlib import Path

from opendeploy.agent.deployment_root import DeploymentRoot
from opendeploy.agent.diagnostics import Diagnostics, ErrorCode, LogTail


def test_wire_format_is_compact_and_ordered() -> None:
    diagnostics = Diagnostics(ErrorCode.SCRIPT_FAILED, "scripts/a.sh", 'failed "quoted"', "[stdout]é\n")
    assert diagnostics.to_json() == (
        '{"error_code":4,"script_name":"scripts/a.sh","message":"failed \\"quoted\\"","log":"[stdout]é\\n"}'
    )
    assert Diagnostics.from_json(diagnostics.to_json()) == diagnostics


def test_api_names_of_the_codes() -> None:
    names = {code: Diagnostics(code).api_error_code for code in ErrorCode}
    assert names == {
        ErrorCode.SUCCEEDED: "Success",
        ErrorCode.SCRIPT_MISSING: "ScriptMissing",
        ErrorCode.SCRIPT_NOT_EXECUTABLE: "ScriptNotExecutable",
        ErrorCode.SCRIPT_TIMED_OUT: "ScriptTimedOut",
        ErrorCode.SCRIPT_FAILED: "ScriptFailed",
        ErrorCode.UNKNOWN_ERROR: "UnknownError",
        ErrorCode.OUTPUTS_LEFT_OPEN: "UnknownError",
        ErrorCode.FAILED_AFTER_RESTART: "UnknownError",
    }


def test_log_tail_keeps_the_newest_whole_entries() -> None:
    tail = LogTail()
    for n in range(50):
        tail.append(f"{n:03d}" + "x" * 96 + "\n")  # 100 characters each
    assert tail.text() == "".join(f"{n:03d}" + "x" * 96 + "\n" for n in range(30, 50))


def test_log_tail_drops_an_entry_longer_than_the_limit() -> None:
    tail = LogTail()
    tail.append("short\n")
    tail.append("y" * 3000 + "\n")
    assert tail.text() == ""
    tail.append("after\n")
    assert tail.text() == "after\n"


def _deployment(root: DeploymentRoot, name: str, mtime: int) -> Path:
    path = root.deployment_dir("dg", name)
    (path / "deployment-archive").mkdir(parents=True)
    os.utime(path, (mtime, mtime))
    return path


def test_prune_keeps_the_retained_most_recent_plus_current_and_last_successful(tmp_path: Path) -> None:
    """Guide L25311–L25322: max_revisions archived revisions besides the current one; the last successful
    one (and its logs, L10109–L10121) is never deleted."""
    root = DeploymentRoot(tmp_path)
    for n in range(1, 8):
        _deployment(root, f"d-{n}", 1_700_000_000 + n)
    root.mark_last_successful_install("dg", root.deployment_dir("dg", "d-1"))
    current = _deployment(root, "d-8", 1_600_000_000)  # its age does not matter: it is current
    deleted = root.prune_revisions("dg", "d-8", retained=2)
    assert sorted(p.name for p in deleted) == ["d-2", "d-3", "d-4", "d-5"]
    assert sorted(p.name for p in root.group_dir("dg").iterdir()) == ["d-1", "d-6", "d-7", "d-8"]
    assert current.exists()


def test_markers_round_trip(tmp_path: Path) -> None:
    root = DeploymentRoot(tmp_path)
    assert root.last_successful_install("dg") is None
    root.mark_most_recent_install("dg", tmp_path / "dg" / "d-1")
    assert root.most_recent_install("dg") == tmp_path / "dg" / "d-1"
    marker = tmp_path / "deployment-instructions" / "dg_most_recent_install"
    assert marker.read_text() == str(tmp_path / "dg" / "d-1"), "no newline, as AWS's agent writes it"

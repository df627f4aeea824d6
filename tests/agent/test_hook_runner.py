"""Hook scripts: order, exit codes, timeouts that end the whole process group, outputs left open, missing
and non-executable scripts, runas, and the log formats (issue 2, item 6; guide L24601–L24835)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opendeploy.agent.diagnostics import ErrorCode
from opendeploy.agent.hook_runner import HookContext, run_hook
from opendeploy.agent.script_log import EventLog
from opendeploy.appspec.model import HookScript


class Hooks:
    """An archive of scripts and a runner that logs like a deployment would."""

    def __init__(self, tmp_path: Path) -> None:
        self.archive = tmp_path / "archive"
        self.archive.mkdir()
        self.scripts_log = tmp_path / "d-TEST" / "logs" / "scripts.log"
        self.deployments_log = tmp_path / "deployment-logs" / "codedeploy-agent-deployments.log"
        self.tmp = tmp_path

    def script(self, name: str, body: str, *, executable: bool = True) -> str:
        path = self.archive / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/bash\n" + body + "\n")
        path.chmod(0o755 if executable else 0o644)
        return name

    def run(self, *scripts: HookScript, grace: float = 0.5, event: str = "AfterInstall"):
        env = dict(os.environ, LIFECYCLE_EVENT=event, DEPLOYMENT_ID="d-TEST")
        context = HookContext(event, self.archive, env, grace)
        with EventLog(self.scripts_log, self.deployments_log, "d-TEST") as log:
            return run_hook(scripts, context, log)


@pytest.fixture
def hooks(tmp_path: Path) -> Hooks:
    return Hooks(tmp_path)


def _gone(pid: int) -> bool:
    """True when the process no longer runs (a zombie nobody has reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_scripts_run_in_order_and_stop_at_the_first_failure(hooks: Hooks) -> None:
    trail = hooks.tmp / "trail"
    first = hooks.script("scripts/one.sh", f"echo one >> {trail}")
    second = hooks.script("scripts/two.sh", f"echo two >> {trail}; echo 'bad thing' >&2; exit 7")
    third = hooks.script("scripts/three.sh", f"echo three >> {trail}")
    diagnostics = hooks.run(HookScript(first), HookScript(second), HookScript(third))
    assert trail.read_text() == "one\ntwo\n"
    assert diagnostics.error_code == ErrorCode.SCRIPT_FAILED
    assert diagnostics.script_name == "scripts/two.sh"
    assert diagnostics.message == "Script at specified location: scripts/two.sh failed with exit code 7"
    assert diagnostics.log.endswith("Script - scripts/two.sh\n[stderr]bad thing\n")


def test_success_has_empty_message_and_no_log(hooks: Hooks) -> None:
    diagnostics = hooks.run(HookScript(hooks.script("ok.sh", "echo fine")))
    assert diagnostics.to_json() == '{"error_code":0,"script_name":"","message":"Succeeded: ","log":""}'


def test_log_formats_of_scripts_log_and_deployments_log(hooks: Hooks) -> None:
    hooks.run(HookScript(hooks.script("s.sh", "echo to-out; echo to-err >&2")), event="ApplicationStart")
    ts = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    lines = hooks.scripts_log.read_text().splitlines()
    assert [re.sub(ts, "TS", line) for line in lines[:2]] == [
        "TS LifecycleEvent - ApplicationStart",
        "TS Script - s.sh",
    ]
    assert sorted(re.sub(ts, "TS", line) for line in lines[2:]) == ["TS [stderr]to-err", "TS [stdout]to-out"]
    deployments = hooks.deployments_log.read_text().splitlines()
    assert re.fullmatch(rf"\[{ts}\.\d{{3}}\] \[d-TEST\]LifecycleEvent - ApplicationStart", deployments[0])
    assert re.fullmatch(rf"\[{ts}\.\d{{3}}\] \[d-TEST\]Script - s\.sh", deployments[1])
    assert {re.sub(rf"\[{ts}\.\d{{3}}\] ", "", line) for line in deployments[2:]} == {
        "[d-TEST][stdout]to-out",
        "[d-TEST][stderr]to-err",
    }


def test_log_tail_keeps_whole_lines_up_to_2kb(hooks: Hooks) -> None:
    name = hooks.script(
        "noisy.sh",
        "for i in $(seq 1 50); do printf 'line %03d %s\\n' $i $(printf 'x%.0s' $(seq 1 83)); done; exit 1",
    )
    diagnostics = hooks.run(HookScript(name))
    lines = diagnostics.log.splitlines()
    assert len(diagnostics.log) <= 2048
    assert lines[-1].startswith("[stdout]line 050 ")
    assert all(re.fullmatch(r"\[stdout\]line \d{3} x{83}", line) for line in lines)
    assert len(lines) == 2048 // len(lines[0] + "\n")


def test_timeout_ends_the_whole_process_group(hooks: Hooks) -> None:
    pids = hooks.tmp / "pids"
    name = hooks.script("slow.sh", f"sleep 300 & echo $! > {pids}; echo started; sleep 300")
    started = time.monotonic()
    diagnostics = hooks.run(HookScript(name, timeout=1))
    assert time.monotonic() - started < 15  # ended at the timeout, not after the script's 300 s
    assert diagnostics.error_code == ErrorCode.SCRIPT_TIMED_OUT
    assert diagnostics.message == "Script at specified location: slow.sh failed to complete in 1 seconds"
    assert "[stdout]started" in diagnostics.log
    background = int(pids.read_text())
    assert _wait_until(lambda: _gone(background)), "the script's background child must be ended too"


def test_timeout_kills_a_script_that_ignores_sigterm(hooks: Hooks) -> None:
    name = hooks.script("stubborn.sh", "trap '' TERM; echo holding; sleep 300")
    started = time.monotonic()
    diagnostics = hooks.run(HookScript(name, timeout=1), grace=0.5)
    assert diagnostics.error_code == ErrorCode.SCRIPT_TIMED_OUT
    assert time.monotonic() - started < 15


def test_background_process_holding_stdout_does_not_hang_the_event(hooks: Hooks) -> None:
    """Agent v2 reports a script that exits but leaves its outputs open as error code 6 at the timeout."""
    pids = hooks.tmp / "pids"
    name = hooks.script("daemon.sh", f"sleep 300 & echo $! > {pids}; echo launched")
    started = time.monotonic()
    try:
        diagnostics = hooks.run(HookScript(name, timeout=2))
        elapsed = time.monotonic() - started
        assert 1.5 < elapsed < 15
        assert diagnostics.error_code == ErrorCode.OUTPUTS_LEFT_OPEN
        assert diagnostics.message == "Script at specified location: daemon.sh failed to close STDOUT"
        assert diagnostics.api_error_code == "UnknownError"
        assert "[stdout]launched" in diagnostics.log
    finally:
        os.kill(int(pids.read_text()), signal.SIGKILL)


def test_background_process_with_its_own_outputs_is_fine(hooks: Hooks) -> None:
    pids = hooks.tmp / "pids"
    name = hooks.script("daemon.sh", f"nohup sleep 300 >/dev/null 2>&1 & echo $! > {pids}; echo launched")
    started = time.monotonic()
    try:
        diagnostics = hooks.run(HookScript(name, timeout=30))
        assert diagnostics.succeeded
        assert time.monotonic() - started < 15  # not held until the 30 s timeout by the background child
    finally:
        os.kill(int(pids.read_text()), signal.SIGKILL)


def test_missing_script(hooks: Hooks) -> None:
    diagnostics = hooks.run(HookScript("scripts/not-there.sh"))
    assert diagnostics.error_code == ErrorCode.SCRIPT_MISSING
    assert diagnostics.api_error_code == "ScriptMissing"
    assert diagnostics.message == (
        f"Script does not exist at specified location: {hooks.archive / 'scripts/not-there.sh'}"
    )
    assert diagnostics.log == "LifecycleEvent - AfterInstall\nScript - scripts/not-there.sh\n"


def test_script_without_execute_permission_is_made_executable_and_runs(hooks: Hooks) -> None:
    """As AWS's agent does: chmod +x, then run."""
    name = hooks.script("plain.sh", "echo ran", executable=False)
    assert hooks.run(HookScript(name)).succeeded
    assert os.access(hooks.archive / name, os.X_OK)


def test_location_that_is_a_directory_is_not_executable(hooks: Hooks) -> None:
    (hooks.archive / "scripts").mkdir()
    diagnostics = hooks.run(HookScript("scripts"))
    assert diagnostics.error_code == ErrorCode.SCRIPT_NOT_EXECUTABLE
    assert diagnostics.message.startswith("Unable to set script at specified location: scripts as executable")


_NOEXEC_CHILD = """
import json, sys
from pathlib import Path
from opendeploy.agent.hook_runner import HookContext, run_hook
from opendeploy.agent.script_log import EventLog
from opendeploy.appspec.model import HookScript
archive = Path(sys.argv[1])
(archive / "s.sh").write_text("#!/bin/sh\\necho hi\\n")
with EventLog(archive / "scripts.log", None, "d-TEST") as log:
    d = run_hook([HookScript("s.sh")], HookContext("AfterInstall", archive, {}, 0.5), log)
print(json.dumps({"code": int(d.error_code), "message": d.message}))
"""


@pytest.mark.root
def test_script_on_a_noexec_file_system_is_not_executable(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a noexec file system in a private mount namespace")
    archive = tmp_path / "archive"
    archive.mkdir()
    command = (
        f"mount -t tmpfs -o noexec tmpfs {archive} && exec {sys.executable} -c '{_NOEXEC_CHILD}' {archive}"
    )
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outcome = json.loads(result.stdout)
    assert outcome == {
        "code": int(ErrorCode.SCRIPT_NOT_EXECUTABLE),
        "message": "Unable to set script at specified location: s.sh as executable",
    }


@pytest.fixture
def open_hooks(tmp_path: Path) -> Iterator[Hooks]:
    """Hooks in a directory other users can reach (pytest's own tmp directories are private to root)."""
    base = Path(tempfile.mkdtemp(prefix="opendeploy-runas-"))
    base.chmod(0o755)
    try:
        yield Hooks(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.root
def test_runas_runs_the_script_as_that_user(open_hooks: Hooks, accounts: Callable[..., None]) -> None:
    accounts(users=("codedeployuser",))
    hooks = open_hooks
    out = hooks.tmp / "out"
    out.mkdir()
    out.chmod(0o777)
    name = hooks.script("who.sh", f'id -un; echo "$LIFECYCLE_EVENT" > {out}/made-by-script')
    diagnostics = hooks.run(HookScript(name, runas="codedeployuser"))
    assert diagnostics.succeeded, diagnostics
    assert "[stdout]codedeployuser" in hooks.scripts_log.read_text()
    made = out / "made-by-script"
    assert made.read_text() == "AfterInstall\n", "the event's variables reach a runas script"
    assert made.owner() == "codedeployuser"


@pytest.mark.root
def test_runas_failure_names_the_user(open_hooks: Hooks, accounts: Callable[..., None]) -> None:
    accounts(users=("codedeployuser",))
    hooks = open_hooks
    name = hooks.script("fail.sh", "exit 2")
    diagnostics = hooks.run(HookScript(name, runas="codedeployuser"))
    assert diagnostics.message == (
        "Script at specified location: fail.sh run as user codedeployuser failed with exit code 2"
    )


def test_runas_unknown_user(hooks: Hooks) -> None:
    name = hooks.script("s.sh", "true")
    diagnostics = hooks.run(HookScript(name, runas="no-such-user-x"))
    assert diagnostics.error_code == ErrorCode.SCRIPT_FAILED
    assert "cannot run as user no-such-user-x: no such user on this host" in diagnostics.message


def test_deployments_log_rolls_over_at_its_limit(hooks: Hooks, monkeypatch: pytest.MonkeyPatch) -> None:
    import opendeploy.agent.script_log as script_log

    monkeypatch.setattr(script_log, "DEPLOYMENTS_LOG_LIMIT", 100)
    for n in range(3):
        hooks.run(HookScript(hooks.script(f"s{n}.sh", f"echo run-{n}")))
    current = hooks.deployments_log.read_text()
    assert "run-2" in current and "run-1" not in current
    assert "run-1" in hooks.deployments_log.with_name(hooks.deployments_log.name + ".1").read_text()
    assert "run-0" in hooks.deployments_log.with_name(hooks.deployments_log.name + ".2").read_text()

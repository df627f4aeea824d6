"""Hooks through ``opendeploy local``: a WordPress-like bundle with several scripts per event, the hook
environment, runas and timeouts; and each way a script can fail, as the user sees it (issue 2, item 6)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bundle_factory import file, write_tree

from conftest import Local, Result, needs_root
from opendeploy.appspec.lifecycle_events import SERVER_ORDERED_EVENTS

RECORD = (
    'echo "$LIFECYCLE_EVENT $(basename "$0") $DEPLOYMENT_ID|$APPLICATION_NAME|$DEPLOYMENT_GROUP_NAME|'
    '$DEPLOYMENT_GROUP_ID|${BUNDLE_KEY-unset}" >> "$TRAIL"'
)


def _wordpress(base: Path, web: Path, trail: Path, *, runas: str | None = None) -> Path:
    """A bundle shaped like the guide's WordPress tutorial: site files plus scripts for five events."""
    scripts = {
        "install_dependencies.sh": "",
        "prepare_config.sh": "",
        # Run as another user it can only report who it is; as root it changes the site's modes.
        "change_permissions.sh": 'echo "user=$(id -un)" >> "$TRAIL"' if runas else f"chmod -R go+r {web}",
        "start_server.sh": f"echo started > {web}/server.pid",
        "warm_cache.sh": "",
        "check_site.sh": f"grep -q WordPress {web}/index.php",
        "stop_server.sh": f"rm -f {web}/server.pid",
    }
    entries = [file("wordpress/index.php", "<?php /* WordPress */"), file("wordpress/wp-config.php", "<?php")]
    for name, body in scripts.items():
        entries.append(
            file(f"scripts/{name}", f"#!/bin/bash\nset -e\nTRAIL={trail}\n{RECORD}\n{body}\n", 0o755)
        )
    runas_line = f"\n      runas: {runas}" if runas else ""
    appspec = f"""\
version: 0.0
os: linux
files:
  - source: wordpress
    destination: {web}
hooks:
  BeforeInstall:
    - location: scripts/install_dependencies.sh
      timeout: 300
    - location: scripts/prepare_config.sh
      timeout: 300
  AfterInstall:
    - location: scripts/change_permissions.sh
      timeout: 300{runas_line}
  ApplicationStart:
    - location: scripts/start_server.sh
      timeout: 300
    - location: scripts/warm_cache.sh
      timeout: 60
  ValidateService:
    - location: scripts/check_site.sh
      timeout: 30
  ApplicationStop:
    - location: scripts/stop_server.sh
      timeout: 300
"""
    return write_tree(base / "wordpress-bundle", [file("appspec.yml", appspec), *entries])


def test_wordpress_like_bundle_runs_every_script_in_order_with_its_environment(
    local: Local, tmp_path: Path
) -> None:
    web = tmp_path / "var/www/html/WordPress"
    trail = tmp_path / "trail"
    bundle = _wordpress(tmp_path, web, trail)
    result = local.deploy(
        bundle,
        "--application-name",
        "WordPress_App",
        "--deployment-group-name",
        "WordPress_DepGroup",
        "--deployment-group",
        "b1a2189b-dd90-4ef5-8f40-4c1c5EXAMPLE",
    )
    context = (
        f"{result.deployment_id}|WordPress_App|WordPress_DepGroup|b1a2189b-dd90-4ef5-8f40-4c1c5EXAMPLE|unset"
    )
    assert trail.read_text().splitlines() == [
        f"BeforeInstall install_dependencies.sh {context}",
        f"BeforeInstall prepare_config.sh {context}",
        f"AfterInstall change_permissions.sh {context}",
        f"ApplicationStart start_server.sh {context}",
        f"ApplicationStart warm_cache.sh {context}",
        f"ValidateService check_site.sh {context}",
    ], "ApplicationStop has nothing to run on the first deployment; local bundles have no BUNDLE_* variables"
    assert (web / "server.pid").read_text() == "started\n"
    for event in SERVER_ORDERED_EVENTS:
        assert "failed" not in result.event_line(event)


def test_defaults_application_name_is_the_bundle_location_and_group_name_localfleet(
    local: Local, tmp_path: Path
) -> None:
    trail = tmp_path / "trail"
    bundle = _wordpress(tmp_path, tmp_path / "web", trail)
    result = local.deploy(bundle, "--events", "ValidateService")
    assert trail.read_text().splitlines() == [
        f"ValidateService check_site.sh {result.deployment_id}|{bundle}|LocalFleet|"
        "default-local-deployment-group|unset"
    ]


@pytest.mark.root
def test_runas_script_runs_as_the_named_user(open_tmp: Path, accounts: Callable[..., None]) -> None:
    accounts(users=("wpdeployer",))
    web = open_tmp / "www"
    trail = open_tmp / "trail"
    trail.touch(mode=0o666)
    trail.chmod(0o666)
    bundle = _wordpress(open_tmp, web, trail, runas="wpdeployer")
    runner = Local(open_tmp)
    result = runner.deploy(bundle)
    lines = trail.read_text().splitlines()
    assert f"AfterInstall change_permissions.sh {result.deployment_id}" in lines[2]
    assert lines[3] == "user=wpdeployer"
    assert lines[4].startswith("ApplicationStart start_server.sh")
    scripts_log = (runner.group_dir() / result.deployment_id / "logs/scripts.log").read_text()
    assert "Script - scripts/change_permissions.sh" in scripts_log


# -- failures --------------------------------------------------------------------------------------------


def _one_script_bundle(tmp_path: Path, body: str | None, *, timeout: int = 30, mode: int = 0o755) -> Path:
    entries = [
        file(
            "appspec.yml",
            f"""\
version: 0.0
os: linux
hooks:
  AfterInstall:
    - location: scripts/step.sh
      timeout: {timeout}
  ApplicationStart:
    - location: scripts/start.sh
""",
        )
    ]
    if body is not None:
        entries.append(file("scripts/step.sh", f"#!/bin/bash\n{body}\n", mode))
    entries.append(file("scripts/start.sh", f"#!/bin/bash\ntouch {tmp_path}/started\n", 0o755))
    return write_tree(tmp_path / "bundle", entries)


def _assert_failed_at_after_install(result: Result, tmp_path: Path, error: str) -> None:
    assert result.returncode == 1, result.output
    assert error in result.event_line("AfterInstall")
    assert re.search(r"Lifecycle event\s+AfterInstall", result.output)
    assert re.search(rf"Error code\s+{error}", result.output)
    assert "not run" in result.output
    assert not (tmp_path / "started").exists(), "events after a failed one do not run"


def test_failing_script_shows_event_script_message_and_log_tail(local: Local, tmp_path: Path) -> None:
    bundle = _one_script_bundle(tmp_path, "echo 'checking disk'; echo 'disk full' >&2; exit 3")
    result = local.deploy(bundle, expect=1)
    _assert_failed_at_after_install(result, tmp_path, "ScriptFailed")
    assert "Script at specified location: scripts/step.sh failed with exit code 3" in result.output
    assert "[stdout]checking disk" in result.output
    assert "[stderr]disk full" in result.output
    assert "deployment-archive/scripts/step.sh" in result.output


def test_script_that_times_out(local: Local, tmp_path: Path) -> None:
    bundle = _one_script_bundle(tmp_path, "echo waiting; sleep 120", timeout=1)
    result = local.deploy(bundle, expect=1, timeout=60)
    _assert_failed_at_after_install(result, tmp_path, "ScriptTimedOut")
    assert "Script at specified location: scripts/step.sh failed to complete in 1 seconds" in result.output


def test_missing_script(local: Local, tmp_path: Path) -> None:
    bundle = _one_script_bundle(tmp_path, None)
    result = local.deploy(bundle, expect=1)
    _assert_failed_at_after_install(result, tmp_path, "ScriptMissing")
    assert "Script does not exist at specified location: " in result.output


def test_script_without_execute_permission_is_made_executable(local: Local, tmp_path: Path) -> None:
    """Decision, as AWS's agent: a script lacking the execute bit gets chmod +x and runs."""
    bundle = _one_script_bundle(tmp_path, f"touch {tmp_path}/ran", mode=0o644)
    local.deploy(bundle)
    assert (tmp_path / "ran").exists()


@pytest.mark.root
@needs_root("mounts a noexec file system in a private mount namespace")
def test_script_that_cannot_be_made_executable(tmp_path: Path) -> None:
    """The deployment root on a noexec file system (its own mount namespace): ScriptNotExecutable."""
    bundle = _one_script_bundle(tmp_path, "true")
    runner = Local(tmp_path)
    runner.root_dir.mkdir()
    mount = f'mount -t tmpfs -o noexec tmpfs {runner.root_dir} && exec "$@"'
    command = [sys.executable, "-m", "opendeploy", "local", "-c", str(runner.config), "-l", str(bundle)]
    completed = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh", *command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "ScriptNotExecutable" in completed.stdout
    assert "Unable to set script at specified location: scripts/step.sh as executable" in completed.stdout


def test_interrupting_the_command_ends_the_running_script(local: Local, tmp_path: Path) -> None:
    started, pid_file = tmp_path / "started", tmp_path / "pid"
    bundle = _one_script_bundle(tmp_path, f"echo $$ > {pid_file}; touch {started}; sleep 300")
    command = [sys.executable, "-m", "opendeploy", "local", "-c", str(local.config), "-l", str(bundle)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert time.monotonic() < deadline, "the script never started"
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, output
    assert "Interrupted" in output
    script_pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{script_pid}").exists() and "Z" not in _state(script_pid):
        assert time.monotonic() < deadline, "the script outlived the command"
        time.sleep(0.02)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "Z"

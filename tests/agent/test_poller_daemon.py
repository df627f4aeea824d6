"""``opendeploy agent`` as a process: it reads the host's files, logs in the AWS agent's layout, refuses to
run twice on the same files, finishes a running hook when stopped with SIGTERM, and after ``kill -9``
reports the interrupted event as failed when it starts again.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from command_service_double import HOST, KEY_ID, Command, CommandServiceDouble, spec_for, write_bundle

from opendeploy.agent.agent_config import AgentConfig

AGENT_LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO |WARN |ERROR|DEBUG) \[codedeploy-agent\(\d+\)\]: "
)


def wait_until(condition: Callable[[], object], timeout: float = 20.0, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.05)


class AgentFiles:
    """The files ``opendeploy register`` writes, in a temporary directory."""

    def __init__(self, base: Path, service: CommandServiceDouble, *, read_timeout: int = 10) -> None:
        self.base = base
        self.service = service
        conf = base / "conf"
        conf.mkdir(parents=True)
        self.certificate = service.write_certificate(conf / "server.pem")
        self.onpremises = conf / "codedeploy.onpremises.yml"
        self.onpremises.write_text(
            f"---\naws_access_key_id: {KEY_ID}\naws_secret_access_key: secret\n"
            f"iam_user_arn: {HOST}\nregion: us-east-1\n"
        )
        self.config = conf / "codedeployagent.yml"
        self.config.write_text(
            textwrap.dedent(
                f"""\
                ---
                :log_dir: {base / "log"}
                :pid_dir: {base / "pid"}
                :root_dir: {base / "root"}
                :on_premises_config_file: {self.onpremises}
                :deployment_signer_certificate: {self.certificate}
                :deploy_control_endpoint: {service.endpoint}
                :wait_between_runs: 0
                :wait_after_error: 1
                :http_read_timeout: {read_timeout}
                :kill_agent_max_wait_time_seconds: 30
                """
            )
        )
        self.log = base / "log" / "codedeploy-agent.log"

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "opendeploy", "agent", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def service() -> Iterator[CommandServiceDouble]:
    with CommandServiceDouble(HOST, KEY_ID, hold_seconds=0.5) as double:
        yield double


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def waiting_hook(release: Path, started: Path) -> str:
    return textwrap.dedent(
        f"""\
        #!/bin/sh
        touch "{started}"
        for i in $(seq 400); do [ -e "{release}" ] && exit 0; sleep 0.05; done
        exit 1
        """
    )


def start_in_a_waiting_after_install(
    files: AgentFiles, deployment_id: str, processes: list
) -> tuple[list[Command], Path, subprocess.Popen[str]]:
    """Start the agent on a deployment (DownloadBundle, Install, AfterInstall, ApplicationStart) whose
    AfterInstall hook waits for the returned release file; return once that hook runs."""
    base = files.base
    release, started = base / "release", base / "started"
    bundle = write_bundle(base / "bundle", base / "dest", {"AfterInstall": waiting_hook(release, started)})
    commands = files.service.add_deployment(
        spec_for(deployment_id, bundle), ["DownloadBundle", "Install", "AfterInstall", "ApplicationStart"]
    )
    agent = files.start()
    processes.append(agent)
    wait_until(started.exists, message="the AfterInstall hook to start")
    return commands, release, agent


def test_sigterm_lets_the_running_hook_finish_and_report_then_exits(
    tmp_path: Path, service: CommandServiceDouble, processes: list
) -> None:
    files = AgentFiles(tmp_path, service)
    commands, release, agent = start_in_a_waiting_after_install(files, "d-DAEMON001", processes)

    agent.send_signal(signal.SIGTERM)
    wait_until(lambda: "waiting up to 30 s for AfterInstall" in files.log_text(), message="the agent to wait")
    assert agent.poll() is None  # still there: the hook has not finished
    release.touch()
    assert agent.wait(20) == 0

    after_install = commands[2]
    assert after_install.completion is not None and after_install.completion[0] == "Succeeded"
    # No new work after SIGTERM (a poll in flight may still have brought ApplicationStart back: kept).
    assert commands[3].completion is None and not commands[3].acked
    lines = files.log_text().splitlines()
    assert lines and all(AGENT_LOG_LINE.match(line) for line in lines), lines[:5]
    assert "opendeploy agent stopped" in lines[-1]
    assert not (tmp_path / "root" / "ongoing-deployment" / "d-DAEMON001").exists()


def test_a_command_a_held_poll_brings_back_while_stopping_runs_first_at_the_next_start(
    tmp_path: Path, processes: list
) -> None:
    # The poll hold is long, so the agent's poll in flight when SIGTERM comes is still open when the
    # running hook finishes and the double hands out the next event on it.
    with CommandServiceDouble(HOST, KEY_ID, hold_seconds=45) as service:
        files = AgentFiles(tmp_path, service, read_timeout=60)
        commands, release, agent = start_in_a_waiting_after_install(files, "d-DAEMON003", processes)

        wait_until(
            lambda: commands[2].acked and service.polls_held > 0,
            message="a poll held open while AfterInstall runs",
        )
        agent.send_signal(signal.SIGTERM)
        wait_until(lambda: "waiting up to 30 s for AfterInstall" in files.log_text(), message="the wait")
        release.touch()
        assert agent.wait(20) == 0
        assert commands[3].deliveries == 1 and not commands[3].acked  # handed out, not started
        assert "ApplicationStart kept to run when the agent starts again" in files.log_text()
        assert len(list((tmp_path / "root" / "received-commands").iterdir())) == 1

        restarted = files.start()
        processes.append(restarted)
        service.wait_for(lambda: commands[3].completion is not None, message="ApplicationStart to complete")
        assert commands[3].completion is not None and commands[3].completion[0] == "Succeeded"
        assert commands[3].completions == 1
        assert "running ApplicationStart, received before the agent last stopped" in files.log_text()
        wait_until(lambda: not list((tmp_path / "root" / "received-commands").iterdir()), message="forget")
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(20) == 0


def test_kill_9_during_a_hook_is_reported_as_failed_after_restart(
    tmp_path: Path, service: CommandServiceDouble, processes: list
) -> None:
    files = AgentFiles(tmp_path, service)
    release, started = tmp_path / "release", tmp_path / "started"
    bundle = write_bundle(
        tmp_path / "bundle", tmp_path / "dest", {"AfterInstall": waiting_hook(release, started)}
    )
    commands = service.add_deployment(
        spec_for("d-DAEMON002", bundle), ["DownloadBundle", "Install", "AfterInstall"]
    )
    agent = files.start()
    processes.append(agent)
    wait_until(started.exists, message="the AfterInstall hook to start")
    marker = tmp_path / "root" / "ongoing-deployment" / "d-DAEMON002"
    assert marker.read_text() == commands[2].identifier

    agent.kill()
    agent.wait(10)
    release.touch()  # the orphaned script ends; its result is lost with the agent
    restarted = files.start()
    processes.append(restarted)
    service.wait_for(lambda: commands[2].completion is not None, message="the interrupted event reported")

    status, diagnostics = commands[2].completion  # type: ignore[misc]
    assert (status, diagnostics["error_code"]) == ("Failed", 7)
    wait_until(lambda: not marker.exists(), message="the marker removed")
    restarted.send_signal(signal.SIGTERM)
    assert restarted.wait(20) == 0


def test_a_second_agent_on_the_same_files_refuses_to_start(
    tmp_path: Path, service: CommandServiceDouble, processes: list
) -> None:
    files = AgentFiles(tmp_path, service)
    first = files.start()
    processes.append(first)
    wait_until(lambda: "opendeploy agent started" in files.log_text(), message="the first agent")

    second = files.start()
    processes.append(second)
    assert second.wait(20) == 2
    assert f"another agent (pid {first.pid}) is already running" in second.stderr.read()  # type: ignore[union-attr]
    assert first.poll() is None
    first.send_signal(signal.SIGTERM)
    assert first.wait(20) == 0


def run_agent_once(files: AgentFiles) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opendeploy", "agent", "--config", str(files.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_or_broken_host_files_stop_the_agent_with_a_clear_error(
    tmp_path: Path, service: CommandServiceDouble
) -> None:
    files = AgentFiles(tmp_path, service)
    good_identity = files.onpremises.read_text()
    files.onpremises.unlink()
    result = run_agent_once(files)
    assert result.returncode == 2
    assert f"cannot read the on-premises configuration {files.onpremises}" in result.stderr
    assert "cannot start" in files.log_text()

    files.onpremises.write_text(f"iam_user_arn: {HOST}\nregion: us-east-1\n")
    result = run_agent_once(files)
    assert result.returncode == 2
    assert "iam_user_arn is set but aws_access_key_id, aws_secret_access_key missing" in result.stderr

    files.onpremises.write_text(good_identity)
    files.certificate.write_text("garbage")
    result = run_agent_once(files)
    assert result.returncode == 2
    assert f"the pinned server certificate {files.certificate} is not a PEM certificate" in result.stderr


def test_the_example_systemd_unit_is_valid_and_stops_the_agent_gracefully(tmp_path: Path) -> None:
    """packaging/systemd/opendeploy-agent.service: systemd accepts it, it runs ``opendeploy agent`` on the
    default configuration, and SIGTERM reaches the agent alone for as long as the agent may wait."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("needs systemd-analyze to check the unit")
    unit = Path(__file__).parents[2] / "packaging" / "systemd" / "opendeploy-agent.service"
    text = unit.read_text()
    executable = Path(sys.executable).with_name("opendeploy")
    assert (
        "ExecStart=/usr/local/bin/opendeploy agent --config /etc/codedeploy-agent/conf/codedeployagent.yml"
        in text
    )
    local = tmp_path / "opendeploy-agent.service"
    local.write_text(text.replace("/usr/local/bin/opendeploy", str(executable)))
    result = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    assert settings["KillMode"] == "mixed"  # not the hook scripts in the agent's control group
    assert int(settings["TimeoutStopSec"]) >= AgentConfig().kill_agent_max_wait_time_seconds

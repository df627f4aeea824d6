"""The agent's poll loop against a command service over HTTP, with the real botocore client and the real
install engine: commands run in order with the right acknowledgements and diagnostics, specifications
not signed by the pinned server are refused, interrupted events are reported after a restart, commands
of different deployment groups run at once, and the loop rides out a server that goes away.
"""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from command_service_double import (
    HOST,
    KEY_ID,
    CommandServiceDouble,
    new_signer,
    sign_document,
    spec_for,
    write_bundle,
)

from opendeploy.agent.agent_config import AgentConfig
from opendeploy.agent.command_client import CommandServiceClient, create_botocore_client, fit_diagnostics
from opendeploy.agent.diagnostics import Diagnostics, ErrorCode
from opendeploy.agent.ongoing_deployments import OngoingDeployments
from opendeploy.agent.onpremises_config import InstanceIdentity
from opendeploy.agent.poller import CommandPoller
from opendeploy.agent.retries import backoff_delay

EVENTS = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]

ENV_HOOK = """\
#!/bin/sh
env | grep -E '^(LIFECYCLE_EVENT|DEPLOYMENT_ID|APPLICATION_NAME|DEPLOYMENT_GROUP_(NAME|ID))=' \\
  | sort > "{out}/$LIFECYCLE_EVENT.env"
echo "ran $LIFECYCLE_EVENT" >> "{out}/runs.log"
"""


class RunningAgent:
    def __init__(self, poller: CommandPoller, config: AgentConfig) -> None:
        self.poller = poller
        self.config = config
        self.stop = threading.Event()
        self.thread = threading.Thread(target=poller.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> RunningAgent:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        assert self.poller.stop_within(30), "commands still running at the end of the test"


@pytest.fixture
def service() -> Iterator[CommandServiceDouble]:
    with CommandServiceDouble(HOST, KEY_ID, hold_seconds=0.3) as double:
        yield double


def make_agent(tmp_path: Path, service: CommandServiceDouble, certificate: Any = None) -> RunningAgent:
    config = AgentConfig(
        root_dir=tmp_path / "root",
        log_dir=tmp_path / "log",
        wait_between_runs=0,
        wait_after_error=1,
        http_read_timeout=10,
        hook_kill_grace_seconds=1.0,
    )
    identity = InstanceIdentity(HOST, "us-east-1", KEY_ID, "test-secret")
    client = create_botocore_client(identity, service.endpoint, read_timeout=10, connect_timeout=2)
    poller = CommandPoller(
        CommandServiceClient(client, HOST),
        config=config,
        certificate=certificate or service.certificate,
        ongoing=OngoingDeployments(config.root_dir / "ongoing-deployment"),
    )
    return RunningAgent(poller, config)


def completed(service: CommandServiceDouble, commands: list) -> bool:
    return all(service.command(c.identifier).completion is not None for c in commands)


def test_a_deployment_runs_event_by_event_with_acknowledgements_and_diagnostics(
    tmp_path: Path, service: CommandServiceDouble
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    hook = ENV_HOOK.format(out=out)
    bundle = write_bundle(
        tmp_path / "bundle",
        tmp_path / "dest",
        {"BeforeInstall": hook, "AfterInstall": hook, "ApplicationStart": hook, "ValidateService": hook},
    )
    service.ack_delay = 0.6  # the agent polls again meanwhile and is handed the same command
    commands = service.add_deployment(spec_for("d-POLLER001", bundle), EVENTS)

    with make_agent(tmp_path, service):
        service.wait_for(lambda: completed(service, commands), message="every event completed")

    outcomes = {c.name: c.completion for c in commands}
    for name, (status, diagnostics) in outcomes.items():
        assert status == "Succeeded", (name, diagnostics)
        assert diagnostics["error_code"] == 0
    assert outcomes["ApplicationStop"][1]["message"] == "Succeeded: CompletedNoopCommand"
    acks = {c.name: json.loads(c.ack_payload or "{}") for c in commands}
    assert acks["ApplicationStop"] == {"IsCommandNoop": True}  # first deployment: nothing to stop
    assert acks["DownloadBundle"] == {"IsCommandNoop": False}
    assert acks["BeforeInstall"] == {"IsCommandNoop": False}

    assert (tmp_path / "dest" / "app.txt").read_text() == "hello from the revision\n"
    env = dict(line.split("=", 1) for line in (out / "AfterInstall.env").read_text().splitlines())
    assert env == {
        "APPLICATION_NAME": "PollerApp",
        "DEPLOYMENT_GROUP_ID": "dg-poller-1",
        "DEPLOYMENT_GROUP_NAME": "dg-poller-1-name",
        "DEPLOYMENT_ID": "d-POLLER001",
        "LIFECYCLE_EVENT": "AfterInstall",
    }
    # Each hook ran exactly once although commands were handed out again before their acknowledgement.
    assert max(c.deliveries for c in commands) >= 2
    assert sorted((out / "runs.log").read_text().splitlines()) == sorted(
        f"ran {e}" for e in ("BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")
    )
    assert all(c.completions == 1 for c in commands)
    assert not list((tmp_path / "root" / "ongoing-deployment").iterdir())
    # The deployment's seven events share one specification: fetched and verified once.
    assert service.operations().count("GetDeploymentSpecification") == 1


def test_a_failing_hook_is_reported_with_its_script_message_and_log_tail(
    tmp_path: Path, service: CommandServiceDouble
) -> None:
    failing = "#!/bin/sh\necho 'checking the service'\necho 'service is down' >&2\nexit 3\n"
    bundle = write_bundle(tmp_path / "bundle", tmp_path / "dest", {"ValidateService": failing})
    commands = service.add_deployment(spec_for("d-POLLER002", bundle), EVENTS)

    with make_agent(tmp_path, service):
        service.wait_for(lambda: completed(service, commands), message="every event completed")

    status, diagnostics = commands[-1].completion  # type: ignore[misc]
    assert status == "Failed"
    assert diagnostics["error_code"] == ErrorCode.SCRIPT_FAILED
    assert diagnostics["script_name"] == "scripts/ValidateService.sh"
    assert "failed with exit code 3" in diagnostics["message"]
    assert "[stdout]checking the service" in diagnostics["log"]
    assert "[stderr]service is down" in diagnostics["log"]


@pytest.mark.parametrize("how", ["another server's key", "unsigned TEXT/JSON", "not PKCS7 at all"])
def test_a_specification_not_signed_by_the_pinned_server_is_refused_and_nothing_runs(
    tmp_path: Path, service: CommandServiceDouble, how: str
) -> None:
    bundle = write_bundle(tmp_path / "bundle", tmp_path / "dest", {})
    spec = spec_for("d-POLLER003", bundle)
    if how == "another server's key":
        key, certificate = new_signer("impostor")
        envelope = ("PKCS7/JSON", sign_document(json.dumps(spec).encode(), key, certificate))
        expected = "not signed by the pinned server certificate"
    elif how == "unsigned TEXT/JSON":
        envelope = ("TEXT/JSON", json.dumps(spec))
        expected = "Unsupported DeploymentSpecification format: TEXT/JSON"
    else:
        envelope = ("PKCS7/JSON", json.dumps(spec))
        expected = "Could not parse the PKCS7"
    commands = service.add_deployment(spec, ["DownloadBundle"], envelope=envelope)

    with make_agent(tmp_path, service):
        service.wait_for(lambda: completed(service, commands), message="the command completed")

    status, diagnostics = commands[0].completion  # type: ignore[misc]
    assert status == "Failed"
    assert diagnostics["error_code"] == ErrorCode.UNKNOWN_ERROR
    assert expected in diagnostics["message"]
    assert commands[0].ack_payload is None  # refused before acknowledging
    assert not (tmp_path / "root" / "dg-poller-1").exists()  # nothing was downloaded


def test_events_interrupted_by_an_agent_crash_are_reported_failed_at_restart(
    tmp_path: Path, service: CommandServiceDouble
) -> None:
    """Decision: every interrupted event is reported (AWS's agent v1 reports only the newest marker; two
    deployment groups may have been running at once), except markers older than a day, which the
    server has long timed out."""
    bundle = write_bundle(tmp_path / "bundle", tmp_path / "dest", {})
    markers = tmp_path / "root" / "ongoing-deployment"
    markers.mkdir(parents=True)
    interrupted = []
    for deployment_id, group in (("d-POLLER004", "dg-a"), ("d-POLLER014", "dg-b"), ("d-POLLER024", "dg-c")):
        [command] = service.add_deployment(spec_for(deployment_id, bundle, group), ["AfterInstall"])
        command.acked = True  # the killed agent had acknowledged it
        (markers / deployment_id).write_text(command.identifier)
        interrupted.append(command)
    stale = interrupted.pop()
    day_and_more = time.time() - 25 * 3600
    os.utime(markers / "d-POLLER024", (day_and_more, day_and_more))

    with make_agent(tmp_path, service):
        service.wait_for(
            lambda: all(c.completion is not None for c in interrupted) and not list(markers.iterdir()),
            message="the interrupted events reported and their markers removed",
        )

    for command in interrupted:
        status, diagnostics = command.completion  # type: ignore[misc]
        assert status == "Failed"
        assert diagnostics == {
            "error_code": 7,
            "script_name": "",
            "message": "Failed: Failing in-progress lifecycle event after an agent restart.",
            "log": "",
        }
    assert stale.completion is None
    assert service.operations()[:2] == ["PutHostCommandComplete"] * 2  # before the first poll


def test_commands_of_different_deployment_groups_run_at_the_same_time(
    tmp_path: Path, service: CommandServiceDouble
) -> None:
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    rendezvous = textwrap.dedent(
        f"""\
        #!/bin/sh
        touch "{meeting}/$DEPLOYMENT_GROUP_ID"
        for i in $(seq 200); do
          [ "$(ls "{meeting}" | wc -l)" -ge 2 ] && exit 0
          sleep 0.05
        done
        echo "the other deployment group never started" >&2
        exit 1
        """
    )
    commands = []
    for group in ("dg-a", "dg-b"):
        bundle = write_bundle(
            tmp_path / f"bundle-{group}", tmp_path / f"dest-{group}", {"AfterInstall": rendezvous}
        )
        commands += service.add_deployment(
            spec_for(f"d-{group.upper().replace('-', '')}", bundle, group),
            ["DownloadBundle", "Install", "AfterInstall"],
        )

    with make_agent(tmp_path, service):
        service.wait_for(lambda: completed(service, commands), message="both deployments completed")

    assert [c.completion[0] for c in commands] == ["Succeeded"] * 6, [c.completion for c in commands]


def test_the_agent_rides_out_a_server_that_goes_away_and_reports_once_it_is_back(
    tmp_path: Path, service: CommandServiceDouble
) -> None:
    release = tmp_path / "release"
    waiting = textwrap.dedent(
        f"""\
        #!/bin/sh
        for i in $(seq 400); do [ -e "{release}" ] && exit 0; sleep 0.05; done
        exit 1
        """
    )
    bundle = write_bundle(tmp_path / "bundle", tmp_path / "dest", {"ApplicationStart": waiting})
    commands = service.add_deployment(spec_for("d-POLLER006", bundle), EVENTS)
    start = next(c for c in commands if c.name == "ApplicationStart")

    with make_agent(tmp_path, service) as agent:
        service.wait_for(lambda: start.acked, message="ApplicationStart running")
        service.stop()  # the server goes away while the hook runs
        release.touch()
        # The poll loop notices and backs off; the finished hook's result waits to be reported.
        service.wait_for(lambda: agent.poller.consecutive_errors >= 2, message="polls failing")
        assert start.completion is None
        service.start()  # back, on the same port
        service.wait_for(lambda: completed(service, commands), message="the deployment finished")

    assert [c.completion[0] for c in commands] == ["Succeeded"] * len(EVENTS)
    assert start.completions == 1


def test_a_command_the_server_already_finished_is_not_run_again(
    tmp_path: Path, service: CommandServiceDouble
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    bundle = write_bundle(tmp_path / "bundle", tmp_path / "dest", {"BeforeInstall": ENV_HOOK.format(out=out)})
    service.ack_status = "Succeeded"
    commands = service.add_deployment(spec_for("d-POLLER007", bundle), ["BeforeInstall"])

    with make_agent(tmp_path, service) as agent:
        service.wait_for(lambda: commands[0].acked, message="acknowledged")
        service.wait_for(lambda: not agent.poller.running, message="the agent dropped it")

    assert commands[0].completion is None
    assert not (out / "runs.log").exists()


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    assert backoff_delay(0, 30) == 0
    assert [backoff_delay(n, 30, rand=lambda: 1.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert [backoff_delay(n, 30, rand=lambda: 0.0) for n in range(1, 4)] == [0.5, 1, 2]
    assert backoff_delay(50, 90, rand=lambda: 1.0) == 90  # no overflow after a long outage


def test_diagnostics_are_shortened_to_the_envelope_limit_keeping_the_newest_log_lines() -> None:
    log = "".join(f"[stdout]line {i:05d} " + "x" * 80 + "\n" for i in range(200))
    diagnostics = Diagnostics(ErrorCode.SCRIPT_FAILED, "scripts/a.sh", "m" * 9000, log)
    payload = fit_diagnostics(diagnostics)
    assert len(payload) <= 8192
    decoded = json.loads(payload)
    assert decoded["error_code"] == 4 and decoded["script_name"] == "scripts/a.sh"
    assert decoded["message"].startswith("mmmm")

    small = Diagnostics(ErrorCode.SCRIPT_FAILED, "scripts/a.sh", "failed", log[-3000:])
    decoded = json.loads(fit_diagnostics(small))
    assert decoded["log"] == log[-3000:]  # already small enough: untouched
    long_log = Diagnostics(ErrorCode.SCRIPT_FAILED, "s", "failed", log * 2)
    decoded = json.loads(fit_diagnostics(long_log))
    assert decoded["log"].endswith("line 00199 " + "x" * 80 + "\n") and decoded["message"] == "failed"


def test_a_command_whose_marker_cannot_be_written_fails_instead_of_running_untracked(
    tmp_path: Path, service: CommandServiceDouble
) -> None:
    bundle = write_bundle(tmp_path / "bundle", tmp_path / "dest", {})
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "ongoing-deployment").write_text("not a directory")
    commands = service.add_deployment(spec_for("d-POLLER008", bundle), ["DownloadBundle"])

    with make_agent(tmp_path, service):
        service.wait_for(lambda: completed(service, commands), message="the command completed")

    status, diagnostics = commands[0].completion  # type: ignore[misc]
    assert status == "Failed"
    assert "cannot record the ongoing deployment" in diagnostics["message"]
    assert not (tmp_path / "root" / "dg-poller-1" / "d-POLLER008" / "deployment-archive").exists()

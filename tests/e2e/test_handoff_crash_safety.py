"""The agent ⇄ server hand-off survives a crash at a chosen moment, on SQLite and PostgreSQL.

A proxy between the agent and the server (``support.answer_dropping_proxy``) forwards every request and,
at the chosen exchange, kills the server with SIGKILL after it has done the work and before its answer
reaches the agent — the moments the hand-off used to lose a command:

1. the server records an acknowledgement and dies before answering: the agent sends it again;
2. the server hands a command out and dies before answering: the command is handed out again at the
   agent's next poll within seconds (not after five minutes);
3. an agent killed and started again: its old, dead long poll is noticed, so the next command goes to
   the new one;
5. an agent told to stop while the server is out of reach stops within its bound, keeps the outcome it
   could not report, and reports it when it starts again.

Each deployment must succeed, each hook run exactly once (the host's own log says so), and quickly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploying import (
    bundle_bytes,
    create_group,
    deploy,
    event_statuses,
    instance_targets,
    register_host,
    start_hosts,
    upload,
    wait_for_deployment,
    write_revision,
)
from e2e_hosts import Host, wait_until

from support.answer_dropping_proxy import AnswerDroppingProxy, Exchange
from support.names import unique
from support.server import ServerProcess

HOOK_LOG = "/tmp/CodeDeployExample/hooks.log"
RECORD = '#!/bin/sh\necho "$LIFECYCLE_EVENT $DEPLOYMENT_ID" >> ' + HOOK_LOG + "\n"
HOOKED = ("BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")
QUICKLY = 30.0  # seconds: far less than the 300 s redelivery or the 1 h event deadline of before


def _revision(tmp_path: Path, extra_hooks: str = "", files: dict[str, str] | None = None) -> Path:
    hooks = "".join(f"  {event}:\n    - location: scripts/record.sh\n" for event in HOOKED)
    return write_revision(
        tmp_path / unique("revision"),
        "version: 0.0\nos: linux\nfiles:\n  - source: app.txt\n    destination: /tmp/CodeDeployExample\n"
        f"hooks:\n{hooks}{extra_hooks}",
        {"app.txt": "v1\n", "scripts/record.sh": RECORD, **(files or {})},
        executable=["scripts/record.sh", *(files or {})],
    )


def _deploy(server: ServerProcess, tag: str, revision: Path, group: tuple[str, str] | None = None) -> str:
    """Deploy ``revision`` to a new deployment group of the instances tagged ``tag``, or to ``group``
    (application, deployment group)."""
    location = upload(server, bundle_bytes(revision, "tgz"), f"app/{unique('v')}.tgz")
    if group is None:
        application = unique("app")
        group = (application, create_group(server, application, tag))
    return deploy(server, *group, {"revisionType": "S3", "s3Location": location})


def _hook_runs(host: Host, deployment_id: str) -> list[str]:
    log = host.path(HOOK_LOG)
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split()[0] for line in lines if line.endswith(deployment_id)]


def _assert_succeeded_once(server: ServerProcess, host: Host, deployment_id: str) -> None:
    info = wait_for_deployment(server, deployment_id, timeout=QUICKLY)
    assert info["status"] == "Succeeded", info
    assert _hook_runs(host, deployment_id) == list(HOOKED)  # each hook once, in order
    target = instance_targets(server, deployment_id)[host.name]
    assert set(event_statuses(target).values()) == {"Succeeded"}


def _host_behind_proxy(
    server: ServerProcess,
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    proxy: AnswerDroppingProxy,
) -> tuple[Host, str]:
    tag = unique("tag")
    host = hosts(server)
    register_host(host, instance_key, tag)
    host.configure(deploy_control_endpoint=proxy.endpoint)
    start_hosts([host])
    return host, tag


class KillOnce:
    """``decide`` for the proxy: at the first exchange ``matches`` accepts, kill the server (it has done
    the work) and drop the answer; the test restarts the server."""

    def __init__(self, server: ServerProcess, matches: Callable[[Exchange], bool]) -> None:
        self.server = server
        self.matches = matches
        self.fired = threading.Event()

    def __call__(self, exchange: Exchange) -> bool:
        if self.fired.is_set() or not self.matches(exchange):
            return False
        self.fired.set()
        self.server.kill9()
        return True


def _restart_after_kill(server: ServerProcess, killer: KillOnce) -> None:
    wait_until(killer.fired.is_set, timeout=60, message="the chosen answer to be dropped")
    time.sleep(2.0)  # the server is down for a moment, as a real restart takes
    server.start()


def _nth(operation: str, n: int) -> Callable[[Exchange], bool]:
    seen = [0]

    def matches(exchange: Exchange) -> bool:
        if exchange.operation != operation or exchange.status != 200:
            return False
        seen[0] += 1
        return seen[0] == n

    return matches


def test_an_acknowledgement_recorded_by_a_server_that_died_before_answering_is_sent_again(
    backend: str,
    server_factory: Callable[..., ServerProcess],
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    server = server_factory(backend)
    killer = KillOnce(server, _nth("PutHostCommandAcknowledgement", 3))  # BeforeInstall's
    proxy = AnswerDroppingProxy(server.port, killer)
    try:
        host, tag = _host_behind_proxy(server, hosts, instance_key, proxy)
        deployment_id = _deploy(server, tag, _revision(tmp_path))
        started = time.monotonic()
        _restart_after_kill(server, killer)
        _assert_succeeded_once(server, host, deployment_id)
        assert time.monotonic() - started < QUICKLY
        host.wait_for_log(r"acknowledging BeforeInstall failed")
    finally:
        proxy.close()


def test_a_command_handed_out_by_a_server_that_died_before_answering_is_handed_out_again_within_seconds(
    backend: str,
    server_factory: Callable[..., ServerProcess],
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    server = server_factory(backend)

    def carries_before_install(exchange: Exchange) -> bool:
        command = exchange.response.get("HostCommand") or {}
        return exchange.operation == "PollHostCommand" and command.get("CommandName") == "BeforeInstall"

    killer = KillOnce(server, carries_before_install)
    proxy = AnswerDroppingProxy(server.port, killer)
    try:
        host, tag = _host_behind_proxy(server, hosts, instance_key, proxy)
        deployment_id = _deploy(server, tag, _revision(tmp_path))
        _restart_after_kill(server, killer)
        restarted = time.monotonic()
        _assert_succeeded_once(server, host, deployment_id)
        assert time.monotonic() - restarted < QUICKLY
        handed_out = [
            e.response["HostCommand"]["CommandName"]
            for e, _ in proxy.exchanges
            if e.operation == "PollHostCommand" and e.response.get("HostCommand")
        ]
        assert handed_out.count("BeforeInstall") == 2  # lost once, handed out again
    finally:
        proxy.close()


def test_a_restarted_agents_next_command_does_not_go_to_its_dead_long_poll(
    backend: str,
    server_factory: Callable[..., ServerProcess],
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    # Redelivery of a lost answer only after five minutes: what saves the deployment here is that the
    # server notices the dead poll, not that it hands the command out again.
    server = server_factory(backend, extra_args=["--redelivery-after", "300"])
    tag = unique("tag")
    host = hosts(server)
    register_host(host, instance_key, tag)
    start_hosts([host])
    server.wait_for_polls_waiting(1)
    host.kill_agent()
    wait_until(lambda: _polls_waiting(server) == 0, timeout=10, message="the server to drop the dead poll")
    host.start_agent()
    server.wait_for_polls_waiting(1)

    started = time.monotonic()
    deployment_id = _deploy(server, tag, _revision(tmp_path))
    _assert_succeeded_once(server, host, deployment_id)
    assert time.monotonic() - started < QUICKLY


def _polls_waiting(server: ServerProcess) -> int:
    return int(httpx.get(f"{server.endpoint}/health", timeout=5.0).json()["agentPollsWaiting"])


WAIT_FOR_RELEASE = """#!/bin/sh
touch /tmp/CodeDeployExample/hook-started
while [ ! -e "{release}" ]; do sleep 0.1; done
"""


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_agent_stopped_while_the_server_is_unreachable_stops_in_time_and_reports_at_its_next_start(
    backend: str,
    server_factory: Callable[..., ServerProcess],
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    server = server_factory(backend)
    tag = unique("tag")
    host = hosts(server)
    register_host(host, instance_key, tag)
    start_hosts([host], kill_agent_max_wait_time_seconds=5)
    release = tmp_path / "release"
    revision = _revision(
        tmp_path,
        "  ApplicationStop:\n    - location: scripts/wait.sh\n      timeout: 120\n",
        {"scripts/wait.sh": WAIT_FOR_RELEASE.format(release=release)},
    )
    # ApplicationStop runs from the last successful revision: deploy once, then again with it waiting.
    application = unique("app")
    group = (application, create_group(server, application, tag))
    _assert_succeeded_once(server, host, _deploy(server, tag, revision, group))
    deployment_id = _deploy(server, tag, revision, group)
    wait_until(lambda: host.path("/tmp/CodeDeployExample/hook-started").exists(), message="the hook")
    server.kill9()
    release.touch()  # the hook ends while the server is down: its outcome cannot be reported
    host.wait_for_log(r"reporting \S+ failed")

    stopping = time.monotonic()
    assert host.stop_agent(timeout=60) == 1  # something was cut short: an outcome is unreported
    assert time.monotonic() - stopping < 5 + 10  # the configured bound, plus the scripts' grace
    assert "it is reported at the next start" in host.log_text()
    assert any((host.root_dir / "unreported-completions").iterdir())

    server.start()
    host.start_agent()
    host.wait_for_log(r"reporting the outcome of \S+, kept since the agent last ran")
    _assert_succeeded_once(server, host, deployment_id)
    stop_event = _event(instance_targets(server, deployment_id)[host.name], "ApplicationStop")
    assert stop_event["status"] == "Succeeded"  # the real outcome, not "failed after an agent restart"
    assert not any((host.root_dir / "unreported-completions").iterdir())


def _event(target: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == name)

"""Zero downtime, end to end (issue 10): in-place deployments with traffic control behind a real HAProxy.

Four real agents, each host serving HTTP on its own port (the revision in ``revisions/http_service``:
``<host> <version>`` on ``/``, a graceful stop), are the servers ``host-1`` … ``host-4`` of HAProxy's backend
``web``, health-checked every 100 ms (rise 2, fall 2); the server drives that HAProxy through its runtime
API (``--haproxy-socket``, a 5 s deregistration delay). While three clients send requests through HAProxy
continuously — one keep-alive connection, a new connection per request (a request every 5 ms each), and
one keep-alive connection always holding a 300 ms request in flight (so BlockTraffic has something to
drain) — deployments must fail no request, and HAProxy must never even have met a stopped server: no
connection error, response error, retry or 5xx in its backend counters. The service keeps its own
connections from HAProxy alive too (HTTP/1.1), the case where stopping a server still in rotation races
requests on idle connections. (HAProxy retries a refused connection on the same server after a
second, three times, so a deployment that stops instances still in rotation usually shows up as retries
and slow answers before it shows up as failed requests; the counters see both.)

The last test deploys the same revisions through a deployment group without a load balancer, and shows
that the same checks then fail: that is what the traffic-control events prevent.

The module shares one fleet (server, HAProxy, hosts with their agents) between its tests; each test
starts with every server ready and UP in HAProxy.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from e2e_hosts import require_hosts
from traffic_fleet import (
    IN_PLACE_EVENTS,
    TRAFFIC_CONTROL_EVENTS,
    Event,
    Fleet,
    Traffic,
    in_maintenance,
    lifecycle_events,
    server_stats,
    servers_state,
)

from support.haproxy import unavailable_reason

ONE_AT_A_TIME = "CodeDeployDefault.OneAtATime"
HALF_AT_A_TIME = "CodeDeployDefault.HalfAtATime"
NO_HAPROXY_ERRORS = {"econ": 0, "eresp": 0, "wretr": 0, "wredis": 0, "hrsp_5xx": 0}
DEREGISTRATION_DELAY = 5.0
# BlockTraffic ends once the server is drained (here: a 300 ms request at most), not when the 5 s
# deregistration delay has passed; AllowTraffic once HAProxy's checks pass (rise 2 × 100 ms + 100 ms).
# Both bounds leave room for a busy machine and still tell "as soon as" from "after the delay".
TRAFFIC_STEP_BOUND = DEREGISTRATION_DELAY / 2


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Four hosts running version v1 of the service behind HAProxy (a first deployment without traffic
    control, which also starts each host's service)."""
    require_hosts()
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    fleet = Fleet.start(tmp_path_factory.mktemp("fleet"), count=4, deregistration_delay=DEREGISTRATION_DELAY)
    try:
        _, info = fleet.deploy("v1", traffic_control=False, config="CodeDeployDefault.AllAtOnce")
        assert info["status"] == "Succeeded", info
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture
def traffic(fleet: Fleet) -> Iterator[Traffic]:
    """Every server back in rotation, then the clients sending requests until the test ends."""
    fleet.all_in_service()
    traffic = Traffic.start(fleet.haproxy)
    try:
        yield traffic
    finally:
        traffic.stop()
        print(f"traffic: {traffic.summary()}")


def out_of_service(events: list[Event]) -> tuple[float, float]:
    """When an instance was out of the load balancer: from BlockTraffic's start to AllowTraffic's end."""
    named = {e.name: e for e in events}
    start, end = named["BlockTraffic"].start, named["AllowTraffic"].end
    assert start is not None and end is not None, events
    return start, end


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def assert_events_in_order(events: list[Event], names: tuple[str, ...]) -> None:
    assert [e.name for e in events] == list(names)
    assert all(e.status == "Succeeded" for e in events), events
    for before, after in itertools.pairwise(events):
        assert before.start is not None and before.end is not None and after.start is not None, events
        assert before.start <= before.end <= after.start, (before, after)


def assert_traffic_steps_quick(events: dict[str, list[Event]]) -> None:
    durations = {
        (instance, e.name): e.duration
        for instance, instance_events in events.items()
        for e in instance_events
        if e.name in ("BlockTraffic", "AllowTraffic")
    }
    slow = {key: duration for key, duration in durations.items() if (duration or 0) >= TRAFFIC_STEP_BOUND}
    assert not slow, f"traffic steps of {TRAFFIC_STEP_BOUND} s or more: {slow}"


def assert_hooks_ran_from_the_right_revisions(hooks: list[tuple[str, str]], version: str) -> None:
    """The agent ran the revision's scripts in the guide's order: BeforeBlockTraffic, AfterBlockTraffic and
    ApplicationStop from the group's last successful revision (none on its first deployment), the others
    from the new one."""
    new = [("ApplicationStart", version), ("ValidateService", version)]
    new += [("BeforeAllowTraffic", version), ("AfterAllowTraffic", version)]
    if len(hooks) == len(new):
        assert hooks == new
        return
    previous = hooks[0][1]
    assert previous != version, hooks
    old = [("BeforeBlockTraffic", previous), ("AfterBlockTraffic", previous), ("ApplicationStop", previous)]
    assert hooks == old + new


@pytest.mark.parametrize(
    ("version", "config", "at_once"), [("v2", ONE_AT_A_TIME, 1), ("v3", HALF_AT_A_TIME, 2)]
)
def test_rolling_deployments_behind_haproxy_fail_no_request_and_end_on_the_new_version(
    fleet: Fleet, traffic: Traffic, version: str, config: str, at_once: int
) -> None:
    deployment_id, info = fleet.deploy(version, config=config)
    done = time.monotonic()

    assert info["status"] == "Succeeded", info
    answers = traffic.wait_for_answers(done, (h.name for h in fleet.hosts))
    assert set(answers) == {f"{h.name} {version}" for h in fleet.hosts}, answers
    events = lifecycle_events(fleet.server, deployment_id)
    assert set(events) == {h.name for h in fleet.hosts}
    for host_events in events.values():
        assert_events_in_order(host_events, TRAFFIC_CONTROL_EVENTS)
    assert_traffic_steps_quick(events)
    for host in fleet.hosts:
        assert_hooks_ran_from_the_right_revisions(fleet.hooks_run(host, deployment_id), version)
    assert most_at_once([out_of_service(e) for e in events.values()]) == at_once
    traffic.stop()
    assert traffic.failures() == [], traffic.summary()
    assert traffic.haproxy_errors() == NO_HAPROXY_ERRORS, traffic.summary()
    assert all(not in_maintenance(state) for state in servers_state(fleet.haproxy).values())


def test_an_instance_failing_validate_service_stays_out_of_haproxy_and_minimum_healthy_hosts_decide(
    fleet: Fleet, traffic: Traffic
) -> None:
    before = traffic.wait_for_answers(0, (h.name for h in fleet.hosts), count=20)
    deployment_id, info = fleet.deploy("v4", config=ONE_AT_A_TIME, fail_validate_on=["host-2"])
    done = time.monotonic()

    # OneAtATime keeps 3 of 4 healthy: host-2 (the second, by name) failing leaves no room for host-3
    # and host-4, which are skipped, and the deployment fails (only a failure on the last instance is
    # forgiven, guide L14736–14768).
    assert info["status"] == "Failed", info
    assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS", info
    events = lifecycle_events(fleet.server, deployment_id)
    assert_events_in_order(events["host-1"], TRAFFIC_CONTROL_EVENTS)
    statuses = {name: {e.name: e.status for e in host_events} for name, host_events in events.items()}
    failed = statuses["host-2"]
    assert failed["ValidateService"] == "Failed", failed
    assert {failed[e] for e in TRAFFIC_CONTROL_EVENTS[:-4]} == {"Succeeded"}, failed
    assert {failed[e] for e in TRAFFIC_CONTROL_EVENTS[-3:]} == {"Skipped"}, failed
    for skipped in ("host-3", "host-4"):
        assert set(statuses[skipped].values()) == {"Skipped"}, statuses[skipped]

    # host-2 stays in maintenance and gets no request while the others keep answering.
    state = servers_state(fleet.haproxy)
    assert in_maintenance(state["host-2"]), state["host-2"]
    assert not any(in_maintenance(state[name]) for name in ("host-1", "host-3", "host-4")), state
    served_by_host_2 = server_stats(fleet.haproxy)["host-2"]["stot"]
    answers = traffic.wait_for_answers(done, ("host-1", "host-3", "host-4"), count=100)
    assert server_stats(fleet.haproxy)["host-2"]["stot"] == served_by_host_2
    assert {body for body in answers if body.startswith("host-1 ")} == {"host-1 v4"}, answers
    assert not any(body.startswith("host-2 ") for body in answers), answers
    for skipped in ("host-3", "host-4"):  # still on the version they ran before
        previous = {body for body in before if body.startswith(f"{skipped} ")}
        assert {body for body in answers if body.startswith(f"{skipped} ")} <= previous, (answers, before)
    traffic.stop()
    assert traffic.failures() == [], traffic.summary()
    assert traffic.haproxy_errors() == NO_HAPROXY_ERRORS, traffic.summary()


def test_without_traffic_control_the_same_deployment_sends_requests_to_stopped_instances(
    fleet: Fleet, traffic: Traffic
) -> None:
    """The counter-proof: the checks of the tests above do fail when instances are not taken out first."""
    deployment_id, info = fleet.deploy("v5", traffic_control=False, config=ONE_AT_A_TIME)
    done = time.monotonic()

    assert info["status"] == "Succeeded", info
    for host_events in lifecycle_events(fleet.server, deployment_id).values():
        assert_events_in_order(host_events, IN_PLACE_EVENTS)
    answers = traffic.wait_for_answers(done, (h.name for h in fleet.hosts))
    assert set(answers) == {f"{h.name} v5" for h in fleet.hosts}, answers
    traffic.stop()
    errors = traffic.haproxy_errors()
    print(f"without traffic control: {traffic.summary()}")
    assert traffic.failures() or errors != NO_HAPROXY_ERRORS, traffic.summary()


def test_opendeploy_watch_says_what_the_traffic_steps_should_take_before_they_start(
    fleet: Fleet, traffic: Traffic
) -> None:
    deployment_id = fleet.create_deployment("v4", config=ONE_AT_A_TIME)
    watched = subprocess.run(
        [sys.executable, "-m", "opendeploy", "watch", deployment_id],
        env=fleet.server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert watched.returncode == 0, watched.stdout + watched.stderr
    lines = watched.stdout.splitlines()
    plan = next(i for i, line in enumerate(lines) if "Traffic control through haproxy:web" in line)
    first_block = next(
        i for i, line in enumerate(lines) if "BlockTraffic" in line and "Traffic control" not in line
    )
    assert plan < first_block, watched.stdout
    assert "BlockTraffic takes at most 5 s per instance" in lines[plan]
    assert "AllowTraffic about 0.3 s" in lines[plan]  # rise 2 × 0.1 s check interval + one interval

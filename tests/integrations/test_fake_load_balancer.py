"""The in-memory FakeLoadBalancer behaves like the load-balancer contract the HAProxy tests check against a
real HAProxy (test_haproxy_load_balancer.py), so engine tests that use it mean something."""

from __future__ import annotations

import pytest

from opendeploy.integrations.traffic import (
    FakeLoadBalancer,
    HealthTiming,
    LoadBalancer,
    TargetObservation,
    TargetState,
    TrafficMisconfigured,
)

HOSTS = ("host-1", "host-2", "host-3")
IN_SERVICE = TargetObservation(TargetState.IN_SERVICE, 0)


@pytest.fixture
def lb() -> FakeLoadBalancer:
    balancer = FakeLoadBalancer("web", drain_limit=30.0, healthy_expected=0.3)
    for host in HOSTS:
        balancer.add_target(host)
    return balancer


def state_of(lb: LoadBalancer, target: str) -> TargetObservation:
    return lb.observe([target])[target]


def test_it_is_a_load_balancer(lb: FakeLoadBalancer) -> None:
    balancer: LoadBalancer = lb  # type-checks against the Protocol
    assert balancer.name == "web"
    assert balancer.timing() == HealthTiming(drain_limit=30.0, healthy_expected=0.3)


def test_observe_reports_known_targets_and_unknown_for_others(lb: FakeLoadBalancer) -> None:
    assert lb.observe([*HOSTS, "host-9"]) == {
        **dict.fromkeys(HOSTS, IN_SERVICE),
        "host-9": TargetObservation(TargetState.UNKNOWN),
    }


def test_block_drains_and_counts_in_flight_connections_until_they_end() -> None:
    lb = FakeLoadBalancer("web")
    lb.add_target("host-1", connections=1)
    assert state_of(lb, "host-1") == TargetObservation(TargetState.IN_SERVICE, 1)

    lb.block("host-1")
    lb.block("host-1")  # idempotent

    assert state_of(lb, "host-1") == TargetObservation(TargetState.DRAINING, 1)
    lb.end_connections("host-1")
    assert state_of(lb, "host-1") == TargetObservation(TargetState.DRAINING, 0)


def test_finish_block_takes_the_target_out_of_service(lb: FakeLoadBalancer) -> None:
    lb.block("host-1")
    lb.finish_block("host-1")
    lb.finish_block("host-1")  # idempotent
    lb.block("host-1")  # a BlockTraffic repeated after a crash does not reopen it, as with HAProxy

    assert state_of(lb, "host-1") == TargetObservation(TargetState.OUT_OF_SERVICE, 0)
    assert lb.observe(["host-2", "host-3"]) == dict.fromkeys(["host-2", "host-3"], IN_SERVICE)


@pytest.mark.parametrize("finished", [True, False], ids=["after-maintenance", "after-drain"])
def test_allow_puts_the_target_back_in_service(lb: FakeLoadBalancer, finished: bool) -> None:
    lb.block("host-1")
    if finished:
        lb.finish_block("host-1")

    lb.allow("host-1")

    assert state_of(lb, "host-1") == IN_SERVICE
    lb.allow("host-1")  # allowing a target in service again leaves it in service
    assert state_of(lb, "host-1") == IN_SERVICE


def test_allow_stays_unhealthy_when_the_target_never_passes_its_checks(lb: FakeLoadBalancer) -> None:
    lb.never_healthy("host-1")
    lb.block("host-1")
    lb.finish_block("host-1")

    lb.allow("host-1")

    assert state_of(lb, "host-1").state is TargetState.UNHEALTHY
    assert lb.observe(["host-2", "host-3"]) == dict.fromkeys(["host-2", "host-3"], IN_SERVICE)


def test_every_call_is_recorded_in_order(lb: FakeLoadBalancer) -> None:
    lb.block("host-1")
    lb.finish_block("host-1")
    lb.allow("host-1")
    lb.observe(HOSTS)

    assert lb.calls == [("block", "host-1"), ("finish_block", "host-1"), ("allow", "host-1")]


# --- weighted shifting (canary/linear for server blue/green) -------------------------------------------


def test_shift_records_the_share_and_each_call(lb: FakeLoadBalancer) -> None:
    original, replacement = ["host-1", "host-2"], ["host-3"]
    assert lb.observe_shift(original, replacement) is None  # nothing shifted yet

    for percent in (0, 10, 10, 50, 100):  # repeated: idempotent
        lb.shift(original, replacement, percent)
        assert lb.observe_shift(original, replacement) == percent

    assert [share for _, _, share in lb.shifts] == [0, 10, 10, 50, 100]
    assert lb.shifts[0][:2] == (("host-1", "host-2"), ("host-3",))
    assert lb.calls == []  # a shift changes no target's state
    assert lb.observe(HOSTS) == dict.fromkeys(HOSTS, IN_SERVICE)


def test_a_forgotten_shift_is_unknown_until_applied_again(lb: FakeLoadBalancer) -> None:
    lb.shift(["host-1"], ["host-2"], 25)
    lb.forget_shift()  # as an HAProxy reload would
    assert lb.observe_shift(["host-1"], ["host-2"]) is None
    lb.shift(["host-1"], ["host-2"], 25)
    assert lb.observe_shift(["host-1"], ["host-2"]) == 25


def test_shifts_that_cannot_work_are_refused(lb: FakeLoadBalancer) -> None:
    with pytest.raises(TrafficMisconfigured):
        lb.shift(["host-1"], [], 10)  # no replacement to take 10 %
    with pytest.raises(TrafficMisconfigured):
        lb.shift([], ["host-1"], 90)  # no original to keep 10 %
    with pytest.raises(TrafficMisconfigured):
        lb.shift(["host-1"], ["host-1"], 50)
    lb.shift([], ["host-1"], 100)  # an empty side that takes nothing is fine
    lb.shift(["host-1"], [], 0)

    lb.cannot_shift()
    with pytest.raises(TrafficMisconfigured, match="weight"):
        lb.observe_shift(["host-1"], ["host-2"])
    with pytest.raises(TrafficMisconfigured, match="weight"):
        lb.shift(["host-1"], ["host-2"], 10)

"""BlockTraffic and AllowTraffic decisions (``domain/traffic_control``), table-style: drained instances
leave at once, busy ones when their connections end or the drain limit passes, an instance must be
healthy in every load balancer, and the health wait fails it; the expected times a plan shows."""

from __future__ import annotations

import pytest

from opendeploy.domain.traffic_control import (
    HealthTiming,
    TargetObservation,
    TargetState,
    TrafficAction,
    TrafficDecision,
    allow_progress,
    block_progress,
    expected_allow,
    expected_block,
    reverted,
)

IN = TargetObservation(TargetState.IN_SERVICE)
UNHEALTHY = TargetObservation(TargetState.UNHEALTHY)
OUT = TargetObservation(TargetState.OUT_OF_SERVICE)
UNKNOWN = TargetObservation(TargetState.UNKNOWN)
IDLE_DRAIN = TargetObservation(TargetState.DRAINING, 0)
BUSY_DRAIN = TargetObservation(TargetState.DRAINING, 3)

WAIT = TrafficDecision(TrafficAction.WAIT)
DONE = TrafficDecision(TrafficAction.SUCCEEDED)


@pytest.mark.parametrize(
    ("observations", "elapsed", "expected"),
    [
        # Out everywhere (HAProxy maintenance, ELB deregistered or never registered): done.
        ({"haproxy:web": OUT}, 0.1, DONE),
        ({"tg-a": OUT, "classic": UNKNOWN}, 0.1, DONE),
        # Drained with no connection left: taken fully out at once, not after the delay (AWS: 300 s).
        ({"haproxy:web": IDLE_DRAIN}, 0.1, TrafficDecision(TrafficAction.FINISH_BLOCK, ("haproxy:web",))),
        # Still serving in-flight connections: wait, until the drain limit passes.
        ({"haproxy:web": BUSY_DRAIN}, 10.0, WAIT),
        ({"haproxy:web": BUSY_DRAIN}, 300.0, TrafficDecision(TrafficAction.FINISH_BLOCK, ("haproxy:web",))),
        # One load balancer done, another busy: only wait for the busy one.
        ({"a": OUT, "b": BUSY_DRAIN}, 1.0, WAIT),
        ({"a": IDLE_DRAIN, "b": BUSY_DRAIN}, 1.0, TrafficDecision(TrafficAction.FINISH_BLOCK, ("a",))),
        # The block not seen yet (still in service): wait, then force it out at the limit.
        ({"a": IN}, 1.0, WAIT),
        ({"a": IN, "b": UNHEALTHY}, 301.0, TrafficDecision(TrafficAction.FINISH_BLOCK, ("a", "b"))),
    ],
)
def test_block_traffic(
    observations: dict[str, TargetObservation], elapsed: float, expected: TrafficDecision
) -> None:
    assert (
        block_progress(observations, started_at=1000.0, now=1000.0 + elapsed, drain_limit=300.0) == expected
    )


@pytest.mark.parametrize(
    ("observations", "elapsed", "expected_action"),
    [
        ({"haproxy:web": IN}, 0.3, TrafficAction.SUCCEEDED),
        ({"a": IN, "b": IN}, 0.3, TrafficAction.SUCCEEDED),
        # Healthy in one load balancer is not enough: every one the group names (guide L15435–15438).
        ({"a": IN, "b": UNHEALTHY}, 10.0, TrafficAction.WAIT),
        ({"a": UNHEALTHY}, 3599.0, TrafficAction.WAIT),
        ({"a": IDLE_DRAIN}, 5.0, TrafficAction.WAIT),
        ({"a": UNKNOWN}, 5.0, TrafficAction.WAIT),
        # The hour passes: the instance fails, as the deployment configuration then decides (L3339).
        ({"a": IN, "b": UNHEALTHY}, 3600.0, TrafficAction.FAILED),
    ],
)
def test_allow_traffic(
    observations: dict[str, TargetObservation], elapsed: float, expected_action: TrafficAction
) -> None:
    decision = allow_progress(
        observations, started_at=0.0, now=elapsed, health_wait=3600.0, instance="host-2"
    )
    assert decision.action is expected_action


def test_an_instance_that_never_becomes_healthy_fails_with_a_message_naming_it_and_the_load_balancers() -> (
    None
):
    decision = allow_progress({"a": IN, "haproxy:web": UNHEALTHY}, 0.0, 60.0, 60.0, instance="host-2")
    assert decision == TrafficDecision(
        TrafficAction.FAILED,
        ("haproxy:web",),
        "host-2 did not become healthy behind its load balancers within 60 seconds (haproxy:web: unhealthy)",
    )


def test_expected_times_are_the_slowest_load_balancers() -> None:
    timings = [HealthTiming(drain_limit=300.0, healthy_expected=180.0), HealthTiming(5.0, 0.3)]
    assert expected_block(timings) == 300.0
    assert expected_block(timings, busy=False) == 0.0
    assert expected_allow(timings) == 180.0
    assert expected_allow([]) == 0.0


@pytest.mark.parametrize(
    ("observations", "blocking", "asked_again"),
    [
        # An HAProxy reload puts a drained or maintained server back in rotation: block it again.
        ({"haproxy:web": IN, "tg": OUT}, True, ("haproxy:web",)),
        ({"a": UNHEALTHY, "b": BUSY_DRAIN}, True, ("a",)),
        ({"a": OUT, "b": UNKNOWN}, True, ()),
        # Allowing: a load balancer that shows it out or draining again forgot the allow.
        ({"a": OUT, "b": UNHEALTHY}, False, ("a",)),
        ({"a": IDLE_DRAIN, "b": IN}, False, ("a",)),
        ({"a": UNHEALTHY, "b": UNKNOWN}, False, ()),
    ],
)
def test_what_a_load_balancer_undid_is_asked_again(
    observations: dict[str, TargetObservation], blocking: bool, asked_again: tuple[str, ...]
) -> None:
    assert reverted(observations, blocking) == asked_again

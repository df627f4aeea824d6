"""The traffic-shift schedule on the guide's predefined and example configurations, the step in force at
a moment, and the whole weights that split traffic between two fleets.

Guide references are lines of /work/shared/guide/codedeploy-user-guide.txt.
"""

from __future__ import annotations

import pytest

from opendeploy.domain.deployment_config import (
    PREDEFINED_CONFIGS,
    TimeBasedCanary,
    TimeBasedLinear,
    TrafficRouting,
    TrafficRoutingType,
    config_from_wire,
)
from opendeploy.domain.traffic_routing import (
    ShiftState,
    integer_weights,
    promote,
    shift_at,
    shift_duration,
    shift_schedule,
    weighted_share,
)

MINUTE = 60
START = 1_800_000_000.0  # any epoch second


def predefined(name: str) -> TrafficRouting:
    routing = PREDEFINED_CONFIGS["CodeDeployDefault." + name].traffic_routing
    assert routing is not None
    return routing


def canary(percentage: int, minutes: int) -> TrafficRouting:
    return TrafficRouting(TrafficRoutingType.TIME_BASED_CANARY, canary=TimeBasedCanary(percentage, minutes))


def linear(percentage: int, minutes: int) -> TrafficRouting:
    return TrafficRouting(TrafficRoutingType.TIME_BASED_LINEAR, linear=TimeBasedLinear(percentage, minutes))


def every(minutes: int, percents: list[int]) -> list[tuple[int, int]]:
    return [(k * minutes * MINUTE, percent) for k, percent in enumerate(percents)]


TENS = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]


# --- the schedule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "steps"),
    [
        # Guide L14873–14900: 10 percent in the first increment, the remaining 90 percent N minutes later.
        ("LambdaCanary10Percent5Minutes", [(0, 10), (5 * MINUTE, 100)]),
        ("LambdaCanary10Percent10Minutes", [(0, 10), (10 * MINUTE, 100)]),
        ("LambdaCanary10Percent15Minutes", [(0, 10), (15 * MINUTE, 100)]),
        ("LambdaCanary10Percent30Minutes", [(0, 10), (30 * MINUTE, 100)]),
        # Guide L14901–14925: 10 percent every N minutes until all traffic is shifted.
        ("LambdaLinear10PercentEvery1Minute", every(1, TENS)),
        ("LambdaLinear10PercentEvery2Minutes", every(2, TENS)),
        ("LambdaLinear10PercentEvery3Minutes", every(3, TENS)),
        ("LambdaLinear10PercentEvery10Minutes", every(10, TENS)),
        # Guide L14926–14927: all traffic at once.
        ("LambdaAllAtOnce", [(0, 100)]),
        # Guide L14809–14836: the ECS tables, the same shapes.
        ("ECSLinear10PercentEvery1Minutes", every(1, TENS)),
        ("ECSLinear10PercentEvery3Minutes", every(3, TENS)),
        ("ECSCanary10Percent5Minutes", [(0, 10), (5 * MINUTE, 100)]),
        ("ECSCanary10Percent15Minutes", [(0, 10), (15 * MINUTE, 100)]),
        ("ECSAllAtOnce", [(0, 100)]),
    ],
)
def test_predefined_schedules(name: str, steps: list[tuple[int, int]]) -> None:
    """Guide L766–778: a canary shifts in two increments, a linear one in equal increments with equal
    minutes between them, all at once in one. Linear shifts "at the start of each interval" (L15053–15054,
    L15762–15763), so the first increment is at once and 100 % comes at the start of the last interval."""
    assert shift_schedule(predefined(name)) == tuple(steps)


def test_canary_25_percent_45_minutes() -> None:
    """Guide L15083–15099: "shift 25 percent of traffic in the first increment. The remaining 75 percent
    shifted 45 minutes later" — the CLI example, as CreateDeploymentConfig validates it for Server too."""
    config = config_from_wire(
        "Canary25Percent45Minutes",
        compute_platform="Server",
        minimum_healthy_hosts={"type": "FLEET_PERCENT", "value": 75},
        traffic_routing_config={
            "type": "TimeBasedCanary",
            "timeBasedCanary": {"canaryPercentage": 25, "canaryInterval": 45},
        },
    )
    assert config.traffic_routing is not None
    assert shift_schedule(config.traffic_routing) == ((0, 25), (45 * MINUTE, 100))


@pytest.mark.parametrize(
    ("routing", "steps"),
    [
        (linear(30, 5), every(5, [30, 60, 90, 100])),
        (linear(25, 2), every(2, [25, 50, 75, 100])),
        (linear(33, 1), every(1, [33, 66, 99, 100])),
        (linear(40, 1), every(1, [40, 80, 100])),
        (linear(50, 7), every(7, [50, 100])),
        (linear(99, 1), every(1, [99, 100])),
        (linear(1, 1), every(1, list(range(1, 101)))),
        (canary(99, 1), [(0, 99), (MINUTE, 100)]),
        (canary(1, 2880), [(0, 1), (2880 * MINUTE, 100)]),
    ],
    ids=[
        "30% -> 30 60 90 100",
        "25%",
        "33%",
        "40%",
        "50%",
        "99%",
        "1% in 100 steps",
        "canary 99%",
        "canary 1%",
    ],
)
def test_custom_schedules_end_at_100_percent(routing: TrafficRouting, steps: list[tuple[int, int]]) -> None:
    """Guide L15053–15054: a linear percentage that does not divide 100 shifts what is left last: the
    increments are equal until the final one, which never overshoots 100 %."""
    assert shift_schedule(routing) == tuple(steps)


@pytest.mark.parametrize(
    ("name", "minutes"),
    [
        ("LambdaCanary10Percent15Minutes", 15),
        ("LambdaLinear10PercentEvery1Minute", 9),
        ("LambdaLinear10PercentEvery10Minutes", 90),
        ("ECSAllAtOnce", 0),
    ],
)
def test_duration_is_from_the_first_step_to_100_percent(name: str, minutes: int) -> None:
    """Decision: 100 % at the start of the last interval. The guide's tutorial (10 % every minute) calls
    the deployment complete "after 10 minutes" / "approximately 10 minutes" (L9469–9470, L9492–9494),
    which includes its hooks; a canary's rest shifts one interval after its first increment (L15047–15049),
    and linear is read the same way."""
    assert shift_duration(predefined(name)) == minutes * MINUTE


# --- the step in force ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, ShiftState(0, 10, START + 5 * MINUTE)),  # another replica's clock a little behind
        (0, ShiftState(0, 10, START + 5 * MINUTE)),
        (5 * MINUTE - 0.001, ShiftState(0, 10, START + 5 * MINUTE)),
        (5 * MINUTE, ShiftState(1, 100, None)),
        (3 * 24 * 3600, ShiftState(1, 100, None)),
    ],
)
def test_canary_10_percent_5_minutes_over_time(seconds: float, expected: ShiftState) -> None:
    """Guide L14821–14827: 10 % first, the remaining 90 % five minutes later; then nothing is due."""
    state = shift_at(predefined("ECSCanary10Percent5Minutes"), START, START + seconds)
    assert state == expected
    assert state.done is (expected.next_step_at is None)


@pytest.mark.parametrize(
    ("minutes", "step", "percent", "next_minutes"),
    [
        (0, 0, 10, 3),
        (2.99, 0, 10, 3),
        (3, 1, 20, 6),
        (13, 4, 50, 15),
        (24, 8, 90, 27),
        (26.9, 8, 90, 27),
        (27, 9, 100, None),
        (600, 9, 100, None),
    ],
)
def test_linear_10_percent_every_3_minutes_over_time(
    minutes: float, step: int, percent: int, next_minutes: int | None
) -> None:
    """Guide L14815–14820 (ECS) and L14914–14919 (Lambda): 10 % every three minutes until all is
    shifted. The next step's time is absolute, for a persisted timer."""
    state = shift_at(predefined("ECSLinear10PercentEvery3Minutes"), START, START + minutes * MINUTE)
    next_at = None if next_minutes is None else START + next_minutes * MINUTE
    assert state == ShiftState(step, percent, next_at)


def test_a_restart_late_skips_to_the_step_in_force() -> None:
    """A server down through several steps finds the current one (the engine applies only it) and the
    next one's time, not the missed ones."""
    routing = predefined("LambdaLinear10PercentEvery1Minute")
    assert shift_at(routing, START, START + 4.5 * MINUTE) == ShiftState(4, 50, START + 5 * MINUTE)


def test_all_at_once_is_done_at_the_start() -> None:
    """Guide L14835–14836, L14926–14927: everything shifts at once; no timer is needed."""
    assert shift_at(predefined("LambdaAllAtOnce"), START, START) == ShiftState(0, 100, None)


@pytest.mark.parametrize("name", ["ECSCanary10Percent15Minutes", "LambdaLinear10PercentEvery10Minutes"])
def test_promote_skips_the_remaining_steps(name: str) -> None:
    routing = predefined(name)
    last = len(shift_schedule(routing)) - 1
    assert promote(routing) == ShiftState(last, 100, None)
    assert promote(routing).done


# --- whole weights for a share --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("originals", "replacements", "percent", "weights"),
    [
        (1, 1, 0, (1, 0)),
        (1, 1, 100, (0, 1)),
        (1, 1, 10, (9, 1)),
        (1, 1, 25, (3, 1)),
        (1, 1, 50, (1, 1)),
        (3, 3, 10, (9, 1)),
        (3, 1, 25, (1, 1)),  # one replacement beside three originals already gets a quarter
        (2, 1, 10, (9, 2)),  # 2/(2+18)
        (1, 3, 10, (27, 1)),  # 3/(3+27)
        (2, 3, 50, (3, 2)),  # 6/(6+6)
    ],
)
def test_weights_meet_the_share_exactly_when_they_can(
    originals: int, replacements: int, percent: float, weights: tuple[int, int]
) -> None:
    assert integer_weights(originals, replacements, percent) == weights
    assert weighted_share(originals, replacements, *weights) == pytest.approx(percent)


@pytest.mark.parametrize(
    ("originals", "replacements", "percent", "within"),
    [
        (1, 1, 33.3, 0.05),  # 1/3
        (3, 3, 1, 0.0),  # 1/(1+99)
        (7, 5, 12.5, 0.01),
        (1, 1, 99.9, 0.3),  # 256/257 is the most short of 100 %
        (5, 2, 0.5, 0.05),
    ],
)
def test_weights_come_as_close_as_256_allows(
    originals: int, replacements: int, percent: float, within: float
) -> None:
    original, replacement = integer_weights(originals, replacements, percent)
    assert 1 <= original <= 256 and 1 <= replacement <= 256
    share = weighted_share(originals, replacements, original, replacement)
    assert share is not None and abs(share - percent) <= within


def test_an_unreachable_share_gets_the_closest_one() -> None:
    """With equal weights per side, one replacement among 300 originals gets at most 256/(256+300)."""
    assert integer_weights(300, 1, 99) == (1, 256)
    assert weighted_share(300, 1, 1, 256) == pytest.approx(100 * 256 / 556)


@pytest.mark.parametrize(
    ("originals", "replacements", "percent"),
    [(1, 0, 10), (0, 1, 90), (1, 1, -1), (1, 1, 100.5)],
)
def test_impossible_splits_are_refused(originals: int, replacements: int, percent: float) -> None:
    with pytest.raises(ValueError):
        integer_weights(originals, replacements, percent)


def test_empty_sides_are_fine_when_they_take_nothing() -> None:
    assert integer_weights(2, 0, 0) == (1, 0)
    assert integer_weights(0, 2, 100) == (0, 1)
    assert weighted_share(2, 2, 0, 0) is None

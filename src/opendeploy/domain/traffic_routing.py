"""Traffic shifting as a schedule: which share of new requests the replacement gets, and from when.

A deployment configuration's ``trafficRoutingConfig`` (guide L766–778) says how traffic moves from the
original to the replacement: a **canary** shifts in two increments (its percentage at the start, the rest
one interval later), a **linear** one shifts its percentage at the start of each interval until all
traffic is shifted, **all at once** shifts everything at the start. AWS offers these for Lambda and ECS;
opendeploy also applies them to server blue/green deployments (issue 11), through HAProxy weights or an
ELBv2 listener's weighted target groups.

``shift_schedule`` turns a configuration into steps ``(offset_seconds, replacement_percent)`` from the
start of the shift, ending at 100 %. The engine persists when the shift started and asks ``shift_at``
what should be in force now and when the next step is due (a persisted timer), so a restart finds the
same answer. ``promote`` skips the remaining steps.

Decision: the last step (100 %) is at the start of the last interval, not one interval after it — a
linear 10 % every minute reaches 100 % after 9 minutes. The guide's canary shows it (the rest shifts one
interval after the first increment, and a canary interval may be as long as a whole Lambda deployment,
L15767–15777); its tutorial's "after 10 minutes, the deployment is complete" for 10 % every minute
(L9492–9494) is approximate ("approximately 10 minutes", L9469–9470) and includes the hooks after it.

``integer_weights`` is the arithmetic of a load balancer whose weights are small whole numbers (HAProxy's
0–256): equal weights within each side whose share is as close as possible to the wanted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from opendeploy.domain.deployment_config import TrafficRouting, TrafficRoutingType

SECONDS_PER_MINUTE = 60
HAPROXY_MAX_WEIGHT = 256


class ShiftStep(NamedTuple):
    """From ``offset_seconds`` after the shift started, the replacement gets ``replacement_percent``."""

    offset_seconds: int
    replacement_percent: int


@dataclass(frozen=True)
class ShiftState:
    """What is in force at a moment: the step (an index into the schedule), its share, and when the next
    step is due (absolute, in the clock of ``started_at``), or None once everything is shifted."""

    step: int
    replacement_percent: int
    next_step_at: float | None

    @property
    def done(self) -> bool:
        return self.next_step_at is None


def shift_schedule(routing: TrafficRouting) -> tuple[ShiftStep, ...]:
    """The steps of ``routing``, the first at offset 0, the last at 100 %."""
    if routing.type is TrafficRoutingType.ALL_AT_ONCE:
        return (ShiftStep(0, 100),)
    if routing.type is TrafficRoutingType.TIME_BASED_CANARY:
        if routing.canary is None:
            raise ValueError("a TimeBasedCanary routing needs its canary percentage and interval")
        interval = routing.canary.interval_minutes * SECONDS_PER_MINUTE
        return (ShiftStep(0, routing.canary.percentage), ShiftStep(interval, 100))
    if routing.linear is None:
        raise ValueError("a TimeBasedLinear routing needs its linear percentage and interval")
    percentage, interval = routing.linear.percentage, routing.linear.interval_minutes * SECONDS_PER_MINUTE
    increments = math.ceil(100 / percentage)  # the last one shifts what is left (30 % -> 30, 60, 90, 100)
    return tuple(ShiftStep(k * interval, min((k + 1) * percentage, 100)) for k in range(increments))


def shift_duration(routing: TrafficRouting) -> int:
    """Seconds from the first step to 100 %."""
    return shift_schedule(routing)[-1].offset_seconds


def shift_at(routing: TrafficRouting, started_at: float, now: float) -> ShiftState:
    """The step in force at ``now`` for a shift that started at ``started_at`` (the first step applies
    from the start, also for a ``now`` a little before it on another replica's clock)."""
    steps = shift_schedule(routing)
    elapsed = now - started_at
    current = 0
    for index, step in enumerate(steps):
        if step.offset_seconds <= elapsed:
            current = index
    following = current + 1
    next_at = started_at + steps[following].offset_seconds if following < len(steps) else None
    return ShiftState(current, steps[current].replacement_percent, next_at)


def promote(routing: TrafficRouting) -> ShiftState:
    """Skip the remaining steps: the last one (100 %) is in force now and nothing follows."""
    steps = shift_schedule(routing)
    return ShiftState(len(steps) - 1, 100, None)


def integer_weights(
    original_count: int,
    replacement_count: int,
    replacement_percent: float,
    *,
    max_weight: int = HAPROXY_MAX_WEIGHT,
) -> tuple[int, int]:
    """Whole weights ``(original, replacement)``, each at most ``max_weight``, one per server of its side,
    whose share ``replacement_count × r / (original_count × o + replacement_count × r)`` is as close to
    ``replacement_percent`` as such weights allow; among equally close ones, the smallest.

    0 % and 100 % give the emptied side weight 0 and the other 1. The share cannot always be met: with
    equal weights per side the replacement gets at most ``R × max / (R × max + O)`` (one replacement
    server among 300 originals gets at most 46 %); ``weighted_share`` tells what the weights give.
    Raises ValueError when a side that must take traffic has no servers."""
    if not 0 <= replacement_percent <= 100:
        raise ValueError(f"a share of traffic is between 0 and 100 percent, got {replacement_percent}")
    if original_count < 0 or replacement_count < 0 or max_weight < 1:
        raise ValueError("server counts cannot be negative and the largest weight must be at least 1")
    wanted = Fraction(replacement_percent).limit_denominator(1_000_000) / 100
    if wanted > 0 and replacement_count == 0:
        raise ValueError(f"cannot send {replacement_percent}% of traffic to no replacement servers")
    if wanted < 1 and original_count == 0:
        raise ValueError(f"cannot keep {100 - replacement_percent}% of traffic on no original servers")
    if wanted == 0:
        return 1, 0
    if wanted == 1:
        return 0, 1
    best: tuple[Fraction, int, int, int] | None = None  # (error, total weight, original, replacement)
    for replacement in range(1, max_weight + 1):
        # The original weight giving exactly the wanted share, then the whole weights either side of it.
        ideal = replacement_count * replacement * (1 - wanted) / (wanted * original_count)
        for rounded in {math.floor(ideal), math.ceil(ideal)}:
            original = min(max(rounded, 1), max_weight)
            replacement_total = replacement_count * replacement
            share = Fraction(replacement_total, replacement_total + original_count * original)
            candidate = (abs(share - wanted), original + replacement, original, replacement)
            if best is None or candidate < best:
                best = candidate
    assert best is not None
    return best[2], best[3]


def weighted_share(
    original_count: int, replacement_count: int, original_weight: int, replacement_weight: int
) -> float | None:
    """The replacement's share, in percent, of traffic split by these weights; None when all are 0."""
    replacement = replacement_count * replacement_weight
    total = original_count * original_weight + replacement
    return None if total == 0 else 100 * replacement / total

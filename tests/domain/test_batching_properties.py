"""Brute force over small fleets: every minimum, every set of failing instances, both completion orders.

The properties are the guide's promises (L14426–14547): the healthy count never drops below the minimum,
a deployment ends, success means at least the minimum and one instance succeeded, and the only failures
are a used-up failure budget with instances left, or no success at all.
"""

from __future__ import annotations

import itertools
import random

import pytest
from fleet_simulation import names, simulate

from opendeploy.domain.deployment_config import MostConcurrency
from opendeploy.domain.instance_health import HealthStatus, InstanceHealth, RevisionHealth
from opendeploy.domain.minimum_healthy_hosts import (
    MinimumHealthyHosts,
    MinimumHealthyHostsType,
    minimum_healthy_host_count,
)
from opendeploy.domain.statuses import DeploymentStatus, ErrorCode, TargetStatus


def rules(total: int) -> list[object]:
    count = [MinimumHealthyHosts(MinimumHealthyHostsType.HOST_COUNT, m) for m in range(total + 2)]
    share = [
        MinimumHealthyHosts(MinimumHealthyHostsType.FLEET_PERCENT, p) for p in (0, 1, 34, 50, 75, 99, 100)
    ]
    return [*count, *share, MostConcurrency(1), MostConcurrency(2)]


def random_health(fleet: list[str], seed: str) -> dict[str, HealthStatus]:
    chooser = random.Random(seed)  # a str seed is stable across runs (hash() of a str is not)
    return {
        name: HealthStatus(chooser.choice(list(InstanceHealth)), chooser.choice(list(RevisionHealth)))
        for name in fleet
    }


@pytest.mark.parametrize("total", [1, 2, 3, 4, 5, 6])
def test_every_failure_pattern(total: int) -> None:
    fleet = names(total)
    for rule, together in itertools.product(rules(total), (False, True)):
        minimum = minimum_healthy_host_count(rule, total)
        budget = total - minimum
        for size in range(total + 1):
            for failing in itertools.combinations(fleet, size):
                health = random_health(fleet, f"{total}:{failing}")
                run = simulate(fleet, rule, set(failing), together=together, health=health)
                case = f"{rule} total={total} failing={failing} together={together}"
                succeeded = run.with_status(TargetStatus.SUCCEEDED)
                skipped = run.with_status(TargetStatus.SKIPPED)
                failed = run.with_status(TargetStatus.FAILED)

                if minimum >= total:
                    assert run.decision.error_code is ErrorCode.HEALTH_CONSTRAINTS_INVALID, case
                    assert run.started == [], case
                    continue
                # Never more than total − minimum instances offline (in progress, failed or skipped).
                assert run.max_offline <= budget, case
                # With nothing failing the deployment runs total − minimum at a time from the start.
                if not failing:
                    assert len(run.batches[0]) == budget, case
                # Skipped instances were never started; nothing else is left pending.
                assert not set(skipped) & set(run.started), case
                assert set(succeeded) | set(failed) == set(run.started), case
                assert len(run.started) + len(skipped) == total, case

                if run.status is DeploymentStatus.SUCCEEDED:
                    assert not skipped, case
                    assert len(succeeded) >= max(minimum, 1), case
                else:
                    assert run.decision.error_code is ErrorCode.HEALTH_CONSTRAINTS, case
                    # Either the failures used up the whole budget with instances left to deploy to,
                    # or every instance was deployed to and too few succeeded.
                    if skipped:
                        assert len(failed) == budget, case
                    else:
                        assert len(succeeded) < max(minimum, 1), case
                # Fewer failures than the budget can never fail a deployment that had a success.
                if len(failing) < budget:
                    assert run.status is DeploymentStatus.SUCCEEDED, case
                if len(failing) > budget:
                    assert run.status is DeploymentStatus.FAILED, case


@pytest.mark.parametrize("total", [1, 2, 3, 5, 8])
def test_one_at_a_time_fails_only_before_the_last_instance(total: int) -> None:
    """OneAtATime (guide L14736–14768): the deployment succeeds exactly when no instance but the last
    one deployed to failed."""
    fleet = names(total)
    for size in range(total + 1):
        for failing in itertools.combinations(fleet, size):
            run = simulate(fleet, MostConcurrency(1), set(failing))
            last = fleet[-1]
            expected = set(failing) <= {last} and (total > 1 or not failing)
            assert (run.status is DeploymentStatus.SUCCEEDED) == expected, failing
            assert all(len(batch) == 1 for batch in run.batches)

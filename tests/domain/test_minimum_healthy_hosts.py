"""Minimum healthy hosts arithmetic on the guide's numbers (guide L14426–14547, L14649–14797)."""

from __future__ import annotations

import pytest

from opendeploy.domain.deployment_config import PREDEFINED_CONFIGS, MostConcurrency
from opendeploy.domain.minimum_healthy_hosts import (
    MinimumHealthyHosts,
    MinimumHealthyHostsType,
    describe,
    enough_succeeded,
    health_constraints_valid,
    hosts_to_deploy_at_once,
    minimum_healthy_host_count,
)

HOST_COUNT, FLEET_PERCENT = MinimumHealthyHostsType.HOST_COUNT, MinimumHealthyHostsType.FLEET_PERCENT


@pytest.mark.parametrize(
    ("rule", "total", "minimum", "at_once"),
    [
        (MinimumHealthyHosts(HOST_COUNT, 9), 10, 9, 1),  # L14500–14501
        (MinimumHealthyHosts(HOST_COUNT, 3), 10, 3, 7),  # L14503–14505
        (MinimumHealthyHosts(HOST_COUNT, 0), 10, 0, 10),  # L14507–14508
        (MinimumHealthyHosts(FLEET_PERCENT, 95), 10, 10, 0),  # L14517–14519: rounds up to 10
        (MinimumHealthyHosts(FLEET_PERCENT, 85), 10, 9, 1),  # L14303–14309
        (MinimumHealthyHosts(FLEET_PERCENT, 50), 9, 5, 4),  # HalfAtATime, L14690–14711
        (MinimumHealthyHosts(FLEET_PERCENT, 0), 9, 0, 9),  # AllAtOnce, L14661–14672
        (MostConcurrency(1), 9, 8, 1),  # OneAtATime, L14736–14768
        (MostConcurrency(1), 1, 0, 1),  # OneAtATime on a single instance, L14765–14767
        (MinimumHealthyHosts(HOST_COUNT, 6), 9, 6, 3),  # botocore MinimumHealthyHosts doc
        (MinimumHealthyHosts(FLEET_PERCENT, 40), 9, 4, 5),  # botocore MinimumHealthyHosts doc
        (MinimumHealthyHosts(FLEET_PERCENT, 1), 1000, 10, 990),
        (MinimumHealthyHosts(FLEET_PERCENT, 7), 100, 7, 93),  # 0.07 * 100 is 7.000000000000001 in floats
    ],
)
def test_minimum_and_batch(rule: MinimumHealthyHosts, total: int, minimum: int, at_once: int) -> None:
    assert minimum_healthy_host_count(rule, total) == minimum
    assert hosts_to_deploy_at_once(total, minimum) == at_once


def test_predefined_configurations() -> None:
    """Guide L14401–14412: OneAtATime "1" (one at a time), HalfAtATime 50%, AllAtOnce 0."""
    one, half, all_ = (
        PREDEFINED_CONFIGS[f"CodeDeployDefault.{name}"].minimum_healthy_hosts
        for name in ("OneAtATime", "HalfAtATime", "AllAtOnce")
    )
    assert [hosts_to_deploy_at_once(10, minimum_healthy_host_count(r, 10)) for r in (one, half, all_)] == [
        1,
        5,
        10,
    ]


def test_the_minimum_must_be_below_the_total() -> None:
    """Guide L14482–14488: a minimum equal to (or above) the number of instances cannot start."""
    assert health_constraints_valid(10, 9)
    assert not health_constraints_valid(10, 10)
    assert not health_constraints_valid(2, 3)


def test_success_needs_the_minimum_and_at_least_one() -> None:
    """Guide L14312–14319 and L14540–14546: at least one instance must succeed even with minimum 0."""
    assert enough_succeeded(1, 0)
    assert not enough_succeeded(0, 0)
    assert enough_succeeded(5, 5) and not enough_succeeded(4, 5)


def test_invalid_values_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="cannot be negative, got -1"):
        minimum_healthy_host_count(MinimumHealthyHosts(HOST_COUNT, -1), 3)
    with pytest.raises(ValueError, match="at least one instance at a time"):
        minimum_healthy_host_count(MostConcurrency(0), 3)


def test_described_for_messages() -> None:
    assert describe(MinimumHealthyHosts(FLEET_PERCENT, 95)) == "95% of the instances"
    assert describe(MinimumHealthyHosts(HOST_COUNT, 1)) == "1 instance"
    assert describe(MostConcurrency(1)) == "all instances but 1"

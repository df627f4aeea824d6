"""Minimum healthy hosts: how many instances must stay healthy while a deployment runs.

The guide's arithmetic (L14426–14547):

- a percentage is converted to a number of instances once, at the start, rounding up (L14440–14442);
- the number of hosts to deploy to at once is ``total − minimum`` (L14490–14512);
- when the minimum is not below the total the deployment fails at once (L14482–14488, the error code
  ``HEALTH_CONSTRAINTS_INVALID``);
- a deployment succeeds when at least the minimum, and at least one, instance succeeded (L14312–14319).

``CodeDeployDefault.OneAtATime`` is a concurrency rather than a minimum: the API reports it as type
``MOST_CONCURRENCY``, value 1 ("deploy to one instance at a time ... all instances but one are kept
healthy", botocore's ``MinimumHealthyHosts`` documentation). Users cannot set that type, so it is not a
member of ``MinimumHealthyHostsType``; ``deployment_config.MostConcurrency`` carries it, and the functions
here accept either through ``HealthyHostsRule``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class MinimumHealthyHostsType(StrEnum):
    HOST_COUNT = "HOST_COUNT"
    FLEET_PERCENT = "FLEET_PERCENT"


MOST_CONCURRENCY = "MOST_CONCURRENCY"


@dataclass(frozen=True)
class MinimumHealthyHosts:
    """A deployment configuration's ``minimumHealthyHosts``: a host count or a percentage of the fleet."""

    type: MinimumHealthyHostsType
    value: int


class HealthyHostsRule(Protocol):
    """A ``MinimumHealthyHosts`` or OneAtATime's ``MostConcurrency``: a type and a value."""

    @property
    def type(self) -> str: ...

    @property
    def value(self) -> int: ...


def minimum_healthy_host_count(rule: HealthyHostsRule, total: int) -> int:
    """The minimum as a number of instances, for a deployment to ``total`` instances.

    A percentage rounds up: 95% of 10 is 10 (L14517), 50% of 9 is 5 (L14690–14711). MOST_CONCURRENCY
    ``v`` keeps all instances but ``v`` healthy.
    """
    if total < 0:
        raise ValueError(f"the number of instances cannot be negative, got {total}")
    if rule.value < 0:
        raise ValueError(f"minimum healthy hosts value cannot be negative, got {rule.value}")
    if rule.type == MinimumHealthyHostsType.HOST_COUNT:
        return rule.value
    if rule.type == MinimumHealthyHostsType.FLEET_PERCENT:
        return -(-rule.value * total // 100)  # integer ceiling: no float rounding at 1,000+ hosts
    if rule.type == MOST_CONCURRENCY:
        if rule.value < 1:
            raise ValueError("a MOST_CONCURRENCY rule must allow at least one instance at a time")
        return max(total - rule.value, 0)
    raise ValueError(f"unknown minimum healthy hosts type {rule.type!r}")


def describe(rule: HealthyHostsRule) -> str:
    """The rule in words, for error messages: "95% of the instances", "9 instances"."""
    if rule.type == MinimumHealthyHostsType.FLEET_PERCENT:
        return f"{rule.value}% of the instances"
    if rule.type == MOST_CONCURRENCY:
        return f"all instances but {rule.value}"
    return f"{rule.value} instance{'' if rule.value == 1 else 's'}"


def hosts_to_deploy_at_once(total: int, minimum: int) -> int:
    """``[total-hosts] - [minimum-healthy-hosts] = [number-of-hosts-to-deploy-to-at-once]`` (L14490)."""
    return max(total - minimum, 0)


def health_constraints_valid(total: int, minimum: int) -> bool:
    """Whether a deployment to ``total`` instances can start: the minimum must be below the total."""
    return minimum < total


def enough_succeeded(succeeded: int, minimum: int) -> bool:
    """The success test: at least the minimum succeeded, and at least one, even when the minimum is 0."""
    return succeeded >= max(minimum, 1)

"""Minimum healthy hosts: how many instances must stay healthy while a deployment runs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MinimumHealthyHostsType(StrEnum):
    HOST_COUNT = "HOST_COUNT"
    FLEET_PERCENT = "FLEET_PERCENT"


@dataclass(frozen=True)
class MinimumHealthyHosts:
    """A deployment configuration's ``minimumHealthyHosts``: a host count or a percentage of the fleet."""

    type: MinimumHealthyHostsType
    value: int

"""Zonal configuration: deploy one zone at a time, with a per-zone minimum and a monitor duration.

The guide (L14548–14624, L14996–15039) and the API's ``ZonalConfig``:

- CodeDeploy deploys to one Availability Zone at a time; opendeploy's instances are not in EC2, so an
  instance's zone is the value of a configurable instance tag (the engine reads it with ``zone_of``);
- the healthy count must stay at or above both the minimum healthy hosts and the minimum healthy hosts
  per zone; the batch is the lesser of ``total − minimum`` and ``zone total − zone minimum``;
- ``minimumHealthyHostsPerZone`` defaults to 0 percent;
- after a zone completes, wait ``monitorDurationInSeconds`` (none: start the next zone at once);
  ``firstZoneMonitorDurationInSeconds`` replaces it after the first zone only;
- a rollback is not zone by zone (L15007–15011): the engine passes no zonal configuration for one.

The configuration itself is ``deployment_config.ZonalConfig``; this module reads it through the
``ZonalRules`` protocol. Zones are deployed in the order of their names; instances without the zone tag
form one last zone of their own, so a missing tag neither stops the deployment nor mixes those
instances into a real zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from opendeploy.domain.minimum_healthy_hosts import (
    MinimumHealthyHosts,
    MinimumHealthyHostsType,
    minimum_healthy_host_count,
)

DEFAULT_MINIMUM_HEALTHY_HOSTS_PER_ZONE = MinimumHealthyHosts(MinimumHealthyHostsType.FLEET_PERCENT, 0)


class ZonalRules(Protocol):
    """What dispatch needs of a deployment configuration's ``zonalConfig``."""

    @property
    def first_zone_monitor_duration_in_seconds(self) -> int | None: ...

    @property
    def monitor_duration_in_seconds(self) -> int | None: ...

    @property
    def minimum_healthy_hosts_per_zone(self) -> MinimumHealthyHosts | None: ...


def monitor_duration_after(zonal: ZonalRules, zone_position: int) -> int:
    """Seconds to wait after the zone at ``zone_position`` (0 = the first zone) completes."""
    if zone_position == 0 and zonal.first_zone_monitor_duration_in_seconds is not None:
        return zonal.first_zone_monitor_duration_in_seconds
    return zonal.monitor_duration_in_seconds or 0


def minimum_in_zone(zonal: ZonalRules, zone_total: int) -> int:
    """The per-zone minimum as a number of instances for a zone of ``zone_total`` (percent rounds up)."""
    rule = zonal.minimum_healthy_hosts_per_zone or DEFAULT_MINIMUM_HEALTHY_HOSTS_PER_ZONE
    return minimum_healthy_host_count(rule, zone_total)


def zone_of(tags: Mapping[str, str], zone_tag_key: str) -> str | None:
    """An instance's zone: the value of its ``zone_tag_key`` tag, or None when it has none."""
    return tags.get(zone_tag_key) or None


def zone_order(zones: Iterable[str | None]) -> list[str | None]:
    """The order zones are deployed in: by name, instances without a zone last."""
    distinct = set(zones)
    named = sorted(z for z in distinct if z is not None)
    return [*named, None] if None in distinct else named

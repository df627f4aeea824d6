"""Instance health and revision health: the order instances are deployed to, and how health changes.

The guide (L14331–14386):

- revision health is ``Current`` (the instance runs the group's last successful revision), ``Old``
  (an older revision) or ``Unknown`` (no revision installed successfully);
- instance health is ``Healthy`` (the last deployment to it succeeded) or ``Unhealthy`` (the last
  attempt failed, or nothing has been deployed to it yet);
- instances are deployed to in the order Unhealthy, then Unknown, Old, Current revision;
- after a deployment succeeds: Current + success stays Current, otherwise Unknown; Old/Unknown + success
  becomes Current, otherwise unchanged; success makes an instance Healthy, anything else Unhealthy;
- after a deployment fails or is stopped: every attempted instance becomes Healthy or Unhealthy by its
  own result, the others keep their instance health, and the group's revision does not change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum


class InstanceHealth(StrEnum):
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"


class RevisionHealth(StrEnum):
    CURRENT = "Current"
    OLD = "Old"
    UNKNOWN = "Unknown"


class AttemptResult(Enum):
    """What this deployment did to one instance."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"  # a failed or stopped attempt: the instance was deployed to and did not succeed
    NOT_ATTEMPTED = "NotAttempted"  # never started (Skipped, or still Pending when the deployment ended)


@dataclass(frozen=True)
class HealthStatus:
    """Both health values of one instance in one deployment group."""

    instance_health: InstanceHealth = InstanceHealth.UNHEALTHY
    revision_health: RevisionHealth = RevisionHealth.UNKNOWN

    def __post_init__(self) -> None:
        # Values read back from storage may be plain strings; "Healthy" must compare as HEALTHY.
        object.__setattr__(self, "instance_health", InstanceHealth(self.instance_health))
        object.__setattr__(self, "revision_health", RevisionHealth(self.revision_health))


# "a revision has not yet been deployed to the instance" -> Unhealthy; nothing installed -> Unknown.
NEW_INSTANCE = HealthStatus(InstanceHealth.UNHEALTHY, RevisionHealth.UNKNOWN)

_REVISION_ORDER = {RevisionHealth.UNKNOWN: 0, RevisionHealth.OLD: 1, RevisionHealth.CURRENT: 2}


def dispatch_rank(health: HealthStatus) -> tuple[int, int]:
    """Sort key for the guide's order: Unhealthy first, then Unknown, Old, Current revision.

    Among Unhealthy instances the revision order still applies, so the least up-to-date go first.
    """
    unhealthy_first = 0 if health.instance_health is InstanceHealth.UNHEALTHY else 1
    return (unhealthy_first, _REVISION_ORDER[health.revision_health])


def in_dispatch_order(instances: Iterable[tuple[str, HealthStatus]]) -> list[str]:
    """Instance names in the order they are deployed to; the name breaks ties, so the order is stable."""
    return [name for name, health in sorted(instances, key=lambda item: (dispatch_rank(item[1]), item[0]))]


def health_after_deployment(
    health: HealthStatus,
    result: AttemptResult,
    *,
    deployment_succeeded: bool,
    deployed_group_revision: bool = False,
) -> HealthStatus:
    """An instance's health once a deployment to its group has ended.

    Instance health follows the guide everywhere: an attempt sets it by its result, no attempt keeps it.
    Revision health after a successful deployment follows the guide too. After a failed or stopped
    deployment the guide only says the group's revision stays the same, so this is a decision:

    - a failed attempt is treated as in a successful deployment (Current becomes Unknown, because the
      previous revision's files were removed; Old and Unknown stay as they are);
    - a succeeded attempt now runs the deployment's revision: Current if that is the group's revision
      (``deployed_group_revision``, e.g. a redeploy), otherwise Old (a revision that is not the group's).
    """
    if result is AttemptResult.NOT_ATTEMPTED:
        return health
    if result is AttemptResult.FAILED:
        revision_health = (
            RevisionHealth.UNKNOWN
            if health.revision_health is RevisionHealth.CURRENT
            else health.revision_health
        )
        return HealthStatus(InstanceHealth.UNHEALTHY, revision_health)
    if deployment_succeeded or deployed_group_revision:
        return HealthStatus(InstanceHealth.HEALTHY, RevisionHealth.CURRENT)
    return HealthStatus(InstanceHealth.HEALTHY, RevisionHealth.OLD)

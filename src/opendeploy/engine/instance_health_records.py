"""Instance health records: the guide's instance and revision health (§2.6), kept per deployment group.

- When a deployment starts, each instance's health orders dispatch (Unhealthy, then Unknown, Old,
  Current: ``domain.batching``); an instance the group has never deployed to is new (Unhealthy,
  Unknown). ``updateOutdatedInstancesOnly`` skips the instances that are Healthy and already run the
  deployment's revision.
- When a deployment ends (succeeded, failed or stopped), each of its instances' health moves on by
  ``domain.instance_health.health_after_deployment``: an attempted instance by its own result, the
  others unchanged. After a success that changed the group's revision, the group's other instances
  that were Current (they were not in this deployment) now run an older revision: Old.

Every target of a deployment gets a record when the deployment ends, attempted or not, so an instance
without one is an instance the group has not yet deployed to (``known_instances``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from opendeploy.domain.instance_health import (
    NEW_INSTANCE,
    AttemptResult,
    HealthStatus,
    InstanceHealth,
    RevisionHealth,
    health_after_deployment,
)
from opendeploy.domain.statuses import DeploymentStatus, TargetStatus
from opendeploy.store.models import Deployment, DeploymentTarget, InstanceHealthRecord

_CHUNK = 500  # names per IN (...) list


@dataclass(frozen=True)
class KnownInstance:
    """What a group's record says of one instance."""

    health: HealthStatus
    revision_id: str | None


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[start : start + _CHUNK] for start in range(0, len(items), _CHUNK)]


def known(session: Session, group_id: str, names: Iterable[str]) -> dict[str, KnownInstance]:
    """The records of ``names`` in the group (instances without one are new to it)."""
    found: dict[str, KnownInstance] = {}
    for chunk in _chunks(list(names)):
        rows = session.execute(
            select(
                InstanceHealthRecord.instance_name,
                InstanceHealthRecord.instance_health,
                InstanceHealthRecord.revision_health,
                InstanceHealthRecord.revision_id,
            ).where(
                InstanceHealthRecord.deployment_group_id == group_id,
                InstanceHealthRecord.instance_name.in_(chunk),
            )
        )
        for name, instance_health, revision_health, revision_id in rows:
            found[name] = KnownInstance(HealthStatus(instance_health, revision_health), revision_id)
    return found


def health_at_start(session: Session, group_id: str, names: Sequence[str]) -> dict[str, HealthStatus]:
    """Each instance's health as a deployment of the group starts (new instances: Unhealthy, Unknown)."""
    records = known(session, group_id, names)
    return {name: records[name].health if name in records else NEW_INSTANCE for name in names}


def up_to_date(records: dict[str, KnownInstance], revision_id: str | None) -> set[str]:
    """The instances already running ``revision_id``: their last deployment in the group succeeded and
    installed it (what ``updateOutdatedInstancesOnly`` leaves out)."""
    if revision_id is None:
        return set()
    return {
        name
        for name, record in records.items()
        if record.revision_id == revision_id and record.health.instance_health is InstanceHealth.HEALTHY
    }


def known_instances(session: Session, group_id: str, names: Iterable[str]) -> set[str]:
    """Which of ``names`` the group has deployed to (or tried to) before."""
    return set(known(session, group_id, names))


def forget_instances(session: Session, names: Iterable[str]) -> None:
    """A name registered afresh is a new machine: no group knows it any more."""
    for chunk in _chunks(list(names)):
        session.execute(delete(InstanceHealthRecord).where(InstanceHealthRecord.instance_name.in_(chunk)))


def _result(status: str) -> AttemptResult:
    if status == TargetStatus.SUCCEEDED:
        return AttemptResult.SUCCEEDED
    if status == TargetStatus.FAILED:
        return AttemptResult.FAILED
    return AttemptResult.NOT_ATTEMPTED  # Skipped (or never started)


def record_deployment_end(
    session: Session, deployment: Deployment, group_revision_before: str | None, now: float
) -> None:
    """Move the health of ``deployment``'s instances on, now that it has ended (its status is final).

    ``group_revision_before`` is the group's revision before this deployment (that of its last
    successful deployment): a deployment that succeeds on an instance but not overall installed the
    group's revision only if it deployed that one (a redeploy), otherwise an Old one.
    """
    group_id = deployment.deployment_group_id
    if group_id is None:
        return
    targets = session.execute(
        select(DeploymentTarget.target_id, DeploymentTarget.status, DeploymentTarget.up_to_date).where(
            DeploymentTarget.deployment_id == deployment.id
        )
    ).all()
    if not targets:
        return
    succeeded = deployment.status == DeploymentStatus.SUCCEEDED
    records = known(session, group_id, [name for name, _, _ in targets])
    inserts: list[dict[str, object]] = []
    updates: list[dict[str, object]] = []
    for name, status, already in targets:
        result = _result(status)
        record = records.get(name)
        before = record.health if record is not None else NEW_INSTANCE
        after = health_after_deployment(
            before,
            result,
            deployment_succeeded=succeeded,
            deployed_group_revision=deployment.revision_id == group_revision_before,
        )
        if already and succeeded:
            # Skipped as up to date: it runs the revision that has just become the group's.
            after = HealthStatus(InstanceHealth.HEALTHY, RevisionHealth.CURRENT)
        revision_id = record.revision_id if record is not None else None
        if result is AttemptResult.SUCCEEDED:
            revision_id = deployment.revision_id
        elif result is AttemptResult.FAILED:
            revision_id = None  # the previous revision's files were removed; what is there is unknown
        row = {
            "deployment_group_id": group_id,
            "instance_name": name,
            "instance_health": str(after.instance_health),
            "revision_health": str(after.revision_health),
            "revision_id": revision_id,
            "deployment_id": deployment.id,
            "updated_at": now,
        }
        (updates if record is not None else inserts).append(row)
    if inserts:
        session.execute(insert(InstanceHealthRecord), inserts)
    if updates:
        session.execute(update(InstanceHealthRecord), updates)  # bulk update by primary key
    if succeeded and deployment.revision_id != group_revision_before:
        # The group's revision changed: its instances this deployment did not reach run an older one.
        session.execute(
            update(InstanceHealthRecord)
            .where(
                InstanceHealthRecord.deployment_group_id == group_id,
                InstanceHealthRecord.revision_health == RevisionHealth.CURRENT,
                InstanceHealthRecord.deployment_id != deployment.id,
            )
            .values(revision_health=RevisionHealth.OLD, updated_at=now)
        )

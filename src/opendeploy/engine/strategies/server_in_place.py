"""The EC2/On-Premises in-place strategy, with or without traffic control: start a deployment, decide
which instances run, finish it. Registered for (Server, IN_PLACE, WITHOUT_TRAFFIC_CONTROL) and (Server,
IN_PLACE, WITH_TRAFFIC_CONTROL).

With traffic control each instance also runs BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic before
ApplicationStop and BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic after ValidateService; the server
runs BlockTraffic and AllowTraffic itself through the group's load balancers (``runners.traffic``). The
deployment fails at start when they cannot be used, and otherwise says what its traffic steps should
cost (``deploymentStatusMessages``). Minimum healthy hosts count an instance out of its load balancers as
unhealthy, as they count every instance under way. A stop ends running traffic steps at once and gives
the instances it took out back to their load balancers (health checks decide when they serve again);
an instance whose event failed stays out.

- **start** (Created -> InProgress): resolve the deployment group's instances now (a deployment the
  engine made for new instances only: those of them still selected); none is a ``NO_INSTANCES``
  failure (troubleshooting D-9: at start, as a failed deployment). Each instance becomes a target with
  its lifecycle events in order, all Pending: in place without a load balancer, ApplicationStop,
  DownloadBundle, BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService
  (``appspec.lifecycle_events.server_events``). The target keeps what dispatch needs from that moment:
  the instance's health in its group (``instance_health_records``) and, with a zonal configuration, its
  zone (``instance_zones``). With ``updateOutdatedInstancesOnly`` an instance already running the
  revision is Skipped at once and left out of the health arithmetic.
- **dispatch**: ``domain.batching.next_dispatch`` — the one place that decides — says which instances
  start now (Unhealthy first, then Unknown, Old, Current; one zone at a time, with its monitor
  duration as ``engine_due_at``; a rollback not zone by zone), which are skipped and whether the
  deployment has ended; the engine carries that out. An instance runs its events one at a time
  (``target_progress``: each next event to its runner, an agent's as a host command). A deployment
  being stopped is not dispatched (``stop``).
- **finish**: Succeeded, or Failed with the guide's error code and message in ``errorInformation``
  and dispatch's explanation in ``deploymentStatusMessages``. A failure caused only by agents that never
  picked their events up is ``AGENT_ISSUE``; only by events that ran past their deadline, ``TIMEOUT``.
  Every end goes through ``deployment_end``: health, automatic rollback, new instances.
- **drain** (a stop): events not yet handed to agents are called off; those running finish
  (``engine.stop``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from opendeploy.appspec.lifecycle_events import IN_PLACE, LifecycleEvent, server_events
from opendeploy.domain import deployment_config as configs
from opendeploy.domain.arns import instance_arn
from opendeploy.domain.batching import DispatchDecision, FleetTarget, next_dispatch
from opendeploy.domain.deployment_style import DeploymentType
from opendeploy.domain.instance_health import NEW_INSTANCE, HealthStatus
from opendeploy.domain.statuses import (
    ERROR_MESSAGES,
    DeploymentCreator,
    DeploymentStatus,
    DeploymentTargetType,
    ErrorCode,
    LifecycleEventStatus,
    TargetStatus,
)
from opendeploy.engine import instance_health_records, notifying, stop, target_progress
from opendeploy.engine.deployment_end import end_deployment
from opendeploy.engine.instance_zones import instance_zones
from opendeploy.engine.progress import Progress, record_progress
from opendeploy.engine.runners import EventStart, traffic
from opendeploy.engine.strategies.base import StrategyKey, register
from opendeploy.engine.targets import group_instances
from opendeploy.integrations.traffic import TrafficError
from opendeploy.settings import Settings
from opendeploy.store.deployment_configs import find_deployment_config
from opendeploy.store.models import (
    Deployment,
    DeploymentGroup,
    DeploymentTarget,
    LifecycleEventRecord,
)
from opendeploy.store.prepared import Prepared

_CHUNK = 500  # ids per IN (...) list
# The in-place strategy's one phase (``engine.progress``): its targets are on record and dispatch rolls
# the revision out; everything else it needs is in the targets' rows.
ROLLOUT = "Rollout"
_FINISHED = frozenset({TargetStatus.SUCCEEDED, TargetStatus.FAILED, TargetStatus.SKIPPED})
TIMEOUT_MESSAGE = (
    "The deployment failed because lifecycle events on its instances did not complete in the time "
    "allowed. Make sure the agent keeps running on every instance until its events finish."
)


def _chunks(items: Sequence[int]) -> list[Sequence[int]]:
    return [items[start : start + _CHUNK] for start in range(0, len(items), _CHUNK)]


def fail(
    session: Session,
    deployment: Deployment,
    code: ErrorCode,
    now: float,
    detail: str | None,
    settings: Settings,
    *,
    message: str | None = None,
) -> None:
    end_deployment(
        session,
        deployment,
        DeploymentStatus.FAILED,
        now,
        settings,
        error_code=code,
        error_message=message or ERROR_MESSAGES.get(code) or detail or str(code),
        status_messages=[detail] if detail else [],
    )


# --- start ----------------------------------------------------------------------------------------------


def group_and_config(
    session: Session, deployment: Deployment, now: float, settings: Settings
) -> tuple[DeploymentGroup, configs.DeploymentConfig] | None:
    """A starting server deployment's group and configuration; None once the deployment has failed for
    the one that is missing (the group deleted, a configuration without minimum healthy hosts)."""
    group = (
        session.get(DeploymentGroup, deployment.deployment_group_id)
        if deployment.deployment_group_id
        else None
    )
    if group is None:
        fail(
            session,
            deployment,
            ErrorCode.DEPLOYMENT_GROUP_MISSING,
            now,
            "The deployment group of this deployment no longer exists.",
            settings,
        )
        return None
    config = find_deployment_config(session, deployment.deployment_config_name)
    if config is None or config.minimum_healthy_hosts is None:
        fail(
            session,
            deployment,
            ErrorCode.INTERNAL_ERROR,
            now,
            f"Deployment configuration {deployment.deployment_config_name} does not exist or has no "
            "minimum healthy hosts.",
            settings,
        )
        return None
    return group, config


def start(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    """Created -> InProgress with a target per instance, then the first dispatch; or Failed."""
    found = group_and_config(session, deployment, now, settings)
    if found is None:
        return
    group, config = found
    if deployment.style.traffic_control:
        try:
            deployment.deployment_status_messages = [traffic.traffic_plan(deployment, settings)]
        except TrafficError as error:
            code = (
                ErrorCode.MISSING_ELB_INFORMATION
                if deployment.load_balancer.empty
                else ErrorCode.ELASTIC_LOAD_BALANCING_INVALID
            )
            fail(session, deployment, code, now, str(error), settings, message=str(error))
            return
    names = group_instances(session, group)
    if deployment.instance_names is not None:  # a deployment the engine made for some instances only
        wanted = set(deployment.instance_names)
        names = tuple(name for name in names if name in wanted)
    if not names:
        fail(session, deployment, ErrorCode.NO_INSTANCES, now, None, settings)
        return
    limit = settings.quotas.instances_per_deployment
    if len(names) > limit:
        fail(
            session,
            deployment,
            ErrorCode.OVER_MAX_INSTANCES,
            now,
            f"{len(names)} instances match the deployment group; at most {limit} may be deployed to at once.",
            settings,
        )
        return
    known = instance_health_records.known(session, group.id, names)
    already = (
        instance_health_records.up_to_date(known, deployment.revision_id)
        if deployment.update_outdated_instances_only
        else set()
    )
    zones = (
        instance_zones(session, names, settings.engine.zone_tag_key)
        if _zonal(deployment, config) is not None
        else {}
    )
    health = {name: known[name].health if name in known else NEW_INSTANCE for name in names}
    add_targets(session, deployment, names, now, settings, health=health, zones=zones, up_to_date=already)
    deployment.status = DeploymentStatus.IN_PROGRESS
    deployment.start_time = now
    deployment.updated_at = now
    notifying.deployment_changed_state(session, deployment, DeploymentStatus.CREATED, now, settings)
    record_progress(deployment, Progress(phase=ROLLOUT))
    dispatch(session, deployment, config, now, settings)


def lifecycle_events(traffic_control: bool = False) -> tuple[LifecycleEvent, ...]:
    """An instance's events in an in-place deployment, in order: with traffic control, BlockTraffic and
    AllowTraffic and their hooks around the install (guide L24582–L24584)."""
    return server_events(deployment_type=IN_PLACE, load_balancer=traffic_control)


def _zonal(deployment: Deployment, config: configs.DeploymentConfig) -> configs.ZonalConfig | None:
    """The zonal configuration the deployment follows: its configuration's, except in a rollback, which
    is not deployed zone by zone (guide L15007–15011)."""
    if deployment.creator == DeploymentCreator.CODEDEPLOY_ROLLBACK:
        return None
    return config.zonal_config


def add_targets(
    session: Session,
    deployment: Deployment,
    names: Sequence[str],
    now: float,
    settings: Settings,
    *,
    health: Mapping[str, HealthStatus] | None = None,
    zones: Mapping[str, str | None] | None = None,
    up_to_date: Collection[str] = (),
    events: Sequence[LifecycleEvent] | None = None,
    label: str | None = None,
) -> None:
    """One target per instance with its lifecycle events (``events``; by default the in-place ones), in
    bulk (a fleet may have thousands); ``label``: Blue or Green in a blue/green deployment. An instance
    already up to date (``updateOutdatedInstancesOnly``) is Skipped, its events with it."""
    names_of_events = [event.name for event in (events or lifecycle_events(deployment.style.traffic_control))]
    health = health or {}
    zones = zones or {}
    rows = session.execute(
        insert(DeploymentTarget).returning(DeploymentTarget.id, sort_by_parameter_order=True),
        [
            {
                "deployment_id": deployment.id,
                "target_id": name,
                "target_type": str(DeploymentTargetType.INSTANCE),
                "target_arn": instance_arn(settings.region, settings.account_id, name),
                "status": str(TargetStatus.SKIPPED if name in up_to_date else TargetStatus.PENDING),
                "instance_label": label,
                "last_updated_at": now,
                "details": None,
                "failure_cause": None,
                "instance_health": str(health.get(name, NEW_INSTANCE).instance_health),
                "revision_health": str(health.get(name, NEW_INSTANCE).revision_health),
                "zone": zones.get(name),
                "up_to_date": name in up_to_date,
            }
            for name in names
        ],
    ).all()
    session.execute(
        insert(LifecycleEventRecord),
        [
            {
                "deployment_target_id": target_id,
                "position": position,
                "name": name,
                "status": str(
                    LifecycleEventStatus.SKIPPED if target in up_to_date else LifecycleEventStatus.PENDING
                ),
            }
            for (target_id,), target in zip(rows, names, strict=True)
            for position, name in enumerate(names_of_events)
        ],
    )


# --- dispatch -------------------------------------------------------------------------------------------


def current_config(
    session: Session, deployment: Deployment, now: float, settings: Settings
) -> configs.DeploymentConfig | None:
    """A running deployment's configuration; None once the deployment has failed because it no longer
    exists (or has no minimum healthy hosts)."""
    config = find_deployment_config(session, deployment.deployment_config_name)
    if config is None or config.minimum_healthy_hosts is None:
        fail(
            session,
            deployment,
            ErrorCode.INTERNAL_ERROR,
            now,
            f"Deployment configuration {deployment.deployment_config_name} no longer exists.",
            settings,
        )
        return None
    return config


def dispatch(
    session: Session,
    deployment: Deployment,
    config: configs.DeploymentConfig | None,
    now: float,
    settings: Settings,
) -> DispatchDecision | None:
    """Ask ``next_dispatch`` what to do now and do it."""
    config = config or current_config(session, deployment, now, settings)
    if config is None:
        return None
    if _only_waiting(session, deployment):
        return None
    rows = session.execute(
        select(
            DeploymentTarget.id,
            DeploymentTarget.target_id,
            DeploymentTarget.status,
            DeploymentTarget.last_updated_at,
            DeploymentTarget.instance_health,
            DeploymentTarget.revision_health,
            DeploymentTarget.zone,
            DeploymentTarget.up_to_date,
        ).where(DeploymentTarget.deployment_id == deployment.id)
    ).all()
    # Instances skipped as already up to date take no part in the health arithmetic.
    fleet = [
        FleetTarget(
            name=row.target_id,
            status=TargetStatus(row.status),
            health=HealthStatus(row.instance_health, row.revision_health)
            if row.instance_health and row.revision_health
            else NEW_INSTANCE,
            zone=row.zone,
            finished_at=row.last_updated_at if row.status in _FINISHED else None,
        )
        for row in rows
        if not row.up_to_date
    ]
    if not fleet:  # every instance already runs the revision: nothing to deploy
        decision = DispatchDecision(DeploymentStatus.SUCCEEDED)
    else:
        decision = next_dispatch(
            fleet, config.minimum_healthy_hosts, zonal=_zonal(deployment, config), now=now
        )
    ids = {row.target_id: row.id for row in rows}
    if decision.start:
        start_targets(session, deployment, [ids[name] for name in decision.start], now, settings)
    if decision.skip:
        _skip_targets(session, [ids[name] for name in decision.skip], now)
    deployment.engine_due_at = decision.wait_until
    if decision.status == DeploymentStatus.SUCCEEDED:
        end_deployment(session, deployment, DeploymentStatus.SUCCEEDED, now, settings)
    elif decision.status == DeploymentStatus.FAILED:
        code = decision.error_code or ErrorCode.HEALTH_CONSTRAINTS
        if code == ErrorCode.HEALTH_CONSTRAINTS:
            code = _refined_failure(session, deployment)
        message = TIMEOUT_MESSAGE if code == ErrorCode.TIMEOUT else None
        fail(session, deployment, code, now, decision.message, settings, message=message)
    return decision


# One index seek each (deployment_id, status): not a count over the fleet.
_WITH_STATUS = Prepared(
    select(DeploymentTarget.id)
    .where(
        DeploymentTarget.deployment_id == bindparam("deployment_id"),
        DeploymentTarget.status == bindparam("status"),
    )
    .limit(1)
)


def _only_waiting(session: Session, deployment: Deployment) -> bool:
    """True when instances are running and none waits to start: then no decision is possible but to
    wait, and reading the whole fleet (as each of a thousand finishing instances would) is skipped."""
    connection = session.connection()

    def any_with(status: TargetStatus) -> bool:
        return _WITH_STATUS.first(connection, {"deployment_id": deployment.id, "status": status}) is not None

    return not any_with(TargetStatus.PENDING) and any_with(TargetStatus.IN_PROGRESS)


def _refined_failure(session: Session, deployment: Deployment) -> ErrorCode:
    """HEALTH_CONSTRAINTS, or AGENT_ISSUE / TIMEOUT when every failed instance failed for that reason."""
    causes = set(
        session.scalars(
            select(DeploymentTarget.failure_cause)
            .where(
                DeploymentTarget.deployment_id == deployment.id,
                DeploymentTarget.status == TargetStatus.FAILED,
            )
            .distinct()
        )
    )
    if causes == {target_progress.CAUSE_AGENT}:
        return ErrorCode.AGENT_ISSUE
    if causes == {target_progress.CAUSE_TIMEOUT}:
        return ErrorCode.TIMEOUT
    return ErrorCode.HEALTH_CONSTRAINTS


def start_targets(
    session: Session, deployment: Deployment, target_ids: Sequence[int], now: float, settings: Settings
) -> None:
    steps: list[tuple[DeploymentTarget, LifecycleEventRecord]] = []
    notifying.instances_changed_state(
        session,
        deployment,
        [(t, TargetStatus.PENDING, TargetStatus.IN_PROGRESS) for t in target_ids],
        now,
        settings,
    )
    for chunk in _chunks(target_ids):
        session.execute(
            update(DeploymentTarget)
            .where(DeploymentTarget.id.in_(chunk))
            .values(status=TargetStatus.IN_PROGRESS, last_updated_at=now)
        )
        targets = {
            t.id: t for t in session.scalars(select(DeploymentTarget).where(DeploymentTarget.id.in_(chunk)))
        }
        first_events = session.scalars(
            select(LifecycleEventRecord).where(
                LifecycleEventRecord.deployment_target_id.in_(chunk), LifecycleEventRecord.position == 0
            )
        )
        steps.extend((targets[event.deployment_target_id], event) for event in first_events)
    target_progress.start_events(
        session,
        deployment.id,
        deployment.compute_platform,
        [
            EventStart(target.id, target.target_arn or target.target_id, event.id, event.name, event.position)
            for target, event in steps
        ],
        now,
        settings.engine,
    )


def _skip_targets(session: Session, target_ids: Sequence[int], now: float) -> None:
    for chunk in _chunks(target_ids):
        session.execute(
            update(DeploymentTarget)
            .where(DeploymentTarget.id.in_(chunk))
            .values(status=TargetStatus.SKIPPED, last_updated_at=now)
        )
        session.execute(
            update(LifecycleEventRecord)
            .where(
                LifecycleEventRecord.deployment_target_id.in_(chunk),
                LifecycleEventRecord.status == LifecycleEventStatus.PENDING,
            )
            .values(status=LifecycleEventStatus.SKIPPED)
        )


# --- the strategy -----------------------------------------------------------------------------------------


class InPlaceStrategy:
    """``start`` / ``dispatch`` above as the engine's strategy interface."""

    deploys_to_new_instances = True

    def lifecycle_events(self, deployment: Deployment) -> tuple[LifecycleEvent, ...]:
        return lifecycle_events(deployment.style.traffic_control)

    def start(self, session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
        start(session, deployment, now, settings)

    def advance(self, session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
        if deployment.status == DeploymentStatus.IN_PROGRESS:
            dispatch(session, deployment, None, now, settings)

    def drain(self, session: Session, deployment: Deployment, now: float, settings: Settings) -> bool:
        if not deployment.style.traffic_control:
            return stop.drain_host_commands(session, deployment.id, now)
        traffic.stop_traffic_events(session, deployment.id, now, settings)
        drained = stop.drain_host_commands(session, deployment.id, now)
        if drained:
            problems = traffic.restore_traffic(session, deployment, settings)
            if problems:
                before = deployment.deployment_status_messages or []
                deployment.deployment_status_messages = [*before, *problems]
        return drained


IN_PLACE_STRATEGY = register(
    InPlaceStrategy(),
    StrategyKey(configs.ComputePlatform.SERVER, DeploymentType.IN_PLACE, traffic_control=False),
    StrategyKey(configs.ComputePlatform.SERVER, DeploymentType.IN_PLACE, traffic_control=True),
)

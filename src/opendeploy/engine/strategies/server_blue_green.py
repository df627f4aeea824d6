"""The EC2/On-Premises blue/green strategy: install the revision on a replacement environment, reroute
traffic to it through the deployment group's load balancers, then take the original environment out.
Registered for (Server, BLUE_GREEN, with and without traffic control: a blue/green deployment always
reroutes traffic, guide L3259).

AWS runs blue/green only on EC2; here any registered instances can be either environment. The
**replacement** (Green) instances are those the deployment's ``targetInstances`` select by tags (the
guide's "manually provision instances", ``DISCOVER_EXISTING``); the **original** (Blue) ones are the rest
of the deployment group's instances. The steps (guide L636–652, L15265–15276), each a ``phase`` on record
(``engine.progress``) so a restart resumes where it was:

- **Provision** (``COPY_AUTO_SCALING_GROUP`` only, guide L603–613, L3134–3152): the deployment group's
  Auto Scaling group is copied (``integrations.auto_scaling``) as ``CodeDeploy_<group>_<deployment id>``,
  sized to the original's healthy instances — idempotent by name, so a restart creates no second group
  — then, every ``provision_poll_interval`` up to ``provision_wait`` (``EngineSettings``), the copy is
  looked at until every instance it should have is InService and registered under its EC2 instance id
  (opendeploy has no EC2 inventory: their boot script registers them with that name and starts the
  agent). Those are the replacements; the originals are the group's instances plus the registered ones
  named by the original Auto Scaling group's instance ids. Not all registered in time: Failed, naming
  the missing ones. On success the deployment group names the copy instead of the original, and with
  TERMINATE the original Auto Scaling group is force-deleted as its instances are deregistered. The
  Auto Scaling calls run inside the step's transaction (a few quick requests, as the traffic steps do).

- **Install**: replacement instances run ApplicationStop … ValidateService, as many at a time as the
  deployment configuration's minimum healthy hosts allow over the replacement environment (guide
  L14394–14399). Each then waits, Ready (InstanceReady), before BeforeAllowTraffic (``target_progress``).
- **ReadyWait**: with ``deploymentReadyOption`` STOP_DEPLOYMENT the deployment is Ready (DeploymentReady)
  until ContinueDeployment, or Stopped, traffic untouched, once ``waitTimeInMinutes`` pass.
- **Reroute**: replacement instances run BeforeAllowTraffic, AllowTraffic (the server registers them with
  the load balancers and waits until they are healthy), AfterAllowTraffic — as fast as the configuration
  allows (L15587–15597); with a canary or linear ``trafficRoutingConfig`` (beyond AWS) all at once, at
  weight 0.
- **Shift** (canary or linear only): each step of ``domain.traffic_routing``'s schedule gives the
  replacements its share by the load balancers' weights (re-applied every hold interval; alarms read
  after each step); ContinueDeployment promotes (100 % now); a ``Traffic: …`` status message says where
  it is and when the next step is.
- **BlockOriginal**: every original instance at once runs BeforeBlockTraffic, BlockTraffic (drained, then
  out), AfterBlockTraffic; one that fails fails the deployment (L14394–14399).
- **TerminationWait**: with ``terminateBlueInstancesOnDeploymentSuccess`` TERMINATE, after
  ``terminationWaitTimeInMinutes`` (or at ContinueDeployment TERMINATION_WAIT) the original instances are
  terminated: for on-premises instances that means deregistered (as DeregisterOnPremisesInstance does:
  out of every deployment group, their tags kept; their agents get no more work). KEEP_ALIVE leaves them
  running, out of the load balancers. Then Succeeded.

A rollback of a blue/green deployment reroutes back instead of reinstalling (L520–523): its original
instances (the failed deployment's) run the AllowTraffic events (**RerouteBack**), then its replacement
instances the BlockTraffic ones (**BlockReplacement**). A stop ends traffic events at once and gives the
traffic back to the original environment: originals taken out are allowed again, replacements let in are
taken out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opendeploy.appspec.lifecycle_events import (
    ALLOW_TRAFFIC,
    BLUE_GREEN,
    ORIGINAL,
    REPLACEMENT,
    LifecycleEvent,
    server_events,
)
from opendeploy.domain import deployment_config as configs
from opendeploy.domain.batching import DispatchDecision, FleetTarget, next_dispatch
from opendeploy.domain.deployment_style import (
    DeploymentType,
    GreenFleetProvisioning,
    InstanceAction,
    ReadyAction,
)
from opendeploy.domain.instance_health import NEW_INSTANCE, HealthStatus
from opendeploy.domain.minimum_healthy_hosts import MinimumHealthyHosts
from opendeploy.domain.statuses import (
    DeploymentCreator,
    DeploymentStatus,
    ErrorCode,
    LifecycleEventStatus,
    TargetStatus,
)
from opendeploy.domain.traffic_routing import ShiftState, promote, shift_at
from opendeploy.engine import alarm_monitoring, instance_health_records, notifying, stop, target_progress
from opendeploy.engine.deployment_end import end_deployment
from opendeploy.engine.progress import SHIFT, Progress, progress_of, record_progress
from opendeploy.engine.runners import EventStart, traffic
from opendeploy.engine.strategies.base import StrategyKey, register
from opendeploy.engine.strategies.server_in_place import (
    add_targets,
    current_config,
    fail,
    group_and_config,
    start_targets,
)
from opendeploy.engine.targets import group_instances, registered_names, replacement_instances
from opendeploy.integrations import auto_scaling
from opendeploy.integrations.auto_scaling import AutoScalingError
from opendeploy.integrations.traffic import TrafficError, TrafficMisconfigured
from opendeploy.settings import Settings
from opendeploy.store.models import (
    Deployment,
    DeploymentGroup,
    DeploymentTarget,
    LifecycleEventRecord,
    OnPremisesInstance,
)

BLUE = "Blue"  # the API's instanceType / instanceLabel of an original instance
GREEN = "Green"  # of a replacement instance

PROVISION = "Provision"
INSTALL = "Install"
READY_WAIT = "ReadyWait"
REROUTE = "Reroute"
BLOCK_ORIGINAL = "BlockOriginal"
TERMINATION_WAIT = "TerminationWait"
REROUTE_BACK = "RerouteBack"
BLOCK_REPLACEMENT = "BlockReplacement"

AUTO_SCALING = "autoScaling"
"""``Progress.fixed`` key of a COPY_AUTO_SCALING_GROUP deployment: {"source": the group's Auto Scaling
group, "copy": the one the deployment creates}."""

_DONE = frozenset({TargetStatus.SUCCEEDED, TargetStatus.FAILED, TargetStatus.SKIPPED})
ALL_AT_ONCE = configs.PREDEFINED_CONFIGS["CodeDeployDefault.AllAtOnce"].minimum_healthy_hosts


# --- start ----------------------------------------------------------------------------------------------


def start(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    """Created -> InProgress with a Green target per replacement instance and a Blue one per original
    instance, then the first step; or Failed before any instance is touched."""
    found = group_and_config(session, deployment, now, settings)
    if found is None:
        return
    group, config = found
    if deployment.load_balancer.empty:
        message = (
            "A blue/green deployment reroutes traffic through a load balancer, and the deployment group's "
            "loadBalancerInfo names none."
        )
        fail(session, deployment, ErrorCode.MISSING_ELB_INFORMATION, now, message, settings, message=message)
        return
    rolled_back = _rolled_back(session, deployment)
    try:
        traffic.orient_target_group_pairs(deployment, rolled_back, settings)
        deployment.deployment_status_messages = [traffic.traffic_plan(deployment, settings)]
    except TrafficError as error:
        code = ErrorCode.ELASTIC_LOAD_BALANCING_INVALID
        fail(session, deployment, code, now, str(error), settings, message=str(error))
        return
    if rolled_back is None and _routing(config) is not None:
        try:
            traffic.check_shift(session, deployment, (), (), settings)
        except TrafficError as error:
            code = ErrorCode.ELASTIC_LOAD_BALANCING_INVALID
            fail(session, deployment, code, now, str(error), settings, message=str(error))
            return
    if rolled_back is not None:
        _start_rollback(session, deployment, rolled_back, now, settings)
        return
    if deployment.blue_green.green_fleet_provisioning == GreenFleetProvisioning.COPY_AUTO_SCALING_GROUP:
        _start_provision(session, deployment, group, now, settings)
        return
    replacements = replacement_instances(session, deployment.target_instances)
    if not replacements:
        message = (
            "The deployment's targetInstances select no registered instance: a blue/green deployment needs "
            "a replacement environment."
        )
        fail(session, deployment, ErrorCode.NO_INSTANCES, now, message, settings, message=message)
        return
    chosen = set(replacements)
    originals = tuple(name for name in group_instances(session, group) if name not in chosen)
    if _add_environments(session, deployment, group, replacements, originals, now, settings):
        _begin(session, deployment, now, settings, INSTALL)
        _install(session, deployment, config, now, settings)


def _add_environments(
    session: Session,
    deployment: Deployment,
    group: DeploymentGroup,
    replacements: Sequence[str],
    originals: Sequence[str],
    now: float,
    settings: Settings,
) -> bool:
    """A Green target per replacement instance and a Blue one per original instance; False (and the
    deployment Failed) when they are more than one deployment may have."""
    limit = settings.quotas.instances_per_deployment
    if len(replacements) + len(originals) > limit:
        fail(
            session,
            deployment,
            ErrorCode.OVER_MAX_INSTANCES,
            now,
            f"{len(replacements) + len(originals)} instances take part in this deployment; at most {limit} "
            "may be deployed to at once.",
            settings,
        )
        return False
    known = instance_health_records.known(session, group.id, replacements)
    health = {name: known[name].health if name in known else NEW_INSTANCE for name in replacements}
    add_targets(
        session,
        deployment,
        replacements,
        now,
        settings,
        health=health,
        events=server_events(deployment_type=BLUE_GREEN, role=REPLACEMENT),
        label=GREEN,
    )
    if originals:
        add_targets(
            session,
            deployment,
            originals,
            now,
            settings,
            events=server_events(deployment_type=BLUE_GREEN, role=ORIGINAL),
            label=BLUE,
        )
    return True


# --- provisioning by copying an Auto Scaling group ---------------------------------------------------------


def copy_name(group_name: str, deployment_id: str) -> str:
    """The name of the Auto Scaling group a deployment creates (guide L3143–3152)."""
    return f"CodeDeploy_{group_name}_{deployment_id}"


def _start_provision(
    session: Session, deployment: Deployment, group: DeploymentGroup, now: float, settings: Settings
) -> None:
    sources = auto_scaling.names(group.auto_scaling_groups)
    if len(sources) != 1:
        message = (
            "Copying an Auto Scaling group (greenFleetProvisioningOption COPY_AUTO_SCALING_GROUP) needs a "
            f"deployment group that names exactly one Auto Scaling group; '{group.name}' names "
            f"{len(sources)}."
        )
        code = ErrorCode.AUTO_SCALING_CONFIGURATION
        fail(session, deployment, code, now, message, settings, message=message)
        return
    _begin(session, deployment, now, settings, PROVISION)
    names = {"source": sources[0], "copy": copy_name(group.name, deployment.id)}
    extra = {"waitUntil": now + settings.engine.provision_wait}
    record_progress(deployment, Progress(phase=PROVISION, extra=extra, fixed={AUTO_SCALING: names}))
    _provision(session, deployment, now, settings)


def _provision(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    """Create the copy (once), then look at it until its instances are all in service and registered."""
    progress = progress_of(deployment)
    names: Mapping[str, str] = progress.fixed[AUTO_SCALING]
    source, copy = names["source"], names["copy"]
    extra = dict(progress.extra)
    if "originalInstances" not in extra:
        try:
            original = auto_scaling.describe_group(source)
            created = auto_scaling.create_copy(original, copy)
        except AutoScalingError as error:
            code = ErrorCode.AUTO_SCALING_CONFIGURATION
            fail(session, deployment, code, now, str(error), settings, message=str(error))
            return
        extra["originalInstances"] = list(original.instance_ids)
        record_progress(deployment, replace(progress, extra=extra))
        _note(
            deployment,
            f"Auto Scaling group {copy} was {'created' if created else 'found'} as the copy of {source} with "
            f"{len(original.healthy_instance_ids)} instances: each takes part once registered under its EC2 "
            "instance id.",
        )
    wait_until = float(extra.get("waitUntil", now))
    try:
        capacity = auto_scaling.in_service_instances(copy)
    except AutoScalingError as error:  # looked at again until the wait ends
        if now >= wait_until:
            code = ErrorCode.AUTO_SCALING_CONFIGURATION
            fail(session, deployment, code, now, str(error), settings, message=str(error))
        else:
            deployment.engine_due_at = min(wait_until, now + settings.engine.provision_poll_interval)
        return
    registered = set(registered_names(session, capacity.in_service))
    missing = [name for name in capacity.in_service if name not in registered]
    if capacity.in_service and len(capacity.in_service) >= capacity.desired and not missing:
        _provisioned(
            session, deployment, sorted(capacity.in_service), extra["originalInstances"], now, settings
        )
        return
    if now < wait_until:
        deployment.engine_due_at = min(wait_until, now + settings.engine.provision_poll_interval)
        return
    minutes = settings.engine.provision_wait / 60.0
    message = (
        f"The instances of Auto Scaling group {copy} were not all in service and registered within "
        f"{minutes:g} minutes ({len(capacity.in_service)} of {capacity.desired} in service"
        + (f"; not registered: {', '.join(missing)}" if missing else "")
        + "): an instance takes part once its boot script registers it under its EC2 instance id "
        "(opendeploy register, or aws deploy register-on-premises-instance) and starts its agent."
    )
    fail(session, deployment, ErrorCode.TIMEOUT, now, message, settings, message=message)


def _provisioned(
    session: Session,
    deployment: Deployment,
    replacements: Sequence[str],
    original_instance_ids: Sequence[str],
    now: float,
    settings: Settings,
) -> None:
    """The copy's instances are the replacement environment; on to the install."""
    group = session.get(DeploymentGroup, deployment.deployment_group_id or "")
    if group is None:
        message = "The deployment group no longer exists."
        fail(session, deployment, ErrorCode.DEPLOYMENT_GROUP_MISSING, now, message, settings)
        return
    chosen = set(replacements)
    originals = sorted(
        {*group_instances(session, group), *registered_names(session, original_instance_ids)} - chosen
    )
    if _add_environments(session, deployment, group, replacements, originals, now, settings):
        record_progress(deployment, Progress(phase=INSTALL))
        _install(session, deployment, None, now, settings)


def _adopt_copy(session: Session, deployment: Deployment, settings: Settings, *, terminate: bool) -> None:
    """After success: the deployment group names the copy instead of the original Auto Scaling group,
    which is force-deleted (its instances terminated) with TERMINATE."""
    names = progress_of(deployment).fixed.get(AUTO_SCALING)
    if not names:
        return
    source, copy = names["source"], names["copy"]
    group = session.get(DeploymentGroup, deployment.deployment_group_id or "")
    if group is not None:
        kept = [name for name in auto_scaling.names(group.auto_scaling_groups) if name not in (source, copy)]
        group.auto_scaling_groups = [*kept, copy]
    if not terminate:
        return
    try:
        auto_scaling.delete_group(source)
    except AutoScalingError as error:
        _note(deployment, f"The original Auto Scaling group could not be deleted: {error}")
        return
    _note(deployment, f"The original Auto Scaling group {source} was deleted (its instances terminated).")


def _begin(session: Session, deployment: Deployment, now: float, settings: Settings, phase: str) -> None:
    deployment.status = DeploymentStatus.IN_PROGRESS
    deployment.start_time = now
    deployment.updated_at = now
    notifying.deployment_changed_state(session, deployment, DeploymentStatus.CREATED, now, settings)
    record_progress(deployment, Progress(phase=phase))


def _rolled_back(session: Session, deployment: Deployment) -> Deployment | None:
    """The blue/green deployment ``deployment`` rolls back, if it is such a rollback."""
    if deployment.creator != DeploymentCreator.CODEDEPLOY_ROLLBACK:
        return None
    triggering = (
        session.get(Deployment, deployment.rollback_triggering_deployment_id)
        if deployment.rollback_triggering_deployment_id
        else None
    )
    if triggering is None or not triggering.style.blue_green:
        return None
    return triggering


def _start_rollback(
    session: Session, deployment: Deployment, rolled_back: Deployment, now: float, settings: Settings
) -> None:
    """Reroute back: the rolled-back deployment's original instances allow traffic again, then the
    replacement instances it let traffic reach block it."""
    rows = session.execute(
        select(DeploymentTarget.id, DeploymentTarget.target_id, DeploymentTarget.instance_label).where(
            DeploymentTarget.deployment_id == rolled_back.id
        )
    ).all()
    originals = [row.target_id for row in rows if row.instance_label == BLUE]
    allowed = set(
        session.scalars(
            select(DeploymentTarget.target_id)
            .join(LifecycleEventRecord, LifecycleEventRecord.deployment_target_id == DeploymentTarget.id)
            .where(
                DeploymentTarget.deployment_id == rolled_back.id,
                DeploymentTarget.instance_label == GREEN,
                LifecycleEventRecord.name == ALLOW_TRAFFIC,
                LifecycleEventRecord.start_time.is_not(None),
            )
        )
    )
    replacements = [row.target_id for row in rows if row.target_id in allowed]
    for names, role, label in ((originals, ORIGINAL, BLUE), (replacements, REPLACEMENT, GREEN)):
        if names:
            events = server_events(deployment_type=BLUE_GREEN, role=role, rollback=True)
            add_targets(session, deployment, names, now, settings, events=events, label=label)
    _begin(session, deployment, now, settings, REROUTE_BACK)
    _start_all(session, deployment, BLUE, now, settings)
    _after_start(session, deployment, now, settings)


def _after_start(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    """Take the steps that need no instance to move first (an environment with no instance)."""
    if deployment.status == DeploymentStatus.IN_PROGRESS:
        advance(session, deployment, now, settings)


def lifecycle_events(deployment: Deployment) -> tuple[LifecycleEvent, ...]:
    """A replacement instance's events (the longest list, for the event timeouts)."""
    rollback = deployment.creator == DeploymentCreator.CODEDEPLOY_ROLLBACK
    return server_events(deployment_type=BLUE_GREEN, role=REPLACEMENT, rollback=rollback)


# --- the steps --------------------------------------------------------------------------------------------


def advance(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    """Something changed or a wait ended: take the step the deployment's phase is at."""
    phase = progress_of(deployment).phase
    if phase == PROVISION:
        _provision(session, deployment, now, settings)
    elif phase == INSTALL:
        _install(session, deployment, None, now, settings)
    elif phase == READY_WAIT:
        _ready_wait(session, deployment, now, settings)
    elif phase == REROUTE:
        _reroute(session, deployment, None, now, settings)
    elif phase == SHIFT:
        _shift(session, deployment, None, now, settings)
    elif phase == BLOCK_ORIGINAL:
        if _environment_done(session, deployment, BLUE, now, settings, _blocked_message):
            _originals_blocked(session, deployment, now, settings)
    elif phase == TERMINATION_WAIT:
        _termination_wait(session, deployment, now, settings)
    elif phase == REROUTE_BACK:
        if _environment_done(session, deployment, BLUE, now, settings, _allowed_again_message):
            blue, green = _names(session, deployment, BLUE), _names(session, deployment, GREEN)
            with contextlib.suppress(TrafficMisconfigured):  # a load balancer without weights
                traffic.shift_traffic(session, deployment, green, blue, 100.0, settings)
            record_progress(deployment, Progress(phase=BLOCK_REPLACEMENT))
            _start_all(session, deployment, GREEN, now, settings)
            advance(session, deployment, now, settings)
    elif phase == BLOCK_REPLACEMENT and _environment_done(
        session, deployment, GREEN, now, settings, _blocked_message
    ):
        _even_weights(session, deployment, settings)
        end_deployment(session, deployment, DeploymentStatus.SUCCEEDED, now, settings)


def _fleet(session: Session, deployment: Deployment, label: str) -> list[Any]:
    return list(
        session.execute(
            select(
                DeploymentTarget.id,
                DeploymentTarget.target_id,
                DeploymentTarget.status,
                DeploymentTarget.last_updated_at,
                DeploymentTarget.instance_health,
                DeploymentTarget.revision_health,
            ).where(DeploymentTarget.deployment_id == deployment.id, DeploymentTarget.instance_label == label)
        ).all()
    )


def _decide(
    session: Session,
    deployment: Deployment,
    ready_as: TargetStatus,
    pace: MinimumHealthyHosts,
    now: float,
) -> tuple[DispatchDecision, dict[str, int]]:
    """``next_dispatch`` over the replacement environment, its Ready instances counted as ``ready_as``;
    and the target ids by instance name."""
    rows = _fleet(session, deployment, GREEN)
    fleet = [
        FleetTarget(
            row.target_id,
            ready_as if row.status == TargetStatus.READY else TargetStatus(row.status),
            HealthStatus(row.instance_health, row.revision_health)
            if row.instance_health and row.revision_health
            else NEW_INSTANCE,
        )
        for row in rows
    ]
    return next_dispatch(fleet, pace, now=now), {row.target_id: row.id for row in rows}


def _install(
    session: Session,
    deployment: Deployment,
    config: configs.DeploymentConfig | None,
    now: float,
    settings: Settings,
) -> None:
    """Install on the replacement environment as fast as minimum healthy hosts allow; once every
    replacement instance is Ready (or failed within what the configuration tolerates), on to the wait."""
    config = config or current_config(session, deployment, now, settings)
    if config is None:
        return
    # A Ready instance has done all it can before the reroute: for the install it has succeeded.
    decision, ids = _decide(session, deployment, TargetStatus.SUCCEEDED, config.minimum_healthy_hosts, now)
    if decision.start:
        start_targets(session, deployment, [ids[name] for name in decision.start], now, settings)
    if decision.status == DeploymentStatus.FAILED:
        fail(
            session,
            deployment,
            decision.error_code or ErrorCode.HEALTH_CONSTRAINTS,
            now,
            decision.message,
            settings,
        )
    elif decision.status == DeploymentStatus.SUCCEEDED:
        _ready(session, deployment, now, settings)


def _ready(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    """The replacement environment is installed: wait for ContinueDeployment, or reroute at once."""
    options = deployment.blue_green
    if (
        options.ready_action == ReadyAction.STOP_DEPLOYMENT
        and deployment.ready_wait_continue_requested_at is None
    ):
        wait_until = now + options.ready_wait_minutes * 60.0
        record_progress(deployment, Progress(phase=READY_WAIT, extra={"waitUntil": wait_until}))
        deployment.status = DeploymentStatus.READY
        deployment.updated_at = now
        deployment.engine_due_at = wait_until
        notifying.deployment_changed_state(session, deployment, DeploymentStatus.IN_PROGRESS, now, settings)
        return
    _begin_reroute(session, deployment, now, settings)


def _ready_wait(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    wait_until = float(progress_of(deployment).extra.get("waitUntil", now))
    if deployment.ready_wait_continue_requested_at is not None:
        deployment.status = DeploymentStatus.IN_PROGRESS
        deployment.updated_at = now
        _begin_reroute(session, deployment, now, settings)
    elif now >= wait_until:
        minutes = deployment.blue_green.ready_wait_minutes
        end_deployment(
            session,
            deployment,
            DeploymentStatus.STOPPED,
            now,
            settings,
            status_messages=[
                f"Traffic was not rerouted to the replacement instances within the wait time ({minutes} "
                f"minute{'' if minutes == 1 else 's'}; ContinueDeployment reroutes it): the deployment "
                "stopped and traffic still goes to the original instances."
            ],
            cause=target_progress.CAUSE_STOPPED,
        )
    else:
        deployment.engine_due_at = wait_until


def _begin_reroute(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    """Before any replacement instance is let in: with a canary or linear configuration the replacement
    environment's weight is 0 (it is health-checked, not sent requests, until the first step); otherwise
    both environments weigh the same (an earlier shift may have left either at 0)."""
    config = current_config(session, deployment, now, settings)
    if config is None:
        return
    blue, green = _names(session, deployment, BLUE), _names(session, deployment, GREEN)
    try:
        if _routing(config) is not None:
            traffic.shift_traffic(session, deployment, blue, green, 0.0, settings)
        else:
            traffic.even_weights(session, deployment, blue, green, settings)
    except TrafficError as error:
        _fail_giving_traffic_back(session, deployment, now, settings, str(error))
        return
    record_progress(deployment, Progress(phase=REROUTE))
    _reroute(session, deployment, config, now, settings)


def _reroute(
    session: Session,
    deployment: Deployment,
    config: configs.DeploymentConfig | None,
    now: float,
    settings: Settings,
) -> None:
    """Let traffic reach the Ready replacement instances, as many at a time as the configuration allows;
    once they all serve, take the original instances out."""
    config = config or current_config(session, deployment, now, settings)
    if config is None:
        return
    routing = _routing(config)
    # With a canary or linear shift the weights pace the traffic: every replacement is let in at once.
    pace = ALL_AT_ONCE if routing is not None else config.minimum_healthy_hosts
    # A Ready instance is what the reroute is to start.
    decision, ids = _decide(session, deployment, TargetStatus.PENDING, pace, now)
    if decision.start:
        _resume_targets(session, deployment, [ids[name] for name in decision.start], now, settings)
    if decision.status == DeploymentStatus.FAILED:
        code = decision.error_code or ErrorCode.HEALTH_CONSTRAINTS
        _fail_giving_traffic_back(session, deployment, now, settings, decision.message, code)
    elif decision.status == DeploymentStatus.SUCCEEDED and routing is not None:
        # A ContinueDeployment that ended a ready wait is not a promotion: remember it to tell them apart.
        extra = {"shiftStartedAt": now, "continuedBefore": deployment.ready_wait_continue_requested_at}
        record_progress(deployment, Progress(phase=SHIFT, extra=extra))
        _shift(session, deployment, config, now, settings)
    elif decision.status == DeploymentStatus.SUCCEEDED:
        _block_originals(session, deployment, now, settings)


def _block_originals(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    """After the reroute the originals are taken out all at once, whatever the configuration (L15587)."""
    record_progress(deployment, Progress(phase=BLOCK_ORIGINAL))
    _start_all(session, deployment, BLUE, now, settings)
    advance(session, deployment, now, settings)


def _shift(
    session: Session,
    deployment: Deployment,
    config: configs.DeploymentConfig | None,
    now: float,
    settings: Settings,
) -> None:
    """One look at a canary or linear shift: apply the step in force (again: a load balancer's reload
    forgets weights), say where it is, and come back at the next step or to re-apply; at 100 %, on to
    taking the originals out. ContinueDeployment promotes: 100 % now."""
    config = config or current_config(session, deployment, now, settings)
    if config is None:
        return
    routing = _routing(config)
    extra = dict(progress_of(deployment).extra)
    started = float(extra.get("shiftStartedAt", now))
    requested = deployment.ready_wait_continue_requested_at
    promoted = requested is not None and requested != extra.get("continuedBefore")
    state = promote(routing) if routing is None or promoted else shift_at(routing, started, now)
    blue = _names(session, deployment, BLUE)
    green = _names(session, deployment, GREEN, TargetStatus.SUCCEEDED)
    try:
        traffic.shift_traffic(session, deployment, blue, green, float(state.replacement_percent), settings)
    except TrafficMisconfigured as error:
        _fail_giving_traffic_back(session, deployment, now, settings, str(error))
        return
    except TrafficError as error:  # unreachable for now: the step in force stays; look again soon
        deployment.engine_due_at = now + settings.traffic.poll_interval
        _say(deployment, f"{_shift_message(state, promoted)} (a load balancer could not be reached: {error})")
        return
    percent = float(state.replacement_percent)
    if progress_of(deployment).traffic_percent != percent:  # a new step: the alarms are read at once
        alarm_monitoring.check_soon(session, deployment.id, now)
    record_progress(deployment, Progress(phase=SHIFT, step=state.step, traffic_percent=percent, extra=extra))
    _say(deployment, _shift_message(state, promoted))
    if state.next_step_at is None:
        _block_originals(session, deployment, now, settings)
        return
    deployment.engine_due_at = min(state.next_step_at, now + settings.traffic.hold_interval)


TRAFFIC_MESSAGE = "Traffic: "


def _shift_message(state: ShiftState, promoted: bool) -> str:
    """Where the shift is, for ``deploymentStatusMessages`` (aws deploy get-deployment, opendeploy watch)."""
    share = state.replacement_percent
    text = f"{TRAFFIC_MESSAGE}{share}% to the replacement instances, {100 - share}% to the original instances"
    if state.next_step_at is not None:
        when = datetime.fromtimestamp(state.next_step_at, UTC).isoformat(timespec="seconds")
        text += f"; step {state.step + 1}, the next at {when} (ContinueDeployment shifts the rest now)"
    elif promoted:
        text += " (promoted by ContinueDeployment)"
    return text + "."


def _say(deployment: Deployment, message: str) -> None:
    """Keep one line saying where the shift is among the deployment's status messages."""
    kept = [m for m in deployment.deployment_status_messages or [] if not m.startswith(TRAFFIC_MESSAGE)]
    deployment.deployment_status_messages = [*kept, message]


def _routing(config: configs.DeploymentConfig) -> configs.TrafficRouting | None:
    """The configuration's canary or linear shift, if it has one (all at once is no shift by steps)."""
    routing = config.traffic_routing
    if routing is None or routing.type is configs.TrafficRoutingType.ALL_AT_ONCE:
        return None
    return routing


def _names(
    session: Session, deployment: Deployment, label: str, status: TargetStatus | None = None
) -> list[str]:
    rows = _fleet(session, deployment, label)
    return [row.target_id for row in rows if status is None or row.status == status]


def _even_weights(session: Session, deployment: Deployment, settings: Settings) -> None:
    blue, green = _names(session, deployment, BLUE), _names(session, deployment, GREEN)
    try:
        traffic.even_weights(session, deployment, blue, green, settings)
    except TrafficError as error:
        _say_problem(deployment, f"The load balancers' weights could not be evened out again: {error}")


def _say_problem(deployment: Deployment, message: str) -> None:
    deployment.deployment_status_messages = [*(deployment.deployment_status_messages or []), message]


_note = _say_problem  # a line among the deployment's status messages that is no problem


def _give_traffic_back(session: Session, deployment: Deployment, settings: Settings) -> None:
    """All new requests to the original instances, the originals taken out let in again, the replacements
    let in taken out, then even weights again (the side now out gets nothing anyway)."""
    blue, green = _names(session, deployment, BLUE), _names(session, deployment, GREEN)
    try:
        traffic.shift_traffic(session, deployment, blue, green, 0.0, settings)
    except TrafficMisconfigured:
        pass  # a load balancer without weights: its targets' states alone decide
    except TrafficError as error:
        _say_problem(deployment, f"Traffic could not be shifted back to the original instances: {error}")
    for problem in traffic.restore_original_environment(session, deployment, settings):
        _say_problem(deployment, problem)
    _even_weights(session, deployment, settings)


def _fail_giving_traffic_back(
    session: Session,
    deployment: Deployment,
    now: float,
    settings: Settings,
    detail: str | None,
    code: ErrorCode = ErrorCode.ELASTIC_LOAD_BALANCING_INVALID,
) -> None:
    """The reroute cannot go on: traffic goes back to the original environment, then the deployment fails
    (a replacement that never became healthy leaves the traffic where it was)."""
    _give_traffic_back(session, deployment, settings)
    fail(session, deployment, code, now, detail, settings)


def _resume_targets(
    session: Session, deployment: Deployment, target_ids: Sequence[int], now: float, settings: Settings
) -> None:
    """Ready replacement instances go on with their next event (BeforeAllowTraffic)."""
    notifying.instances_changed_state(
        session,
        deployment,
        [(t, TargetStatus.READY, TargetStatus.IN_PROGRESS) for t in target_ids],
        now,
        settings,
    )
    session.execute(
        update(DeploymentTarget)
        .where(DeploymentTarget.id.in_(list(target_ids)))
        .values(status=TargetStatus.IN_PROGRESS, last_updated_at=now)
    )
    starts: list[EventStart] = []
    for target in session.scalars(select(DeploymentTarget).where(DeploymentTarget.id.in_(list(target_ids)))):
        following = session.scalar(
            select(LifecycleEventRecord)
            .where(
                LifecycleEventRecord.deployment_target_id == target.id,
                LifecycleEventRecord.status == LifecycleEventStatus.PENDING,
            )
            .order_by(LifecycleEventRecord.position)
            .limit(1)
        )
        if following is not None:
            host = target.target_arn or target.target_id
            starts.append(EventStart(target.id, host, following.id, following.name, following.position))
    target_progress.start_events(
        session, deployment.id, deployment.compute_platform, starts, now, settings.engine
    )


def _start_all(session: Session, deployment: Deployment, label: str, now: float, settings: Settings) -> None:
    """Every instance of one environment that has not started starts its events now."""
    waiting = [row.id for row in _fleet(session, deployment, label) if row.status == TargetStatus.PENDING]
    if waiting:
        start_targets(session, deployment, waiting, now, settings)


def _blocked_message(names: Sequence[str]) -> str:
    return (
        f"Original instances failed to leave their load balancers ({', '.join(names)}): one original "
        "instance failing to deregister fails a blue/green deployment."
    )


def _allowed_again_message(names: Sequence[str]) -> str:
    return f"Traffic could not be rerouted back to the original instances {', '.join(names)}."


def _environment_done(
    session: Session,
    deployment: Deployment,
    label: str,
    now: float,
    settings: Settings,
    failure: Any,
) -> bool:
    """True once every instance of the environment has finished and none failed; a failure fails the
    deployment (every instance of an environment the traffic moves between must follow)."""
    rows = _fleet(session, deployment, label)
    failed = [row.target_id for row in rows if row.status == TargetStatus.FAILED]
    if failed:
        fail(session, deployment, ErrorCode.HEALTH_CONSTRAINTS, now, failure(failed), settings)
        return False
    return all(row.status in _DONE for row in rows)


def _originals_blocked(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    if deployment.phase == BLOCK_ORIGINAL:
        _even_weights(session, deployment, settings)
    options = deployment.blue_green
    if options.terminate_action == InstanceAction.KEEP_ALIVE:
        _adopt_copy(session, deployment, settings, terminate=False)
        end_deployment(session, deployment, DeploymentStatus.SUCCEEDED, now, settings)
        return
    deployment.instance_termination_wait_time_started = True
    wait_until = now + options.termination_wait_minutes * 60.0
    record_progress(deployment, Progress(phase=TERMINATION_WAIT, extra={"waitUntil": wait_until}))
    _termination_wait(session, deployment, now, settings)


def _termination_wait(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    wait_until = float(progress_of(deployment).extra.get("waitUntil", now))
    if deployment.termination_wait_skip_requested_at is None and now < wait_until:
        deployment.engine_due_at = wait_until
        return
    originals = [
        row.target_id for row in _fleet(session, deployment, BLUE) if row.status == TargetStatus.SUCCEEDED
    ]
    if originals:
        session.execute(
            update(OnPremisesInstance)
            .where(OnPremisesInstance.name.in_(originals), OnPremisesInstance.deregister_time.is_(None))
            .values(deregister_time=now)
        )
        before = deployment.deployment_status_messages or []
        deployment.deployment_status_messages = [
            *before,
            f"The original instances were terminated (deregistered): {', '.join(originals)}.",
        ]
    _adopt_copy(session, deployment, settings, terminate=True)
    end_deployment(session, deployment, DeploymentStatus.SUCCEEDED, now, settings)


# --- the strategy -----------------------------------------------------------------------------------------


class BlueGreenStrategy:
    """``start`` / ``advance`` above as the engine's strategy interface."""

    deploys_to_new_instances = False

    def lifecycle_events(self, deployment: Deployment) -> tuple[LifecycleEvent, ...]:
        return lifecycle_events(deployment)

    def start(self, session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
        start(session, deployment, now, settings)

    def advance(self, session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
        if deployment.status in (DeploymentStatus.IN_PROGRESS, DeploymentStatus.READY):
            advance(session, deployment, now, settings)

    def drain(self, session: Session, deployment: Deployment, now: float, settings: Settings) -> bool:
        traffic.stop_traffic_events(session, deployment.id, now, settings)
        drained = stop.drain_host_commands(session, deployment.id, now)
        if drained and not _rolled_back(session, deployment):
            _give_traffic_back(session, deployment, settings)
        return drained


BLUE_GREEN_STRATEGY = register(
    BlueGreenStrategy(),
    StrategyKey(configs.ComputePlatform.SERVER, DeploymentType.BLUE_GREEN, traffic_control=True),
    StrategyKey(configs.ComputePlatform.SERVER, DeploymentType.BLUE_GREEN, traffic_control=False),
)

"""The load-balancer runner: BlockTraffic and AllowTraffic, which the server runs itself through the
deployment group's load balancers (the guide reserves them: no agent or script runs them).

Starting either event records it InProgress and schedules a ``traffic_step`` timer due at once. Each
firing of that timer is one idempotent step:

1. the first time, ask every load balancer to block (HAProxy: drain; ELB: deregister) or allow (HAProxy:
   ready after a forced health recheck; ELB: register) the instance;
2. look at what every load balancer reports (``observe``) and let ``domain.traffic_control`` decide:
   done (the event Succeeded and the instance moves on: ``target_progress``), take a drained instance
   fully out (HAProxy maintenance) and look again, fail the instance (not healthy within the health
   wait), or look again after the poll interval.

Calls are repeated after a crash or an HAProxy reload harmlessly: the wanted state is simply applied
again. A load balancer found to have undone it (a reload forgets HAProxy's runtime state) is asked again
at the next look, and an instance BlockTraffic took out is kept out until its AllowTraffic starts
(``traffic_hold`` timers), so no request reaches it in the middle of its install. A load balancer that
cannot be reached is looked at again each poll until the step's own limit (the drain limit, or the
health wait) has passed; then the instance fails with its error. What no retry can help (no such
backend, server or target group: ``TrafficMisconfigured``) fails it at once. The instance is known to
the load balancers by its ``opendeploy:lb-target`` tag, else its name (``integrations.load_balancers``).

An ELBv2 target group pair (server blue/green) has roles: which of its groups holds the original
environment. The weights alone cannot say it in the middle of a shift, so it is decided once, when a
blue/green deployment starts (``orient_target_group_pairs``: the group the listener favours then, or for
a rollback the reverse of the rolled-back deployment's), kept in the deployment's progress
(``Progress.fixed``) and applied to the pair for every later call of that deployment, after a restart
too (``deployment_load_balancers``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from opendeploy.appspec.lifecycle_events import ALLOW_TRAFFIC, BLOCK_TRAFFIC, EventRunner
from opendeploy.domain.statuses import LifecycleErrorCode, LifecycleEventStatus, TargetStatus
from opendeploy.domain.traffic_control import (
    TargetObservation,
    TrafficAction,
    TrafficDecision,
    allow_progress,
    block_progress,
    expected_allow,
    expected_block,
    reverted,
)
from opendeploy.engine import target_progress
from opendeploy.engine.progress import progress_of, record_progress
from opendeploy.engine.runners import EventStart, register
from opendeploy.engine.timers import schedule, timer_kind
from opendeploy.engine.wakeups import wake_engine_on_commit
from opendeploy.integrations.elb import TargetGroupPair
from opendeploy.integrations.load_balancers import load_balancers_for, target_name
from opendeploy.integrations.traffic import LoadBalancer, TrafficError, TrafficMisconfigured
from opendeploy.settings import EngineSettings, Settings
from opendeploy.store.models import (
    Deployment,
    DeploymentTarget,
    LifecycleEventRecord,
    OnPremisesInstanceTag,
    Timer,
)

log = logging.getLogger(__name__)

TRAFFIC_STEP = "traffic_step"
TRAFFIC_HOLD = "traffic_hold"
TRAFFIC_EVENTS = (BLOCK_TRAFFIC, ALLOW_TRAFFIC)


class TrafficRunner:
    """Starts BlockTraffic / AllowTraffic events: InProgress now, the work in ``traffic_step`` timers."""

    def start(
        self,
        session: Session,
        deployment_id: str,
        events: Sequence[EventStart],
        now: float,
        settings: EngineSettings,
    ) -> None:
        for event in events:
            started = session.execute(
                update(LifecycleEventRecord)
                .where(
                    LifecycleEventRecord.id == event.event_id,
                    LifecycleEventRecord.status == LifecycleEventStatus.PENDING,
                )
                .values(status=LifecycleEventStatus.IN_PROGRESS, start_time=now)
            ).rowcount
            if not started:
                continue
            target_progress.touch_target(session, event.target_id, now)
            schedule(
                session,
                TRAFFIC_STEP,
                now,
                deployment_id=deployment_id,
                payload={"event": event.event_id, "begun": False},
                now=now,
            )
            # An agent's completion starts these (in the command service's transaction, not the
            # engine's): the engine must look now, not at its next sweep.
            wake_engine_on_commit(session)


TRAFFIC_RUNNER = register(EventRunner.LOAD_BALANCER, TrafficRunner())


def instance_tags(session: Session, instance_name: str) -> dict[str, str]:
    rows = session.execute(
        select(OnPremisesInstanceTag.key, OnPremisesInstanceTag.value).where(
            OnPremisesInstanceTag.instance_name == instance_name
        )
    )
    return {key: value or "" for key, value in rows}


PAIR_ORIGINALS = "targetGroupPairOriginals"
"""``Progress.fixed`` key: {pair name as the group lists it: the name of its original group}."""


def deployment_load_balancers(deployment: Deployment, settings: Settings) -> dict[str, LoadBalancer]:
    """The deployment's load balancers by name, each target group pair with the original group its
    deployment recorded (``TrafficError`` if one is unusable)."""
    balancers = (settings.traffic.load_balancers or load_balancers_for)(
        deployment.load_balancer, settings.traffic
    )
    originals = progress_of(deployment).fixed.get(PAIR_ORIGINALS) or {}
    return {
        name: balancer.with_original(originals[name])
        if isinstance(balancer, TargetGroupPair) and name in originals
        else balancer
        for name, balancer in balancers.items()
    }


def orient_target_group_pairs(
    deployment: Deployment, rolled_back: Deployment | None, settings: Settings
) -> None:
    """Decide and record, when a blue/green deployment starts, which group of each of its target group
    pairs is the original one: the one the production listener sends most traffic to now, or, for the
    rollback of ``rolled_back``, the group that deployment moved the traffic to (its replacement group:
    the rollback reroutes back). ``TrafficError`` if a listener cannot be read."""
    balancers = (settings.traffic.load_balancers or load_balancers_for)(
        deployment.load_balancer, settings.traffic
    )
    pairs = {name: b for name, b in balancers.items() if isinstance(b, TargetGroupPair)}
    if not pairs:
        return
    before = (progress_of(rolled_back).fixed.get(PAIR_ORIGINALS) if rolled_back is not None else None) or {}
    originals = {
        name: pair.with_original(before[name]).replacement.name
        if name in before
        else pair.oriented().original.name
        for name, pair in pairs.items()
    }
    progress = progress_of(deployment)
    record_progress(deployment, replace(progress, fixed={**progress.fixed, PAIR_ORIGINALS: originals}))


def resolve(
    session: Session, deployment: Deployment, instance_name: str, settings: Settings
) -> tuple[dict[str, LoadBalancer], str]:
    """The deployment's load balancers and the instance's name in them (``TrafficError`` if unusable)."""
    balancers = deployment_load_balancers(deployment, settings)
    return balancers, target_name(instance_name, instance_tags(session, instance_name), settings.traffic)


@timer_kind(TRAFFIC_STEP)
def traffic_step(session: Session, timer: Timer, now: float, settings: Settings) -> None:
    """One look at the load balancers for a running BlockTraffic or AllowTraffic event."""
    payload = dict(timer.payload or {})
    event = session.get(LifecycleEventRecord, payload.get("event"))
    if event is None or event.status != LifecycleEventStatus.IN_PROGRESS:
        session.execute(delete(Timer).where(Timer.id == timer.id))
        return
    target = session.get(DeploymentTarget, event.deployment_target_id)
    deployment = session.get(Deployment, target.deployment_id) if target is not None else None
    if target is None or deployment is None:
        session.execute(delete(Timer).where(Timer.id == timer.id))
        return
    blocking = event.name == BLOCK_TRAFFIC
    started = event.start_time or now
    # BlockTraffic: the longest drain limit of the load balancers (read when it began); AllowTraffic:
    # the health wait.
    limit = float(payload.get("drain_limit", 0.0)) if blocking else settings.traffic.health_wait
    try:
        balancers, name = resolve(session, deployment, target.target_id, settings)
        ask = {n: (b.block if blocking else b.allow) for n, b in balancers.items()}
        if not payload.get("begun"):
            if blocking:
                limit = max((b.timing().drain_limit for b in balancers.values()), default=0.0)
                payload["drain_limit"] = limit
            for balancer_name in balancers:
                ask[balancer_name](name)
            payload["begun"] = True
        else:  # asked before: a load balancer that forgot it (an HAProxy reload) is asked again
            undone = reverted(_observe(balancers, name), blocking)
            for balancer_name in undone:
                log.warning(
                    "%s: %s undid %s of %s; asking again", event.name, balancer_name, event.name, name
                )
                ask[balancer_name](name)
        decision = _decide(_observe(balancers, name), blocking, started, now, limit, target.target_id)
        if decision.action is TrafficAction.FINISH_BLOCK:
            for balancer_name in decision.load_balancers:
                balancers[balancer_name].finish_block(name)
            decision = _decide(_observe(balancers, name), blocking, started, now, limit, target.target_id)
    except TrafficError as error:
        if not isinstance(error, TrafficMisconfigured) and now - started < limit:
            log.warning("%s of %s: %s; looking again", event.name, target.target_id, error)
            payload["error"] = str(error)
            _again(session, timer, payload, now + settings.traffic.poll_interval)
            return
        decision = TrafficDecision(TrafficAction.FAILED, message=str(error))
    if decision.action in (TrafficAction.WAIT, TrafficAction.FINISH_BLOCK):
        payload.pop("error", None)
        _again(session, timer, payload, now + settings.traffic.poll_interval)
        return
    session.execute(delete(Timer).where(Timer.id == timer.id))
    succeeded = decision.action is TrafficAction.SUCCEEDED
    event_ends(session, event, succeeded, decision.message, now)
    if succeeded and blocking:  # keep it out while its new revision is installed (``traffic_hold``)
        schedule(
            session,
            TRAFFIC_HOLD,
            now + settings.traffic.hold_interval,
            deployment_id=deployment.id,
            payload={"target": target.id},
            now=now,
        )
    target_progress.event_ended(
        session,
        deployment_id=deployment.id,
        target_id=target.id,
        event_name=event.name,
        position=event.position,
        succeeded=succeeded,
        cause=target_progress.CAUSE_EVENT,
        now=now,
        settings=settings.engine,
    )


def _observe(balancers: Mapping[str, LoadBalancer], name: str) -> dict[str, TargetObservation]:
    return {balancer_name: balancer.observe([name])[name] for balancer_name, balancer in balancers.items()}


@timer_kind(TRAFFIC_HOLD)
def traffic_hold(session: Session, timer: Timer, now: float, settings: Settings) -> None:
    """An instance BlockTraffic took out stays out until its AllowTraffic starts: a load balancer that
    put it back (an HAProxy reload forgets runtime state) is asked to take it out again, so no request
    reaches an instance in the middle of its install."""
    target = session.get(DeploymentTarget, (timer.payload or {}).get("target"))
    allow = (
        session.scalar(
            select(LifecycleEventRecord).where(
                LifecycleEventRecord.deployment_target_id == target.id,
                LifecycleEventRecord.name == ALLOW_TRAFFIC,
            )
        )
        if target is not None
        else None
    )
    deployment = session.get(Deployment, target.deployment_id) if target is not None else None
    if (
        target is None
        or deployment is None
        or target.status != TargetStatus.IN_PROGRESS
        or allow is None
        or allow.status != LifecycleEventStatus.PENDING
    ):
        session.execute(delete(Timer).where(Timer.id == timer.id))
        return
    try:
        balancers, name = resolve(session, deployment, target.target_id, settings)
        for balancer_name in reverted(_observe(balancers, name), blocking=True):
            log.warning(
                "%s put %s back in rotation during its deployment; taking it out again", balancer_name, name
            )
            balancers[balancer_name].block(name)
            balancers[balancer_name].finish_block(name)
    except TrafficError as error:
        log.warning("keeping %s out of its load balancers: %s", target.target_id, error)
    _again(session, timer, dict(timer.payload or {}), now + settings.traffic.hold_interval)


def _decide(
    seen: Mapping[str, TargetObservation],
    blocking: bool,
    started: float,
    now: float,
    limit: float,
    instance: str,
) -> TrafficDecision:
    if blocking:
        return block_progress(seen, started, now, limit)
    return allow_progress(seen, started, now, limit, instance)


def _again(session: Session, timer: Timer, payload: dict[str, object], due_at: float) -> None:
    session.execute(update(Timer).where(Timer.id == timer.id).values(due_at=due_at, payload=payload))


def event_ends(
    session: Session, event: LifecycleEventRecord, succeeded: bool, message: str, now: float
) -> None:
    """Record the end of a traffic event (the caller moves its target on)."""
    event.status = LifecycleEventStatus.SUCCEEDED if succeeded else LifecycleEventStatus.FAILED
    event.end_time = now
    event.diagnostics_error_code = (
        LifecycleErrorCode.SUCCESS if succeeded else LifecycleErrorCode.UNKNOWN_ERROR
    )
    event.diagnostics_message = message or ("Succeeded" if succeeded else "Failed")
    session.flush()


# --- what the in-place strategy asks of traffic control ----------------------------------------------


def traffic_plan(deployment: Deployment, settings: Settings) -> str:
    """What the deployment's traffic steps should cost, said when it starts (``deploymentStatusMessages``;
    ``opendeploy deploy`` and ``watch`` show it). Raises ``TrafficError`` if a load balancer cannot be
    used (the deployment then fails before touching any instance)."""
    balancers = deployment_load_balancers(deployment, settings)
    if not balancers:
        raise TrafficMisconfigured(
            "The deployment group uses traffic control but its loadBalancerInfo names no load balancer."
        )
    timings = [balancer.timing() for balancer in balancers.values()]
    names = ", ".join(balancers)
    return (
        f"Traffic control through {names}: BlockTraffic takes at most {expected_block(timings):g} s per "
        "instance and ends as soon as its connections have (AWS always waits for the deregistration delay, "
        f"300 s by default); AllowTraffic about {expected_allow(timings):g} s (healthy threshold × check "
        "interval + one interval)."
    )


def stop_traffic_events(session: Session, deployment_id: str, now: float, settings: Settings) -> None:
    """A stop: BlockTraffic and AllowTraffic events still running end now (Failed, as stopped), so no
    instance waits for its load balancers after the deployment is told to stop."""
    running = session.scalars(
        select(LifecycleEventRecord)
        .join(DeploymentTarget, DeploymentTarget.id == LifecycleEventRecord.deployment_target_id)
        .where(
            DeploymentTarget.deployment_id == deployment_id,
            LifecycleEventRecord.status == LifecycleEventStatus.IN_PROGRESS,
            LifecycleEventRecord.name.in_(TRAFFIC_EVENTS),
        )
    ).all()
    for event in running:
        event_ends(session, event, False, f"The deployment was stopped during {event.name}.", now)
        target_progress.event_ended(
            session,
            deployment_id=deployment_id,
            target_id=event.deployment_target_id,
            event_name=event.name,
            position=event.position,
            succeeded=False,
            cause=target_progress.CAUSE_STOPPED,
            now=now,
            settings=settings.engine,
        )


def restore_traffic(session: Session, deployment: Deployment, settings: Settings) -> list[str]:
    """A stopped deployment gives back to its load balancers the instances it took out (or was draining
    when the stop came) and that did not fail on their own (an instance whose event failed stays out, as
    after a failed deployment); their health checks decide when they get traffic again. Returns what
    could not be done, for the record."""
    blocked = (
        session.execute(
            select(DeploymentTarget.target_id)
            .join(LifecycleEventRecord, LifecycleEventRecord.deployment_target_id == DeploymentTarget.id)
            .where(
                DeploymentTarget.deployment_id == deployment.id,
                LifecycleEventRecord.name == BLOCK_TRAFFIC,
                LifecycleEventRecord.status.in_(
                    (LifecycleEventStatus.SUCCEEDED, LifecycleEventStatus.FAILED)
                ),
                (DeploymentTarget.failure_cause.is_(None))
                | (DeploymentTarget.failure_cause == target_progress.CAUSE_STOPPED),
            )
        )
        .scalars()
        .all()
    )
    allowed_again = set(
        session.execute(
            select(DeploymentTarget.target_id)
            .join(LifecycleEventRecord, LifecycleEventRecord.deployment_target_id == DeploymentTarget.id)
            .where(
                DeploymentTarget.deployment_id == deployment.id,
                LifecycleEventRecord.name == ALLOW_TRAFFIC,
                LifecycleEventRecord.status == LifecycleEventStatus.SUCCEEDED,
            )
        ).scalars()
    )
    problems: list[str] = []
    for instance in [name for name in blocked if name not in allowed_again]:
        try:
            balancers, name = resolve(session, deployment, instance, settings)
            for balancer in balancers.values():
                balancer.allow(name)
        except TrafficError as error:
            log.warning("could not give %s back to its load balancers: %s", instance, error)
            problems.append(f"{instance} could not be given back to its load balancers: {error}")
    return problems


def restore_original_environment(session: Session, deployment: Deployment, settings: Settings) -> list[str]:
    """A stopped blue/green deployment gives the traffic back to its original environment: original
    (Blue) instances BlockTraffic began to take out are allowed again, replacement (Green) instances
    AllowTraffic began to let in are taken out. Returns what could not be done, for the record."""
    started = (
        select(DeploymentTarget.target_id, DeploymentTarget.instance_label, LifecycleEventRecord.name)
        .join(LifecycleEventRecord, LifecycleEventRecord.deployment_target_id == DeploymentTarget.id)
        .where(
            DeploymentTarget.deployment_id == deployment.id,
            LifecycleEventRecord.name.in_(TRAFFIC_EVENTS),
            LifecycleEventRecord.start_time.is_not(None),
        )
    )
    problems: list[str] = []
    for instance, label, event in session.execute(started).all():
        allow = label == "Blue" and event == BLOCK_TRAFFIC
        block = label == "Green" and event == ALLOW_TRAFFIC
        if not (allow or block):
            continue
        try:
            balancers, name = resolve(session, deployment, instance, settings)
            for balancer in map(_giving_back, balancers.values()):
                if allow:
                    balancer.allow(name)
                else:
                    balancer.block(name)
                    balancer.finish_block(name)
        except TrafficError as error:
            log.warning(
                "could not give the traffic of %s back to the original instances: %s", instance, error
            )
            problems.append(f"{instance} could not be {'allowed' if allow else 'blocked'} again: {error}")
    return problems


def _giving_back(balancer: LoadBalancer) -> LoadBalancer:
    """The load balancer as it gives traffic back to the original environment: a target group pair with
    its roles exchanged, so an original instance is let in again to the original group and a replacement
    leaves the replacement group (after the listener is back on the original group)."""
    return balancer.swapped() if isinstance(balancer, TargetGroupPair) else balancer


# --- weights: what a blue/green strategy asks of traffic control ---------------------------------------


def _target_names(session: Session, instances: Sequence[str], settings: Settings) -> list[str]:
    return [
        target_name(instance, instance_tags(session, instance), settings.traffic) for instance in instances
    ]


def shift_traffic(
    session: Session,
    deployment: Deployment,
    original: Sequence[str],
    replacement: Sequence[str],
    replacement_percent: float,
    settings: Settings,
) -> None:
    """Split new requests between two environments by the load balancers' weights: ``replacement_percent``
    to the ``replacement`` instances, the rest to the ``original`` ones (every load balancer of the
    deployment; idempotent). Raises ``TrafficMisconfigured`` when one cannot split by weight, and
    ``TrafficError`` when one cannot be reached. A target group pair splits between its groups as its
    deployment oriented it (``orient_target_group_pairs``)."""
    _shift(
        session,
        deployment_load_balancers(deployment, settings),
        original,
        replacement,
        replacement_percent,
        settings,
    )


def _shift(
    session: Session,
    balancers: Mapping[str, LoadBalancer],
    original: Sequence[str],
    replacement: Sequence[str],
    replacement_percent: float,
    settings: Settings,
) -> None:
    originals, replacements = (
        _target_names(session, original, settings),
        _target_names(session, replacement, settings),
    )
    for balancer in balancers.values():
        balancer.shift(originals, replacements, replacement_percent)


def check_shift(
    session: Session,
    deployment: Deployment,
    original: Sequence[str],
    replacement: Sequence[str],
    settings: Settings,
) -> None:
    """Raises ``TrafficMisconfigured`` unless every load balancer of the deployment can split traffic by
    weight between the two environments (asks them, changes nothing)."""
    balancers = deployment_load_balancers(deployment, settings)
    originals, replacements = (
        _target_names(session, original, settings),
        _target_names(session, replacement, settings),
    )
    for balancer in balancers.values():
        balancer.observe_shift(originals, replacements)


def even_weights(
    session: Session, deployment: Deployment, one: Sequence[str], other: Sequence[str], settings: Settings
) -> None:
    """Give every instance of both environments the same weight again, where the load balancers have
    weights (a shift leaves one side at 0, and a later deployment letting those instances in must find
    them taking their share); the load balancer's state (in service, drained, out) decides the rest.
    A target group pair is left as it is: its weights are its groups', and the listener already forwards
    to the group that holds the serving environment (one group's targets are all out by then)."""
    if not one and not other:
        return
    weighted = {
        name: balancer
        for name, balancer in deployment_load_balancers(deployment, settings).items()
        if not isinstance(balancer, TargetGroupPair)
    }
    for name, balancer in weighted.items():
        try:
            _shift(
                session, {name: balancer}, one, other, 100.0 * len(other) / (len(one) + len(other)), settings
            )
        except TrafficMisconfigured:
            continue  # no weights (a single target group, a Classic ELB): states alone decide

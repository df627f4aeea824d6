"""Host commands: one lifecycle event of one instance, handed to the instance's agent and reported back.

The agent protocol's flow (agent wire protocol §1.5) as state transitions, each one transaction:

- **issue**: a command is created ``Pending`` for an instance's next lifecycle event (the first when
  dispatch starts the instance, each next one only once the previous succeeded), with a timer: the
  event must be picked up within ``event_start_timeout`` (the guide's 5 minutes) or the instance fails.
- **deliver** (PollHostCommand): the oldest deliverable command goes to the agent; it becomes
  ``InProgress``, its event starts, and the timer becomes the event's run deadline. A command handed
  out but never acknowledged (the answer may have been lost) is handed out again after
  ``redelivery_after``.
- **acknowledge**: answers the command's status, so an agent never runs a command that has finished.
- **complete**: the first completion wins; a duplicate is accepted and changes nothing. A success
  issues the instance's next event (or finishes the instance); a failure fails the instance and skips
  its remaining events — except a failed ApplicationStop (or BeforeBlockTraffic / AfterBlockTraffic,
  the other events run from the last successful revision) when the deployment ignores ApplicationStop
  failures: that event stays Failed and the instance goes on.
- **timers**: an event not picked up in time, or running past its deadline, fails as if the agent had
  reported it.

An instance finishing (or failing) asks the engine to look at its deployment; the engine decides what
runs next (``server_in_place``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from opendeploy.appspec.lifecycle_events import AFTER_BLOCK_TRAFFIC, APPLICATION_STOP, BEFORE_BLOCK_TRAFFIC
from opendeploy.domain.statuses import (
    HostCommandStatus,
    LifecycleErrorCode,
    LifecycleEventStatus,
    TargetStatus,
)
from opendeploy.engine import diagnostics as event_diagnostics
from opendeploy.engine.diagnostics import EventDiagnostics
from opendeploy.engine.wakeups import deployment_changed, wake_host_on_commit
from opendeploy.settings import EngineSettings
from opendeploy.store.models import (
    Deployment,
    DeploymentTarget,
    HostCommand,
    LifecycleEventRecord,
    Timer,
)
from opendeploy.store.models.json_column import JSONValue

EVENT_START_TIMER = "lifecycle_event_start"
EVENT_TIMEOUT_TIMER = "lifecycle_event_timeout"
# Events whose failure ignoreApplicationStopFailures forgives: those run from the last successful
# revision (troubleshooting L26916–26969; decision D-16 of the troubleshooting digest).
STOP_EVENTS = frozenset({APPLICATION_STOP, BEFORE_BLOCK_TRAFFIC, AFTER_BLOCK_TRAFFIC})
FINISHED_COMMAND_STATUSES = frozenset({HostCommandStatus.SUCCEEDED, HostCommandStatus.FAILED})

# Why an instance failed (DeploymentTarget.failure_cause).
CAUSE_EVENT = "event"  # the agent reported the event failed
CAUSE_AGENT = "agent"  # no agent picked the event up in time
CAUSE_TIMEOUT = "timeout"  # the event ran past its deadline
CAUSE_STOPPED = "stopped"  # the deployment was stopped before the instance finished (engine.stop)


class HostCommandNotFound(LookupError):
    """No such host command for this instance (the message says which)."""


@dataclass(frozen=True)
class DeliveredCommand:
    """What PollHostCommand hands an agent."""

    host_command_identifier: str
    deployment_id: str
    command_name: str
    nonce: int | None


def new_host_command_identifier() -> str:
    """An opaque, unguessable identifier, as AWS's are opaque to the agent."""
    return secrets.token_urlsafe(24)


def allowed_run_time(deployment: Deployment, event_name: str, settings: EngineSettings) -> float:
    """How long ``event_name`` may run on one instance of ``deployment``."""
    known = (deployment.event_timeouts or {}).get(event_name)
    return float(known) if known is not None else settings.event_timeout


# --- issue ---------------------------------------------------------------------------------------------


def issue_commands(
    session: Session,
    deployment: Deployment,
    steps: Sequence[tuple[DeploymentTarget, LifecycleEventRecord]],
    now: float,
    settings: EngineSettings,
) -> None:
    """Create a host command (and its pick-up deadline) for each (instance, lifecycle event)."""
    if not steps:
        return
    commands = [
        HostCommand(
            host_command_identifier=new_host_command_identifier(),
            deployment_id=deployment.id,
            deployment_target_id=target.id,
            lifecycle_event_id=event.id,
            host_identifier=target.target_arn or target.target_id,
            command_name=event.name,
            command_position=event.position,
            attempt=1,
            status=HostCommandStatus.PENDING,
            nonce=secrets.randbits(62),
            created_at=now,
            updated_at=now,
            delivery_count=0,
        )
        for target, event in steps
    ]
    session.add_all(commands)
    session.flush()
    session.add_all(
        Timer(
            kind=EVENT_START_TIMER,
            due_at=now + settings.event_start_timeout,
            payload={},
            deployment_id=deployment.id,
            host_command_id=command.id,
            created_at=now,
        )
        for command in commands
    )
    wake_host_on_commit(session, [command.host_identifier for command in commands])


# --- deliver (PollHostCommand) ---------------------------------------------------------------------------


# Hot-path statements are built once: building a SQLAlchemy statement per request costs more than running it.
_DELIVERABLE = (
    select(HostCommand)
    .where(
        HostCommand.host_identifier == bindparam("host"),
        or_(
            HostCommand.status == HostCommandStatus.PENDING,
            and_(
                HostCommand.status == HostCommandStatus.IN_PROGRESS,
                HostCommand.acknowledged_at.is_(None),
                HostCommand.delivered_at < bindparam("redeliver_before"),
            ),
        ),
    )
    .order_by(HostCommand.id)
    .limit(1)
)
_DELIVERABLE_ID = _DELIVERABLE.with_only_columns(HostCommand.id)
_DELIVERABLE_LOCKED = _DELIVERABLE.with_for_update(skip_locked=True)
_BY_IDENTIFIER = select(HostCommand).where(HostCommand.host_command_identifier == bindparam("identifier"))
_BY_IDENTIFIER_LOCKED = _BY_IDENTIFIER.with_for_update()
# (Bound names in UPDATE statements must not be column names.)
_TOUCH_TARGET = (
    update(DeploymentTarget)
    .where(DeploymentTarget.id == bindparam("b_target"))
    .values(last_updated_at=bindparam("b_now"))
)
_RUN_DEADLINE = (
    update(Timer)
    .where(Timer.host_command_id == bindparam("b_command"))
    .values(
        kind=EVENT_TIMEOUT_TIMER, due_at=bindparam("b_due"), payload=bindparam("b_payload", type_=JSONValue)
    )
)
_DROP_TIMERS = delete(Timer).where(Timer.host_command_id == bindparam("b_command"))
_NEXT_EVENT = (
    select(LifecycleEventRecord)
    .where(
        LifecycleEventRecord.deployment_target_id == bindparam("target_id"),
        LifecycleEventRecord.position > bindparam("position"),
        LifecycleEventRecord.status == LifecycleEventStatus.PENDING,
    )
    .order_by(LifecycleEventRecord.position)
    .limit(1)
)
_SKIP_EVENTS = (
    update(LifecycleEventRecord)
    .where(
        LifecycleEventRecord.deployment_target_id == bindparam("b_target"),
        LifecycleEventRecord.position > bindparam("b_position"),
        LifecycleEventRecord.status == LifecycleEventStatus.PENDING,
    )
    .values(status=LifecycleEventStatus.SKIPPED)
)


def _deliverable_params(host: str, now: float, settings: EngineSettings) -> dict[str, Any]:
    return {"host": host, "redeliver_before": now - settings.redelivery_after}


def has_deliverable(session: Session, host: str, now: float, settings: EngineSettings) -> bool:
    """Whether a command is waiting for ``host`` (a read; deliver with ``deliver_next``)."""
    return session.scalar(_DELIVERABLE_ID, _deliverable_params(host, now, settings)) is not None


def deliver_next(
    session: Session, host: str, now: float, settings: EngineSettings
) -> DeliveredCommand | None:
    """Hand ``host`` its oldest waiting command, if any (other replicas skip a command being handed out)."""
    command = session.scalar(_DELIVERABLE_LOCKED, _deliverable_params(host, now, settings))
    if command is None:
        return None
    if command.status == HostCommandStatus.PENDING:
        _start(session, command, now, settings)
    command.delivered_at = now
    command.delivery_count = (command.delivery_count or 0) + 1
    command.updated_at = now
    return DeliveredCommand(
        command.host_command_identifier, command.deployment_id, command.command_name, command.nonce
    )


def _start(session: Session, command: HostCommand, now: float, settings: EngineSettings) -> None:
    """The agent has the command: its lifecycle event starts and its run deadline replaces the pick-up one."""
    command.status = HostCommandStatus.IN_PROGRESS
    event = session.get(LifecycleEventRecord, command.lifecycle_event_id)
    if event is not None and event.status == LifecycleEventStatus.PENDING:
        event.status = LifecycleEventStatus.IN_PROGRESS
        event.start_time = now
    session.execute(_TOUCH_TARGET, {"b_target": command.deployment_target_id, "b_now": now})
    deployment = session.get(Deployment, command.deployment_id)
    allowed = allowed_run_time(deployment, command.command_name, settings) if deployment else 0
    session.execute(
        _RUN_DEADLINE, {"b_command": command.id, "b_due": now + allowed, "b_payload": {"allowed": allowed}}
    )


# --- find, acknowledge, update ----------------------------------------------------------------------------


def command_for_host(session: Session, identifier: str, host: str, *, lock: bool = False) -> HostCommand:
    """The host command ``identifier`` if it belongs to ``host``; otherwise ``HostCommandNotFound``
    (the same answer whether it does not exist or is another instance's, so ids reveal nothing)."""
    command = session.scalar(_BY_IDENTIFIER_LOCKED if lock else _BY_IDENTIFIER, {"identifier": identifier})
    if command is None or command.host_identifier != host:
        raise HostCommandNotFound(f"There is no host command {identifier!r} for this instance")
    return command


def acknowledge(session: Session, command: HostCommand, now: float, settings: EngineSettings) -> str:
    """Record that the agent is about to run ``command``; answer its status (Succeeded or Failed when it
    has already finished, so the agent does not run it again)."""
    if command.status in FINISHED_COMMAND_STATUSES:
        return command.status
    if command.status == HostCommandStatus.PENDING:  # acknowledged without a poll: it starts now
        _start(session, command, now, settings)
        command.delivered_at = now
    if command.acknowledged_at is None:
        command.acknowledged_at = now
        command.updated_at = now
    return HostCommandStatus.IN_PROGRESS


def record_update(
    session: Session,
    command: HostCommand,
    estimated_completion_time: float | None,
    now: float,
    settings: EngineSettings,
) -> str:
    """PostHostCommandUpdate: remember the agent's estimate and, if it is later than the event's
    deadline, move the deadline to the estimate plus the grace period."""
    if command.status not in FINISHED_COMMAND_STATUSES and estimated_completion_time is not None:
        command.estimated_completion_time = estimated_completion_time
        command.updated_at = now
        session.execute(
            update(Timer)
            .where(
                Timer.host_command_id == command.id,
                Timer.kind == EVENT_TIMEOUT_TIMER,
                Timer.due_at < estimated_completion_time + settings.event_timeout_grace,
            )
            .values(due_at=estimated_completion_time + settings.event_timeout_grace)
        )
    return command.status


# --- complete -------------------------------------------------------------------------------------------


def complete(
    session: Session,
    command: HostCommand,
    status: str,
    diagnostics: dict[str, Any] | None,
    now: float,
    settings: EngineSettings,
) -> bool:
    """Record the agent's completion of ``command`` (lock it first). True if this was the first one; a
    duplicate returns False and changes nothing."""
    if status not in FINISHED_COMMAND_STATUSES:
        raise ValueError(f"a host command completes as Succeeded or Failed, not {status}")
    if command.status in FINISHED_COMMAND_STATUSES:
        return False
    succeeded = status == HostCommandStatus.SUCCEEDED
    if diagnostics:
        command.diagnostics_format = diagnostics.get("Format")
        command.diagnostics_payload = diagnostics.get("Payload")
    finish_event(
        session,
        command,
        succeeded=succeeded,
        diagnostics=event_diagnostics.from_agent(diagnostics, succeeded=succeeded),
        cause=CAUSE_EVENT,
        now=now,
        settings=settings,
    )
    return True


def finish_event(
    session: Session,
    command: HostCommand,
    *,
    succeeded: bool,
    diagnostics: EventDiagnostics,
    cause: str,
    now: float,
    settings: EngineSettings,
) -> None:
    """``command``'s lifecycle event is over: record it and move its instance on."""
    command.status = HostCommandStatus.SUCCEEDED if succeeded else HostCommandStatus.FAILED
    command.completed_at = now
    command.updated_at = now
    event = session.get(LifecycleEventRecord, command.lifecycle_event_id)
    target = session.get(DeploymentTarget, command.deployment_target_id)
    deployment = session.get(Deployment, command.deployment_id)
    session.execute(_DROP_TIMERS, {"b_command": command.id})
    if event is None or target is None or deployment is None:
        return
    event.status = LifecycleEventStatus.SUCCEEDED if succeeded else LifecycleEventStatus.FAILED
    event.start_time = event.start_time if event.start_time is not None else now
    event.end_time = now
    event.diagnostics_error_code = diagnostics.error_code
    event.diagnostics_script_name = diagnostics.script_name
    event.diagnostics_message = diagnostics.message
    event.diagnostics_log_tail = diagnostics.log_tail
    target.last_updated_at = now
    if target.status != TargetStatus.IN_PROGRESS:
        return
    forgiven = event.name in STOP_EVENTS and deployment.ignore_application_stop_failures
    if succeeded or forgiven:
        following = session.scalar(_NEXT_EVENT, {"target_id": target.id, "position": event.position})
        if following is None:
            target.status = TargetStatus.SUCCEEDED
        elif deployment.stop_requested_at is None:
            issue_commands(session, deployment, [(target, following)], now, settings)
            return
        else:  # the deployment is being stopped: no new event starts (engine.stop)
            target.status = TargetStatus.FAILED
            target.failure_cause = CAUSE_STOPPED
            skip_remaining_events(session, target.id, after=event.position)
    else:
        target.status = TargetStatus.FAILED
        target.failure_cause = cause
        skip_remaining_events(session, target.id, after=event.position)
    deployment_changed(session, deployment.id, now)


def skip_remaining_events(session: Session, target_id: int, *, after: int = -1) -> None:
    """Mark the target's events after position ``after`` that have not started Skipped."""
    session.execute(_SKIP_EVENTS, {"b_target": target_id, "b_position": after})


# --- timers ---------------------------------------------------------------------------------------------


def fire_command_timer(
    session: Session, timer: Timer, command: HostCommand, now: float, settings: EngineSettings
) -> None:
    """A deadline of ``command`` passed (both are locked): fail its event if it is still waiting."""
    target = session.get(DeploymentTarget, command.deployment_target_id)
    instance = target.target_id if target is not None else command.host_identifier
    if timer.kind == EVENT_START_TIMER and command.status == HostCommandStatus.PENDING:
        waited = settings.event_start_timeout
        finish_event(
            session,
            command,
            succeeded=False,
            diagnostics=EventDiagnostics(
                LifecycleErrorCode.UNKNOWN_ERROR,
                message=(
                    f"The CodeDeploy agent on instance {instance} did not pick up the {command.command_name} "
                    f"lifecycle event within {waited:g} seconds. Make sure the agent is installed and "
                    "running, and can reach the server."
                ),
            ),
            cause=CAUSE_AGENT,
            now=now,
            settings=settings,
        )
    elif timer.kind == EVENT_TIMEOUT_TIMER and command.status not in FINISHED_COMMAND_STATUSES:
        allowed = (timer.payload or {}).get("allowed")
        within = f" within {float(allowed):g} seconds" if allowed is not None else " in time"
        finish_event(
            session,
            command,
            succeeded=False,
            diagnostics=EventDiagnostics(
                LifecycleErrorCode.UNKNOWN_ERROR,
                message=(
                    f"The {command.command_name} lifecycle event on instance {instance} did not "
                    f"complete{within}; the agent may have stopped or lost contact with the server."
                ),
            ),
            cause=CAUSE_TIMEOUT,
            now=now,
            settings=settings,
        )
    session.execute(delete(Timer).where(Timer.id == timer.id))

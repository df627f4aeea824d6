"""Host commands: one lifecycle event of one instance, handed to the instance's agent and reported back.

The agent protocol's flow (agent wire protocol §1.5) as state transitions, each one transaction:

- **issue**: a command is created ``Pending`` for an instance's next lifecycle event (the first when
  dispatch starts the instance, each next one only once the previous succeeded), with a timer: the
  event must be picked up within ``event_start_timeout`` (the guide's 5 minutes) or the instance fails.
- **deliver** (PollHostCommand): the oldest deliverable command goes to the agent; it becomes
  ``InProgress``, its event starts, and the timer becomes the event's run deadline. A command handed
  out but never acknowledged (the answer may have been lost) is handed out again at the host's next
  poll once ``redelivery_after`` (seconds) has passed, or at once if its poll had lost its client —
  under a new identifier (a ``HostCommandDelivery``), since the first answer may not have been lost.
- **acknowledge**: answers the command's status, so an agent never runs a command that has finished.
  The first hand-out acknowledged is the one that runs; any other is answered Failed (not to be run).
  Acknowledging the same hand-out again (its answer lost) answers InProgress again.
- **complete**: the first completion (of the acknowledged hand-out) wins; a duplicate, or one of another
  hand-out, is accepted and changes nothing. The event is recorded, and what comes next for the instance
  is ``target_progress``'s to decide.
- **timers**: an event not picked up in time, or running past its deadline, fails as if the agent had
  reported it.

This is the agent runner's side of a lifecycle event (``runners.agent``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from opendeploy.domain.statuses import (
    HostCommandStatus,
    LifecycleErrorCode,
    LifecycleEventStatus,
)
from opendeploy.engine import diagnostics as event_diagnostics
from opendeploy.engine.diagnostics import EventDiagnostics
from opendeploy.engine.target_progress import (
    CAUSE_AGENT,
    CAUSE_EVENT,
    CAUSE_TIMEOUT,
    event_ended,
    touch_target,
)
from opendeploy.engine.timers import timer_kind
from opendeploy.engine.wakeups import wake_host_on_commit
from opendeploy.settings import EngineSettings, Settings
from opendeploy.store.models import (
    Deployment,
    DeploymentTarget,
    HostCommand,
    HostCommandDelivery,
    LifecycleEventRecord,
    Timer,
)
from opendeploy.store.models.json_column import JSONValue
from opendeploy.store.prepared import Prepared

# Its timers (``engine.timers``; inserted here by prepared statements, on every event's hot path).
EVENT_START_TIMER = "lifecycle_event_start"
EVENT_TIMEOUT_TIMER = "lifecycle_event_timeout"
FINISHED_COMMAND_STATUSES = frozenset({HostCommandStatus.SUCCEEDED, HostCommandStatus.FAILED})


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
    return _allowed(deployment.event_timeouts, event_name, settings)


def _allowed(event_timeouts: dict[str, Any] | None, event_name: str, settings: EngineSettings) -> float:
    known = (event_timeouts or {}).get(event_name)
    return float(known) if known is not None else settings.event_timeout


# The hot paths (every agent request) run Core statements, built once and run as prepared statements
# (``store.prepared``) on the session's connection: through the ORM, and even through SQLAlchemy's own
# execution, the overhead cost several times the statements themselves. A caller holding an ORM
# HostCommand may pass it (it is read, never written, and expired after a change).
# (Bound names in UPDATE statements must not be column names.)

# --- issue ---------------------------------------------------------------------------------------------

_INSERT_COMMANDS = insert(HostCommand).returning(HostCommand.id, sort_by_parameter_order=True)
_INSERT_TIMERS = insert(Timer)
# One command at a time (an instance's next event): the same, prepared.
_INSERT_COMMAND = Prepared(
    insert(HostCommand)
    .values(
        host_command_identifier=bindparam("b_identifier"),
        deployment_id=bindparam("b_deployment"),
        deployment_target_id=bindparam("b_target"),
        lifecycle_event_id=bindparam("b_event"),
        host_identifier=bindparam("b_host"),
        command_name=bindparam("b_name"),
        command_position=bindparam("b_position"),
        attempt=1,
        status=HostCommandStatus.PENDING,
        nonce=bindparam("b_nonce"),
        created_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
        delivery_count=0,
    )
    .returning(HostCommand.id)
)
_INSERT_TIMER = Prepared(
    insert(Timer).values(
        kind=bindparam("b_kind"),
        due_at=bindparam("b_due"),
        payload=bindparam("b_payload", type_=JSONValue),
        deployment_id=bindparam("b_deployment"),
        host_command_id=bindparam("b_command"),
        created_at=bindparam("b_now"),
    )
)


def issue(
    session: Session,
    deployment_id: str,
    steps: Sequence[tuple[int, str, int, str, int]],
    now: float,
    settings: EngineSettings,
) -> None:
    """(target id, host identifier, event id, event name, event position) -> a Pending command each, with
    its pick-up deadline, in bulk."""
    if not steps:
        return
    connection = session.connection()
    if len(steps) == 1:
        target_id, host, event_id, name, position = steps[0]
        command = _INSERT_COMMAND.first(
            connection,
            {
                "b_identifier": new_host_command_identifier(),
                "b_deployment": deployment_id,
                "b_target": target_id,
                "b_event": event_id,
                "b_host": host,
                "b_name": name,
                "b_position": position,
                "b_nonce": secrets.randbits(62),
                "b_now": now,
            },
        )
        _INSERT_TIMER.execute(
            connection,
            {
                "b_kind": EVENT_START_TIMER,
                "b_due": now + settings.event_start_timeout,
                "b_payload": {},
                "b_deployment": deployment_id,
                "b_command": command.id,
                "b_now": now,
            },
        )
        wake_host_on_commit(session, [host])
        return
    ids = connection.execute(
        _INSERT_COMMANDS,
        [
            {
                "host_command_identifier": new_host_command_identifier(),
                "deployment_id": deployment_id,
                "deployment_target_id": target_id,
                "lifecycle_event_id": event_id,
                "host_identifier": host,
                "command_name": name,
                "command_position": position,
                "attempt": 1,
                "status": HostCommandStatus.PENDING,
                "nonce": secrets.randbits(62),
                "created_at": now,
                "updated_at": now,
                "delivery_count": 0,
            }
            for target_id, host, event_id, name, position in steps
        ],
    ).scalars()
    connection.execute(
        _INSERT_TIMERS,
        [
            {
                "kind": EVENT_START_TIMER,
                "due_at": now + settings.event_start_timeout,
                "payload": {},
                "deployment_id": deployment_id,
                "host_command_id": command_id,
                "created_at": now,
            }
            for command_id in ids
        ],
    )
    wake_host_on_commit(session, [host for _, host, _, _, _ in steps])


# --- deliver (PollHostCommand) ---------------------------------------------------------------------------


# What the service and the engine read of a command.
_COMMAND_COLUMNS = (
    HostCommand.id,
    HostCommand.host_command_identifier,
    HostCommand.deployment_id,
    HostCommand.deployment_target_id,
    HostCommand.lifecycle_event_id,
    HostCommand.host_identifier,
    HostCommand.command_name,
    HostCommand.status,
    HostCommand.nonce,
    HostCommand.acknowledged_at,
    HostCommand.acknowledged_identifier,
)
# The host's next command: a Pending one (oldest first), or else one handed out but never acknowledged
# (its answer may have been lost) — oldest hand-out first, a lost one (no hand-out time) before all.
_NEXT_FOR_HOST = Prepared(
    select(*_COMMAND_COLUMNS, HostCommand.delivered_at)
    .where(
        HostCommand.host_identifier == bindparam("host"),
        or_(
            HostCommand.status == HostCommandStatus.PENDING,
            and_(HostCommand.status == HostCommandStatus.IN_PROGRESS, HostCommand.acknowledged_at.is_(None)),
        ),
    )
    .order_by(
        HostCommand.status != HostCommandStatus.PENDING,
        HostCommand.delivered_at.is_not(None),
        HostCommand.delivered_at,
        HostCommand.id,
    )
    .limit(1)
    .with_for_update(skip_locked=True)
)
_ROW_BY_IDENTIFIER = select(*_COMMAND_COLUMNS).where(
    HostCommand.host_command_identifier == bindparam("identifier")
)
_ROW_BY_IDENTIFIER_LOCKED = Prepared(_ROW_BY_IDENTIFIER.with_for_update())
_ROW_BY_IDENTIFIER = Prepared(_ROW_BY_IDENTIFIER)
# A later hand-out's identifier (rare: its first answer was lost).
_ROW_BY_DELIVERY = (
    select(*_COMMAND_COLUMNS)
    .join(HostCommandDelivery, HostCommandDelivery.host_command_id == HostCommand.id)
    .where(HostCommandDelivery.identifier == bindparam("identifier"))
)
_ROW_BY_DELIVERY_LOCKED = Prepared(_ROW_BY_DELIVERY.with_for_update(of=HostCommand))
_ROW_BY_DELIVERY = Prepared(_ROW_BY_DELIVERY)
_INSERT_DELIVERY = Prepared(
    insert(HostCommandDelivery).values(
        identifier=bindparam("b_identifier"),
        host_command_id=bindparam("b_command"),
        created_at=bindparam("b_now"),
    )
)
_DELIVERED = Prepared(
    update(HostCommand)
    .where(HostCommand.id == bindparam("b_command"))
    .values(
        status=HostCommandStatus.IN_PROGRESS,
        delivered_at=bindparam("b_now"),
        delivery_count=HostCommand.delivery_count + 1,
        updated_at=bindparam("b_now"),
    )
)
_EVENT_STARTS = Prepared(
    update(LifecycleEventRecord)
    .where(
        LifecycleEventRecord.id == bindparam("b_event"),
        LifecycleEventRecord.status == LifecycleEventStatus.PENDING,
    )
    .values(status=LifecycleEventStatus.IN_PROGRESS, start_time=bindparam("b_now"))
)
_EVENT_TIMEOUTS = Prepared(
    select(Deployment.event_timeouts).where(Deployment.id == bindparam("deployment_id"))
)
_RUN_DEADLINE = Prepared(
    update(Timer)
    .where(Timer.host_command_id == bindparam("b_command"))
    .values(
        kind=EVENT_TIMEOUT_TIMER, due_at=bindparam("b_due"), payload=bindparam("b_payload", type_=JSONValue)
    )
)
_DROP_TIMERS = Prepared(delete(Timer).where(Timer.host_command_id == bindparam("b_command")))


@dataclass(frozen=True)
class Delivery:
    """What a poll finds for a host: a command to hand out now, or when one handed out before (whose
    acknowledgement has not come) may be handed out again, or neither."""

    command: DeliveredCommand | None = None
    redeliver_at: float | None = None


def deliver_next(session: Session, host: str, now: float, settings: EngineSettings) -> Delivery:
    """Hand ``host`` its oldest waiting command, if any (other replicas skip a command being handed out).

    A command handed out but not acknowledged is handed out again once ``redelivery_after`` has passed
    since (the answer may have been lost: the server died, or the poll's client went away), or at once
    when its poll is known to have been lost (``delivery_lost``). Sooner, the agent that has it is most
    likely about to acknowledge it: an agent that got it twice would run it twice."""
    connection = session.connection()
    command = _NEXT_FOR_HOST.first(connection, {"host": host})
    if command is None:
        return Delivery()
    if command.status != HostCommandStatus.PENDING and command.delivered_at is not None:
        redeliver_at = command.delivered_at + settings.redelivery_after
        if redeliver_at > now:
            return Delivery(redeliver_at=redeliver_at)
    if command.status == HostCommandStatus.PENDING:
        _start(session, command, now, settings)
        identifier = command.host_command_identifier
    else:  # handed out again: under a new identifier, the earlier hand-out may yet be acknowledged
        identifier = new_host_command_identifier()
        _INSERT_DELIVERY.execute(
            connection, {"b_identifier": identifier, "b_command": command.id, "b_now": now}
        )
    _DELIVERED.execute(connection, {"b_command": command.id, "b_now": now})
    return Delivery(DeliveredCommand(identifier, command.deployment_id, command.command_name, command.nonce))


_DELIVERY_LOST = Prepared(
    update(HostCommand)
    .where(
        HostCommand.id == bindparam("b_command"),
        HostCommand.status == HostCommandStatus.IN_PROGRESS,
        HostCommand.acknowledged_at.is_(None),
    )
    .values(delivered_at=None)
)


def delivery_lost(session: Session, identifier: str, host: str) -> None:
    """The poll ``identifier`` was handed to had lost its client before the answer went out: hand the
    command out again at the host's next poll, without waiting out ``redelivery_after``."""
    command = find_command(session, identifier, host, lock=True)
    _DELIVERY_LOST.execute(session.connection(), {"b_command": command.id})
    wake_host_on_commit(session, [host])


def _start(session: Session, command: Any, now: float, settings: EngineSettings) -> None:
    """The agent has the command: its lifecycle event starts and its run deadline replaces the pick-up
    one. (The caller marks the command itself InProgress.)"""
    connection = session.connection()
    _EVENT_STARTS.execute(connection, {"b_event": command.lifecycle_event_id, "b_now": now})
    touch_target(session, command.deployment_target_id, now)
    allowed = _allowed(_event_timeouts(connection, command.deployment_id), command.command_name, settings)
    _RUN_DEADLINE.execute(
        connection, {"b_command": command.id, "b_due": now + allowed, "b_payload": {"allowed": allowed}}
    )


# A deployment's event timeouts, once known, never change (``reconciler`` sets them once from its
# revision): remembered, so that handing out each event does not read them again.
_KNOWN_EVENT_TIMEOUTS: dict[str, dict[str, Any]] = {}
_EVENT_TIMEOUTS_KEPT = 4096


def _event_timeouts(connection: Any, deployment_id: str) -> dict[str, Any] | None:
    known = _KNOWN_EVENT_TIMEOUTS.get(deployment_id)
    if known is not None:
        return known
    row = _EVENT_TIMEOUTS.first(connection, {"deployment_id": deployment_id})
    timeouts = row.event_timeouts if row is not None else None
    if timeouts is not None:
        if len(_KNOWN_EVENT_TIMEOUTS) >= _EVENT_TIMEOUTS_KEPT:
            _KNOWN_EVENT_TIMEOUTS.clear()
        _KNOWN_EVENT_TIMEOUTS[deployment_id] = timeouts
    return timeouts


def _expire(session: Session, command: Any) -> None:
    """A caller's ORM copy of a command changed with Core statements must be read again."""
    if isinstance(command, HostCommand):
        session.expire(command)


# --- find, acknowledge, update ----------------------------------------------------------------------------


def find_command(session: Session, identifier: str, host: str, *, lock: bool = False) -> Any:
    """The host command ``identifier`` names (its own identifier or a later hand-out's), as a read-only
    row, if it belongs to ``host``; otherwise ``HostCommandNotFound`` (the same answer whether it does not
    exist or is another instance's, so identifiers reveal nothing)."""
    connection = session.connection()
    command = (_ROW_BY_IDENTIFIER_LOCKED if lock else _ROW_BY_IDENTIFIER).first(
        connection, {"identifier": identifier}
    )
    if command is None:
        command = (_ROW_BY_DELIVERY_LOCKED if lock else _ROW_BY_DELIVERY).first(
            connection, {"identifier": identifier}
        )
    if command is None or command.host_identifier != host:
        raise HostCommandNotFound(f"There is no host command {identifier!r} for this instance")
    return command


def _superseded(command: Any, identifier: str) -> bool:
    """Another hand-out of ``command`` was acknowledged first: the one ``identifier`` names must not run."""
    return command.acknowledged_identifier is not None and command.acknowledged_identifier != identifier


_ACKNOWLEDGED = Prepared(
    update(HostCommand)
    .where(HostCommand.id == bindparam("b_command"))
    .values(
        status=HostCommandStatus.IN_PROGRESS,
        acknowledged_at=func.coalesce(HostCommand.acknowledged_at, bindparam("b_now")),
        acknowledged_identifier=func.coalesce(HostCommand.acknowledged_identifier, bindparam("b_identifier")),
        delivered_at=func.coalesce(HostCommand.delivered_at, bindparam("b_now")),
        updated_at=bindparam("b_now"),
    )
)


def acknowledge(session: Session, command: Any, identifier: str, now: float, settings: EngineSettings) -> str:
    """Record that the agent is about to run ``command``, handed out as ``identifier``; answer its status:
    InProgress to run it, or Succeeded / Failed when it has finished — or Failed when another hand-out of
    it was acknowledged first — so the agent does not run it (again)."""
    if command.status in FINISHED_COMMAND_STATUSES:
        return command.status
    if _superseded(command, identifier):
        return HostCommandStatus.FAILED
    if command.status == HostCommandStatus.PENDING:  # acknowledged without a poll: it starts now
        _start(session, command, now, settings)
    if command.status == HostCommandStatus.PENDING or command.acknowledged_at is None:
        _ACKNOWLEDGED.execute(
            session.connection(), {"b_command": command.id, "b_now": now, "b_identifier": identifier}
        )
        _expire(session, command)
    return HostCommandStatus.IN_PROGRESS


_ESTIMATE = (
    update(HostCommand)
    .where(HostCommand.id == bindparam("b_command"))
    .values(estimated_completion_time=bindparam("b_estimate"), updated_at=bindparam("b_now"))
)


def record_update(
    session: Session,
    command: Any,
    identifier: str,
    estimated_completion_time: float | None,
    now: float,
    settings: EngineSettings,
) -> str:
    """PostHostCommandUpdate: remember the agent's estimate and, if it is later than the event's
    deadline, move the deadline to the estimate plus the grace period (not for a hand-out that does
    not run: answered Failed, as its acknowledgement was)."""
    if _superseded(command, identifier) and command.status not in FINISHED_COMMAND_STATUSES:
        return HostCommandStatus.FAILED
    if command.status not in FINISHED_COMMAND_STATUSES and estimated_completion_time is not None:
        connection = session.connection()
        connection.execute(
            _ESTIMATE, {"b_command": command.id, "b_estimate": estimated_completion_time, "b_now": now}
        )
        _expire(session, command)
        connection.execute(
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


_FINISHED_STATEMENT = (
    update(HostCommand)
    .where(HostCommand.id == bindparam("b_command"))
    .values(status=bindparam("b_status"), completed_at=bindparam("b_now"), updated_at=bindparam("b_now"))
)
_FINISHED = Prepared(_FINISHED_STATEMENT)
_FINISHED_WITH_DIAGNOSTICS = Prepared(
    _FINISHED_STATEMENT.values(
        diagnostics_format=bindparam("b_format"), diagnostics_payload=bindparam("b_payload")
    )
)
_EVENT_ENDS = Prepared(
    update(LifecycleEventRecord)
    .where(LifecycleEventRecord.id == bindparam("b_event"))
    .values(
        status=bindparam("b_status"),
        start_time=func.coalesce(LifecycleEventRecord.start_time, bindparam("b_now")),
        end_time=bindparam("b_now"),
        diagnostics_error_code=bindparam("b_error_code"),
        diagnostics_script_name=bindparam("b_script_name"),
        diagnostics_message=bindparam("b_message"),
        diagnostics_log_tail=bindparam("b_log_tail"),
    )
    .returning(LifecycleEventRecord.name, LifecycleEventRecord.position)
)


def complete(
    session: Session,
    command: Any,
    identifier: str,
    status: str,
    diagnostics: dict[str, Any] | None,
    now: float,
    settings: EngineSettings,
) -> bool:
    """Record the agent's completion of ``command``, handed out as ``identifier`` (lock it first). True
    if this was the first one; a duplicate, or a completion of a hand-out that was not the one
    acknowledged, returns False and changes nothing."""
    if status not in FINISHED_COMMAND_STATUSES:
        raise ValueError(f"a host command completes as Succeeded or Failed, not {status}")
    if command.status in FINISHED_COMMAND_STATUSES or _superseded(command, identifier):
        return False
    if command.acknowledged_identifier is None:  # completed without an acknowledgement: this hand-out ran
        _ACKNOWLEDGED.execute(
            session.connection(), {"b_command": command.id, "b_now": now, "b_identifier": identifier}
        )
    succeeded = status == HostCommandStatus.SUCCEEDED
    _finish(
        session,
        command,
        succeeded=succeeded,
        diagnostics=event_diagnostics.from_agent(diagnostics, succeeded=succeeded),
        cause=CAUSE_EVENT,
        now=now,
        settings=settings,
        envelope=diagnostics,
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
    _finish(
        session,
        command,
        succeeded=succeeded,
        diagnostics=diagnostics,
        cause=cause,
        now=now,
        settings=settings,
    )


def _finish(
    session: Session,
    command: Any,
    *,
    succeeded: bool,
    diagnostics: EventDiagnostics,
    cause: str,
    now: float,
    settings: EngineSettings,
    envelope: dict[str, Any] | None = None,
) -> None:
    connection = session.connection()
    command_id, event_id = command.id, command.lifecycle_event_id
    target_id, deployment_id = command.deployment_target_id, command.deployment_id
    status = HostCommandStatus.SUCCEEDED if succeeded else HostCommandStatus.FAILED
    finished = {"b_command": command_id, "b_status": status, "b_now": now}
    if envelope:
        finished |= {"b_format": envelope.get("Format"), "b_payload": envelope.get("Payload")}
    (_FINISHED_WITH_DIAGNOSTICS if envelope else _FINISHED).execute(connection, finished)
    _expire(session, command)
    _DROP_TIMERS.execute(connection, {"b_command": command_id})
    event = _EVENT_ENDS.first(
        connection,
        {
            "b_event": event_id,
            "b_status": LifecycleEventStatus.SUCCEEDED if succeeded else LifecycleEventStatus.FAILED,
            "b_now": now,
            "b_error_code": diagnostics.error_code,
            "b_script_name": diagnostics.script_name,
            "b_message": diagnostics.message,
            "b_log_tail": diagnostics.log_tail,
        },
    )
    if event is None:
        return
    event_ended(
        session,
        deployment_id=deployment_id,
        target_id=target_id,
        event_name=event.name,
        position=event.position,
        succeeded=succeeded,
        cause=cause,
        now=now,
        settings=settings,
    )


# --- timers ---------------------------------------------------------------------------------------------


def _deadline_passed(session: Session, timer: Timer) -> tuple[HostCommand, str]:
    """The command whose deadline ``timer`` is (locked before the timer: ``timers.fire``), and the name of
    its instance."""
    command = session.get(HostCommand, timer.host_command_id)
    if command is None:
        raise LookupError(f"timer {timer.id} names host command {timer.host_command_id}, which has gone")
    target = session.get(DeploymentTarget, command.deployment_target_id)
    return command, target.target_id if target is not None else command.host_identifier


@timer_kind(EVENT_START_TIMER, host_command=True)
def event_start_deadline(session: Session, timer: Timer, now: float, settings: Settings) -> None:
    """No agent picked the event up in time: it fails as if the agent had reported it (``CAUSE_AGENT``)."""
    command, instance = _deadline_passed(session, timer)
    if command.status == HostCommandStatus.PENDING:
        waited = settings.engine.event_start_timeout
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
            settings=settings.engine,
        )
    session.execute(delete(Timer).where(Timer.id == timer.id))


@timer_kind(EVENT_TIMEOUT_TIMER, host_command=True)
def event_run_deadline(session: Session, timer: Timer, now: float, settings: Settings) -> None:
    """The event ran past its allowed time: it fails as if the agent had reported it (``CAUSE_TIMEOUT``)."""
    command, instance = _deadline_passed(session, timer)
    if command.status not in FINISHED_COMMAND_STATUSES:
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
            settings=settings.engine,
        )
    session.execute(delete(Timer).where(Timer.id == timer.id))

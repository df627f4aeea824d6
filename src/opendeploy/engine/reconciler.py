"""The reconciler: find the deployments and timers that are due, and advance each in its own transaction.

A deployment is due when ``engine_due_at`` has passed (something changed, or a wait ended) or when it is
still Created (a safety net in case the wake-up that should have started it was lost). A timer is due
when its ``due_at`` has passed. Rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED``, so several
server replicas sharing one PostgreSQL database never work on the same row at once (SQLite has one
writer at a time anyway).

A step that raises (advancing a deployment, firing a timer) has done nothing: its transaction was rolled
back. The retry policy, in a transaction of its own, counts the failure on the row (``engine_attempts``
and ``engine_last_error`` on the deployment, ``attempts`` and ``last_error`` on the timer) and puts the
step off: ``step_retry_base`` seconds after the first failure, doubling after each next one, at most
``step_retry_cap`` (``EngineSettings``). The ``step_max_attempts``-th failure in a row is final: the
deployment — a timer's own deployment, the timer deleted — ends Failed with ``INTERNAL_ERROR`` and the
error in ``deploymentStatusMessages``, through the one end transition (``deployment_end``: what waits is
called off, then health, automatic rollback, new instances). A step that succeeds sets the count back to
0. The log shows the full traceback of a failure when its error is new (the first failure, or an error
other than the previous one's), and one line for each repeat.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from opendeploy.appspec.lifecycle_events import LifecycleEvent
from opendeploy.domain.statuses import ACTIVE_DEPLOYMENT_STATUSES, ERROR_MESSAGES, DeploymentStatus, ErrorCode
from opendeploy.engine import alarm_monitoring, event_timeouts, stop, timers
from opendeploy.engine.deployment_end import end_deployment
from opendeploy.engine.strategies import NoStrategy, StrategyKey, find_strategy, strategy_for
from opendeploy.engine.transactions import in_transaction
from opendeploy.settings import EngineSettings, Settings
from opendeploy.store.blob_store import blob_store_for
from opendeploy.store.db import Database
from opendeploy.store.models import Deployment, Revision, Timer

log = logging.getLogger(__name__)
T = TypeVar("T")

BATCH = 100
STOPPABLE = frozenset({DeploymentStatus.CREATED, DeploymentStatus.IN_PROGRESS, DeploymentStatus.READY})
ERROR_TEXT_LIMIT = 2000  # characters of an error kept in engine_last_error / last_error
INTERNAL_ERROR_MESSAGE = (
    "The deployment failed because of an internal error in the deployment server. Its "
    "deploymentStatusMessages name the step that failed and its last error; the server's log has details."
)


def _due_deployments(session: Session, now: float) -> list[tuple[str, str]]:
    """(id, status) of the deployments due now."""
    return list(
        session.execute(
            select(Deployment.id, Deployment.status)
            .where(
                or_(
                    Deployment.engine_due_at <= now,
                    and_(Deployment.status == DeploymentStatus.CREATED, Deployment.engine_due_at.is_(None)),
                )
            )
            .order_by(Deployment.create_time)
            .limit(BATCH)
        )
    )


def advance(session: Session, deployment_id: str, now: float, settings: Settings) -> bool:
    """Take the deployment's next step if it is due and no one else holds it; True if it was."""
    deployment = session.scalar(
        select(Deployment)
        .where(Deployment.id == deployment_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if deployment is None:
        return False
    due = deployment.engine_due_at
    if due is None and deployment.status != DeploymentStatus.CREATED:
        return False
    if due is not None and due > now:
        return False
    deployment.engine_due_at = None
    if deployment.engine_attempts:  # this step succeeds (or the transaction rolls back): a fresh count
        deployment.engine_attempts = 0
        deployment.engine_last_error = None
    if deployment.stop_requested_at is not None and deployment.status in STOPPABLE:
        stop.continue_stop(session, deployment, now, settings)
        return True
    try:
        strategy = strategy_for(deployment)
    except NoStrategy as missing:
        if deployment.status == DeploymentStatus.CREATED:
            _not_supported(session, deployment, str(missing), now, settings)
        return True
    if deployment.status == DeploymentStatus.CREATED:
        strategy.start(session, deployment, now, settings)
        if deployment.status in ACTIVE_DEPLOYMENT_STATUSES:
            alarm_monitoring.watch(session, deployment, now)
    elif deployment.status in ACTIVE_DEPLOYMENT_STATUSES:
        strategy.advance(session, deployment, now, settings)
    return True


def _not_supported(
    session: Session, deployment: Deployment, reason: str, now: float, settings: Settings
) -> None:
    """No strategy runs this kind of deployment (yet): it fails at start rather than waiting forever."""
    end_deployment(
        session,
        deployment,
        DeploymentStatus.FAILED,
        now,
        settings,
        error_code=ErrorCode.INTERNAL_ERROR,
        error_message=ERROR_MESSAGES.get(ErrorCode.INTERNAL_ERROR) or reason,
        status_messages=[reason],
    )


def _due_timers(session: Session, now: float) -> list[int]:
    return list(
        session.scalars(select(Timer.id).where(Timer.due_at <= now).order_by(Timer.due_at).limit(BATCH))
    )


def fire_timer(session: Session, timer_id: int, now: float, settings: Settings, observed: Any = None) -> bool:
    """Act on one due timer through the handler of its kind (``timers.fire``), with what its kind's
    observation found; True if it was acted on. A kind without a handler raises, so the retry policy
    records it on the timer."""
    return timers.fire(session, timer_id, now, settings, observed)


# --- the retry policy -------------------------------------------------------------------------------------


def retry_delay(attempts: int, settings: EngineSettings) -> float:
    """Seconds to wait after a step's ``attempts``-th failure in a row: the base, doubling, capped."""
    doubled = settings.step_retry_base * 2.0 ** min(max(attempts - 1, 0), 64)
    return min(doubled, settings.step_retry_cap)


def error_text(error: BaseException) -> str:
    """How a step's error is kept and shown: its type and message, shortened."""
    message = str(error)
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"


@dataclass(frozen=True)
class Failure:
    """A failed step as counted: the how-manieth in a row, whether its error is the previous one's,
    whether the policy now gives up, and when the step is tried again (if giving up fails too)."""

    attempts: int
    repeated: bool
    final: bool
    retry_at: float


def _count_failure(
    attempts: int, previous: str | None, text: str, now: float, settings: EngineSettings
) -> Failure:
    attempts += 1
    return Failure(
        attempts=attempts,
        repeated=previous == text,
        final=attempts >= settings.step_max_attempts,
        retry_at=now + retry_delay(attempts, settings),
    )


def _locked_deployment(session: Session, deployment_id: str) -> Deployment | None:
    return session.scalar(
        select(Deployment)
        .where(Deployment.id == deployment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _locked_timer(session: Session, timer_id: int) -> Timer | None:
    return session.scalar(
        select(Timer).where(Timer.id == timer_id).with_for_update().execution_options(populate_existing=True)
    )


def _lock_deployment(session: Session, deployment_id: str) -> Deployment | None:
    """The deployment, locked after its running commands (the order completions and stops lock in)."""
    stop.lock_running_commands(session, deployment_id)
    return _locked_deployment(session, deployment_id)


def record_deployment_failure(
    session: Session, deployment_id: str, text: str, now: float, settings: EngineSettings
) -> Failure | None:
    """Count a failure of the deployment's step and put the step off; None if the deployment has gone or
    ended meanwhile. (Giving up is a step of its own: ``give_up_on_deployment``.)"""
    deployment = _lock_deployment(session, deployment_id)
    if deployment is None or deployment.status not in ACTIVE_DEPLOYMENT_STATUSES:
        return None
    failure = _count_failure(deployment.engine_attempts, deployment.engine_last_error, text, now, settings)
    deployment.engine_attempts = failure.attempts
    deployment.engine_last_error = text
    deployment.engine_due_at = failure.retry_at
    return failure


def _fail_internal(
    session: Session, deployment: Deployment, detail: str, now: float, settings: Settings, follow_ups: bool
) -> None:
    end_deployment(
        session,
        deployment,
        DeploymentStatus.FAILED,
        now,
        settings,
        error_code=ErrorCode.INTERNAL_ERROR,
        error_message=INTERNAL_ERROR_MESSAGE,
        status_messages=[detail],
        follow_ups=follow_ups,
    )


def give_up_on_deployment(
    session: Session, deployment_id: str, now: float, settings: Settings, *, follow_ups: bool = True
) -> bool:
    """The deployment's step has failed too often: end it Failed with INTERNAL_ERROR (True), unless it
    has gone, ended or recovered meanwhile (False)."""
    deployment = _lock_deployment(session, deployment_id)
    if deployment is None or deployment.status not in ACTIVE_DEPLOYMENT_STATUSES:
        return False
    if deployment.engine_attempts < settings.engine.step_max_attempts:
        return False
    detail = (
        f"The deployment server could not carry out this deployment's next step: it failed "
        f"{deployment.engine_attempts} times in a row, the last time with {deployment.engine_last_error}"
    )
    _fail_internal(session, deployment, detail, now, settings, follow_ups)
    return True


@dataclass(frozen=True)
class TimerFailure:
    """A failed timer as counted, with what giving up on it needs to know."""

    failure: Failure
    kind: str
    deployment_id: str | None


def record_timer_failure(
    session: Session, timer_id: int, text: str, now: float, settings: EngineSettings
) -> TimerFailure | None:
    """Count a failure of the timer and put it off; None if it has gone meanwhile."""
    timer = _locked_timer(session, timer_id)
    if timer is None:
        return None
    failure = _count_failure(timer.attempts, timer.last_error, text, now, settings)
    timer.attempts = failure.attempts
    timer.last_error = text
    timer.due_at = failure.retry_at
    return TimerFailure(failure, timer.kind, timer.deployment_id)


def give_up_on_timer(
    session: Session, timer_id: int, now: float, settings: Settings, *, follow_ups: bool = True
) -> str | None:
    """The timer has failed too often: delete it and end its deployment, if still active, Failed with
    INTERNAL_ERROR; the id of the deployment ended, if any."""
    # Lock order: the deployment's running commands, the timer, the deployment (as firing a timer does).
    deployment_id = session.scalar(select(Timer.deployment_id).where(Timer.id == timer_id))
    if deployment_id is not None:
        stop.lock_running_commands(session, deployment_id)
    timer = _locked_timer(session, timer_id)
    if timer is None or timer.attempts < settings.engine.step_max_attempts:
        return None
    kind, attempts, last_error = timer.kind, timer.attempts, timer.last_error
    deployment = _locked_deployment(session, timer.deployment_id) if timer.deployment_id else None
    session.execute(delete(Timer).where(Timer.id == timer_id))
    if deployment is None or deployment.status not in ACTIVE_DEPLOYMENT_STATUSES:
        return None
    detail = (
        f"The deployment server could not act on this deployment's {kind} timer: it failed {attempts} "
        f"times in a row, the last time with {last_error}"
    )
    _fail_internal(session, deployment, detail, now, settings, follow_ups)
    return deployment.id


# --- scheduling ---------------------------------------------------------------------------------------------


def next_due(session: Session) -> float | None:
    """When the earliest timer or deployment step is due, if any is scheduled."""
    timer = session.scalar(select(func.min(Timer.due_at)))
    deployment = session.scalar(select(func.min(Deployment.engine_due_at)))
    times = [t for t in (timer, deployment) if t is not None]
    return min(times) if times else None


class Reconciler:
    """Runs due work against one database; ``run_once`` is called by the worker (in a thread)."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    def run_once(self, now: float | None = None) -> int:
        """Advance everything due (at ``now``, default the current time); how many due items it found."""
        steps = 0
        fixed = now
        for _ in range(1000):  # bounded: a flood of work is finished over several wake-ups
            deployments, timers = self._round(fixed if fixed is not None else time.time())
            steps += deployments + timers
            if deployments < BATCH and timers < BATCH:
                break
        return steps

    def _round(self, now: float) -> tuple[int, int]:
        """One pass over what is due at ``now``: how many deployments and timers it found."""
        deployments = in_transaction(self.database, lambda s: _due_deployments(s, now), write=False)
        for deployment_id, status in deployments:
            self._advance(deployment_id, status, now)
        timers = in_transaction(self.database, lambda s: _due_timers(s, now), write=False)
        for timer_id in timers:
            self._fire(timer_id, now)
        return len(deployments), len(timers)

    def _fire(self, timer_id: int, now: float) -> None:
        try:
            look = in_transaction(
                self.database, lambda s: timers.observation(s, timer_id, now, self.settings), write=False
            )
            observed = look() if look is not None else None  # outside any transaction
            in_transaction(self.database, lambda s: fire_timer(s, timer_id, now, self.settings, observed))
        except Exception as error:
            self._timer_failed(timer_id, error, now)

    def _timer_failed(self, timer_id: int, error: Exception, now: float) -> None:
        text = error_text(error)
        counted = in_transaction(
            self.database, lambda s: record_timer_failure(s, timer_id, text, now, self.settings.engine)
        )
        if counted is None:
            log.warning("timer %s failed but has gone meanwhile: %s", timer_id, text)
            return
        failure = counted.failure
        what = f"timer {timer_id} ({counted.kind}, deployment {counted.deployment_id})"
        self._log_failure(what, failure, error, now)
        if not failure.final:
            return
        ended = self._give_up(
            what,
            lambda s, follow_ups: give_up_on_timer(s, timer_id, now, self.settings, follow_ups=follow_ups),
        )
        if ended:
            log.error("deployment %s ended Failed (INTERNAL_ERROR): %s gave up", ended, what)

    def _prepare(self, deployment_id: str) -> None:
        """Before a deployment starts, learn its events' run times from its bundle (outside any
        transaction: reading a bundle may take a moment)."""

        def location(session: Session) -> tuple[dict[str, Any], tuple[LifecycleEvent, ...]] | None:
            deployment = session.get(Deployment, deployment_id)
            if deployment is None or deployment.status != DeploymentStatus.CREATED:
                return None
            if deployment.event_timeouts is not None or deployment.revision_id is None:
                return None
            strategy = find_strategy(StrategyKey.of_deployment(deployment))
            if strategy is None:
                return None  # it fails at start
            revision = session.get(Revision, deployment.revision_id)
            return (revision.location if revision is not None else {}), strategy.lifecycle_events(deployment)

        found = in_transaction(self.database, location, write=False)
        if found is None:
            return
        revision_location, events = found
        timeouts = event_timeouts.for_revision(
            blob_store_for(self.settings.data_dir),
            revision_location,
            events,
            self.settings.engine.event_timeout_grace,
        )
        in_transaction(
            self.database,
            lambda s: s.execute(
                update(Deployment).where(Deployment.id == deployment_id).values(event_timeouts=timeouts)
            ),
        )

    def _advance(self, deployment_id: str, status: str, now: float) -> int:
        try:
            if status == DeploymentStatus.CREATED:
                self._prepare(deployment_id)
            return int(in_transaction(self.database, lambda s: advance(s, deployment_id, now, self.settings)))
        except Exception as error:
            self._deployment_failed(deployment_id, error, now)
            return 0

    def _deployment_failed(self, deployment_id: str, error: Exception, now: float) -> None:
        text = error_text(error)
        failure = in_transaction(
            self.database,
            lambda s: record_deployment_failure(s, deployment_id, text, now, self.settings.engine),
        )
        what = f"advancing deployment {deployment_id}"
        if failure is None:
            log.warning("%s failed, but it has gone or ended meanwhile: %s", what, text)
            return
        self._log_failure(what, failure, error, now)
        if not failure.final:
            return
        ended = self._give_up(
            what,
            lambda s, follow_ups: give_up_on_deployment(
                s, deployment_id, now, self.settings, follow_ups=follow_ups
            ),
        )
        if ended:
            log.error("deployment %s ended Failed (INTERNAL_ERROR): %s gave up", deployment_id, what)

    def _log_failure(self, what: str, failure: Failure, error: Exception, now: float) -> None:
        """The full traceback when the error is new, one line when it repeats the previous one."""
        limit = self.settings.engine.step_max_attempts
        if failure.final:
            outcome = "giving up"
        else:
            outcome = f"next try in {failure.retry_at - now:g}s (at {failure.retry_at:.3f})"
        if failure.repeated:
            log.warning(
                "%s failed again (attempt %d of %d), %s: %s",
                what,
                failure.attempts,
                limit,
                outcome,
                error_text(error),
            )
        else:
            log.error(
                "%s failed (attempt %d of %d), %s", what, failure.attempts, limit, outcome, exc_info=error
            )

    def _give_up(self, what: str, step: Callable[[Session, bool], T]) -> T | None:
        """Run a give-up step; should what follows an end (health, rollback, new instances) raise too,
        end the deployment without it rather than leave it hanging."""
        try:
            return in_transaction(self.database, lambda s: step(s, True))
        except Exception:
            log.exception(
                "%s: ending the deployment failed; ending it without rollback or new instances", what
            )
        try:
            return in_transaction(self.database, lambda s: step(s, False))
        except Exception:
            log.exception("%s: ending the deployment failed again; trying again later", what)
            return None

    def next_due(self) -> float | None:
        return in_transaction(self.database, next_due, write=False)

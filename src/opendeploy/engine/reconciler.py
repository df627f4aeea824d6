"""The reconciler: find the deployments and timers that are due, and advance each in its own transaction.

A deployment is due when ``engine_due_at`` has passed (something changed, or a wait ended) or when it is
still Created (a safety net in case the wake-up that should have started it was lost). A timer is due
when its ``due_at`` has passed. Rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED``, so several
server replicas sharing one PostgreSQL database never work on the same row at once (SQLite has one
writer at a time anyway). A deployment whose step fails is retried a little later, not in a hot loop.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from opendeploy.domain.statuses import DeploymentStatus
from opendeploy.engine import event_timeouts, host_commands, server_in_place, stop
from opendeploy.engine.transactions import in_transaction
from opendeploy.settings import Settings
from opendeploy.store.blob_store import blob_store_for
from opendeploy.store.db import Database
from opendeploy.store.models import Deployment, HostCommand, Revision, Timer

log = logging.getLogger(__name__)

BATCH = 100
STOPPABLE = frozenset({DeploymentStatus.CREATED, DeploymentStatus.IN_PROGRESS})
RETRY_AFTER_ERROR = 5.0


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
    if deployment.stop_requested_at is not None and deployment.status in STOPPABLE:
        stop.continue_stop(session, deployment, now, settings)
    elif deployment.status == DeploymentStatus.CREATED:
        server_in_place.start(session, deployment, now, settings)
    elif deployment.status == DeploymentStatus.IN_PROGRESS:
        server_in_place.dispatch(session, deployment, None, now, settings)
    return True


def _postpone(session: Session, deployment_id: str, until: float) -> None:
    session.execute(update(Deployment).where(Deployment.id == deployment_id).values(engine_due_at=until))


def _due_timers(session: Session, now: float) -> list[int]:
    return list(
        session.scalars(select(Timer.id).where(Timer.due_at <= now).order_by(Timer.due_at).limit(BATCH))
    )


def fire_timer(session: Session, timer_id: int, now: float, settings: Settings) -> bool:
    """Act on one due timer; True if it was acted on (False: gone, not due, or held by another step)."""
    timer = session.get(Timer, timer_id)
    if timer is None or timer.due_at > now:
        return False
    if timer.host_command_id is None:
        log.warning("dropping timer %s of unknown kind %r", timer.id, timer.kind)
        session.delete(timer)
        return True
    # Lock the command before the timer: completions lock in that order too, so the two never deadlock.
    command = session.scalar(
        select(HostCommand)
        .where(HostCommand.id == timer.host_command_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if command is None:
        return False
    timer = session.scalar(
        select(Timer)
        .where(Timer.id == timer_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if timer is None or timer.due_at > now:
        return False
    host_commands.fire_command_timer(session, timer, command, now, settings.engine)
    return True


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
            if status == DeploymentStatus.CREATED:
                self._prepare(deployment_id)
            self._advance(deployment_id, now)
        timers = in_transaction(self.database, lambda s: _due_timers(s, now), write=False)
        for timer_id in timers:
            self._fire(timer_id, now)
        return len(deployments), len(timers)

    def _fire(self, timer_id: int, now: float) -> None:
        try:
            in_transaction(self.database, lambda s: fire_timer(s, timer_id, now, self.settings))
        except Exception:
            log.exception("timer %s failed; retrying in %gs", timer_id, RETRY_AFTER_ERROR)
            in_transaction(
                self.database,
                lambda s: s.execute(
                    update(Timer).where(Timer.id == timer_id).values(due_at=now + RETRY_AFTER_ERROR)
                ),
            )

    def _prepare(self, deployment_id: str) -> None:
        """Before a deployment starts, learn its events' run times from its bundle (outside any
        transaction: reading a bundle may take a moment)."""

        def location(session: Session) -> dict[str, Any] | None:
            deployment = session.get(Deployment, deployment_id)
            if deployment is None or deployment.status != DeploymentStatus.CREATED:
                return None
            if deployment.event_timeouts is not None or deployment.revision_id is None:
                return None
            revision = session.get(Revision, deployment.revision_id)
            return revision.location if revision is not None else {}

        found = in_transaction(self.database, location, write=False)
        if found is None:
            return
        timeouts = event_timeouts.for_revision(
            blob_store_for(self.settings.data_dir),
            found,
            server_in_place.lifecycle_events(),
            self.settings.engine.event_timeout_grace,
        )
        in_transaction(
            self.database,
            lambda s: s.execute(
                update(Deployment).where(Deployment.id == deployment_id).values(event_timeouts=timeouts)
            ),
        )

    def _advance(self, deployment_id: str, now: float) -> int:
        try:
            return int(in_transaction(self.database, lambda s: advance(s, deployment_id, now, self.settings)))
        except Exception:
            log.exception("advancing deployment %s failed; retrying in %gs", deployment_id, RETRY_AFTER_ERROR)
            in_transaction(self.database, lambda s: _postpone(s, deployment_id, now + RETRY_AFTER_ERROR))
            return 0

    def next_due(self) -> float | None:
        return in_transaction(self.database, next_due, write=False)

"""Persistent timers by kind: ``schedule`` one, ``@timer_kind`` registers what firing it does.

Every deadline the engine keeps is a ``Timer`` row (``store.models.timers``) with a ``kind``; the
reconciler fires a due one through the handler registered for its kind (``fire``). A kind with no handler
is an error like any other failing step: recorded on the timer (``attempts``, ``last_error``), retried
with backoff, and after the last attempt the timer's deployment ends Failed with INTERNAL_ERROR
(``reconciler``'s retry policy) — never dropped unseen.

Lock order, declared once per kind: a host command's timers (``host_command=True``) lock the command
before the timer, as completions and stops do (command, then timer, then deployment), so the two never
deadlock; the handler finds the locked command with ``session.get``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from opendeploy.settings import Settings
from opendeploy.store.models import HostCommand, Timer
from opendeploy.store.prepared import Prepared

TimerHandler = Callable[..., None]  # (session, timer, now, settings[, observed])
# What a kind looks at outside any transaction before it fires (an alarm source, say): given the timer
# as read just before, a callable that does the looking, or None when there is nothing to look at.
Observer = Callable[[Session, Timer, float, Settings], Callable[[], Any] | None]


@dataclass(frozen=True)
class TimerKind:
    """A kind of timer: its name (``Timer.kind``), what firing it does, and what it locks first."""

    name: str
    handler: TimerHandler
    host_command: bool = False
    """The timer is a host command's deadline: lock the command (skipping one held) before the timer."""
    observe: Observer | None = None
    """Outside systems to look at first: the reconciler runs what it returns with no transaction open
    (network calls never hold the database) and hands the result to the handler as ``observed``."""


TIMER_KINDS: dict[str, TimerKind] = {}
# The modules that register timer kinds, imported on first use (they build on engine modules that
# schedule timers).
TIMER_MODULES = (
    "opendeploy.engine.host_commands",
    "opendeploy.engine.runners.traffic",
    "opendeploy.engine.alarm_monitoring",
)


class UnknownTimerKind(LookupError):
    """No handler is registered for a timer's kind."""


def timer_kind(
    name: str, *, host_command: bool = False, observe: Observer | None = None
) -> Callable[[TimerHandler], TimerHandler]:
    """Register the decorated function as what firing a timer of kind ``name`` does; with ``observe``,
    it is called with a fifth argument, what the observation found."""

    def register(handler: TimerHandler) -> TimerHandler:
        if name in TIMER_KINDS and TIMER_KINDS[name].handler is not handler:
            raise ValueError(f"a handler is already registered for timers of kind {name!r}")
        TIMER_KINDS[name] = TimerKind(name, handler, host_command, observe)
        return handler

    return register


@cache
def _load() -> None:
    for module in TIMER_MODULES:
        importlib.import_module(module)


def kind_of(name: str) -> TimerKind:
    """The registered kind ``name``; ``UnknownTimerKind`` if there is none."""
    _load()
    kind = TIMER_KINDS.get(name)
    if kind is None:
        raise UnknownTimerKind(f"no handler is registered for timers of kind {name!r}")
    return kind


def schedule(
    session: Session,
    kind: str,
    due_at: float,
    *,
    deployment_id: str | None,
    payload: dict[str, Any] | None = None,
    host_command_id: int | None = None,
    now: float,
) -> Timer:
    """A new timer of ``kind`` (a registered one) due at ``due_at``, in the caller's transaction."""
    kind_of(kind)
    timer = Timer(
        kind=kind,
        due_at=due_at,
        payload=payload or {},
        deployment_id=deployment_id,
        host_command_id=host_command_id,
        created_at=now,
    )
    session.add(timer)
    session.flush()
    return timer


def observation(session: Session, timer_id: int, now: float, settings: Settings) -> Callable[[], Any] | None:
    """What to look at before firing the due timer ``timer_id`` (its kind's ``observe``), if anything."""
    timer = session.get(Timer, timer_id)
    if timer is None or timer.due_at > now:
        return None
    kind = kind_of(timer.kind)
    return kind.observe(session, timer, now, settings) if kind.observe is not None else None


# Prepared (``store.prepared``): it runs at every lifecycle event's end.
_PULL_FORWARD = Prepared(
    update(Timer)
    .where(
        Timer.kind == bindparam("b_kind"),
        Timer.deployment_id == bindparam("b_deployment"),
        Timer.due_at > bindparam("b_due"),
    )
    .values(due_at=bindparam("b_due"))
)


def pull_forward(session: Session, kind: str, deployment_id: str, due_at: float) -> None:
    """Make the deployment's timers of ``kind`` due no later than ``due_at``."""
    _PULL_FORWARD.execute(
        session.connection(), {"b_kind": kind, "b_deployment": deployment_id, "b_due": due_at}
    )


def fire(session: Session, timer_id: int, now: float, settings: Settings, observed: Any = None) -> bool:
    """Act on one due timer; True if it was acted on (False: gone, not due, or held by another step).
    Raises ``UnknownTimerKind`` for a kind with no handler (the retry policy records it on the timer)."""
    timer = session.get(Timer, timer_id)
    if timer is None or timer.due_at > now:
        return False
    kind = kind_of(timer.kind)
    if kind.host_command:
        if timer.host_command_id is None:
            raise ValueError(f"timer {timer.id} of kind {timer.kind!r} names no host command")
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
    failed_before = timer.attempts
    if kind.observe is not None:
        kind.handler(session, timer, now, settings, observed)
    else:
        kind.handler(session, timer, now, settings)
    if failed_before:  # a timer its handler keeps (none does yet) starts a fresh count
        session.execute(update(Timer).where(Timer.id == timer_id).values(attempts=0, last_error=None))
    return True

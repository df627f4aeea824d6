"""Who runs a lifecycle event, as the engine sees it: one runner per ``appspec.lifecycle_events.EventRunner``.

The event catalogue says who runs each event (an agent, the server through a load balancer, a hook
function); ``engine.target_progress`` hands a target's next event to the runner registered for that kind.
Agents run most events (``runners.agent``: a host command per event); the server runs BlockTraffic and
AllowTraffic itself through the load balancers (``runners.traffic``). A kind with no runner yet (hook
functions) is not an error of the deployment's making: the target fails with a message saying so (no
strategy produces such events until their runner exists).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from sqlalchemy.orm import Session

from opendeploy.appspec.lifecycle_events import EventRunner
from opendeploy.settings import EngineSettings


@dataclass(frozen=True)
class EventStart:
    """One target's lifecycle event to start: the rows it is recorded in, and the host it concerns."""

    target_id: int
    host: str
    event_id: int
    event_name: str
    position: int


class Runner(Protocol):
    """Starts lifecycle events of one kind; their end comes back through ``target_progress.event_ended``."""

    def start(
        self,
        session: Session,
        deployment_id: str,
        events: Sequence[EventStart],
        now: float,
        settings: EngineSettings,
    ) -> None: ...


# The runners this server has, imported on first use (they build on engine modules that use this one).
RUNNER_MODULES = ("opendeploy.engine.runners.agent", "opendeploy.engine.runners.traffic")
_RUNNERS: dict[EventRunner, Runner] = {}


def register(kind: EventRunner, runner: Runner) -> Runner:
    if kind in _RUNNERS and _RUNNERS[kind] is not runner:
        raise ValueError(f"a runner is already registered for {kind} events")
    _RUNNERS[kind] = runner
    return runner


@cache
def _load() -> None:
    for name in RUNNER_MODULES:
        importlib.import_module(name)


def runner_for(kind: EventRunner) -> Runner | None:
    """The runner of ``kind`` events, if this server has one."""
    _load()
    return _RUNNERS.get(kind)

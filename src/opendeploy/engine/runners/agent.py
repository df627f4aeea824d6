"""The agent runner: a lifecycle event run on an instance is a host command its agent picks up
(``engine.host_commands``: issue, deliver, acknowledge, complete, deadlines)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from opendeploy.appspec.lifecycle_events import EventRunner
from opendeploy.engine import host_commands
from opendeploy.engine.runners import EventStart, register
from opendeploy.settings import EngineSettings


class AgentRunner:
    def start(
        self,
        session: Session,
        deployment_id: str,
        events: Sequence[EventStart],
        now: float,
        settings: EngineSettings,
    ) -> None:
        host_commands.issue(
            session,
            deployment_id,
            [(e.target_id, e.host, e.event_id, e.event_name, e.position) for e in events],
            now,
            settings,
        )


AGENT_RUNNER = register(EventRunner.AGENT, AgentRunner())

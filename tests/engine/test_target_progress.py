"""What comes next for a target (``engine.target_progress``): each next event goes to the runner the
catalogue names; an event no runner can run fails its target with a message saying so."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from test_engine_retries import ARN, T0, _new_deployment, _read, _run_events, database, settings

from opendeploy.appspec.lifecycle_events import DOWNLOAD_BUNDLE, EventRunner, event_runner
from opendeploy.engine import target_progress
from opendeploy.engine.reconciler import Reconciler
from opendeploy.settings import Settings
from opendeploy.store.db import Database
from opendeploy.store.models import DeploymentTarget, HostCommand, LifecycleEventRecord

__all__ = ["database", "settings"]  # the fixtures, shared with the retry tests


def test_events_in_place_go_to_the_agent(database: Database, settings: Settings) -> None:
    deployment_id = _new_deployment(database, ["a"])
    reconciler = Reconciler(database, settings)
    reconciler.run_once(now=T0)
    _run_events(database, settings, "a", 7, T0 + 1)
    reconciler.run_once(now=T0 + 2)
    assert _read(database, deployment_id).status == "Succeeded"
    with database.transaction(write=False) as session:
        commands = session.scalars(select(HostCommand.command_name).order_by(HostCommand.id)).all()
    assert len(commands) == 7  # every in-place event was a host command


def test_an_event_without_a_runner_fails_its_target_with_a_message(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def runner(platform: str, event: str) -> EventRunner:
        return EventRunner.HOOK_FUNCTION if event == DOWNLOAD_BUNDLE else event_runner(platform, event)

    monkeypatch.setattr(target_progress, "event_runner", runner)
    deployment_id = _new_deployment(database, ["a"])
    reconciler = Reconciler(database, settings)
    reconciler.run_once(now=T0)
    _run_events(database, settings, "a", 1, T0 + 1)  # ApplicationStop; DownloadBundle cannot run
    reconciler.run_once(now=T0 + 2)

    deployment = _read(database, deployment_id)
    assert deployment.status == "Failed"
    with database.transaction(write=False) as session:
        target = session.scalar(
            select(DeploymentTarget).where(DeploymentTarget.deployment_id == deployment_id)
        )
        assert target is not None
        assert (target.status, target.target_arn) == ("Failed", ARN + "a")
        events = session.scalars(
            select(LifecycleEventRecord)
            .where(LifecycleEventRecord.deployment_target_id == target.id)
            .order_by(LifecycleEventRecord.position)
        ).all()
        statuses = [(event.name, event.status) for event in events]
        assert statuses[:3] == [
            ("ApplicationStop", "Succeeded"),
            ("DownloadBundle", "Failed"),
            ("BeforeInstall", "Skipped"),
        ]
        assert "no runner for HookFunction events" in (events[1].diagnostics_message or "")
        assert (
            session.scalar(select(HostCommand.id).where(HostCommand.command_name == DOWNLOAD_BUNDLE)) is None
        )

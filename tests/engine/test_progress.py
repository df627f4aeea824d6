"""A deployment's progress through its strategy, kept on the deployment (``engine.progress``)."""

from __future__ import annotations

from test_engine_retries import T0, _new_deployment, _read, database, settings

from opendeploy.engine.progress import Progress, progress_of, record_progress
from opendeploy.engine.reconciler import Reconciler
from opendeploy.engine.strategies.server_in_place import ROLLOUT
from opendeploy.settings import Settings
from opendeploy.store.db import Database
from opendeploy.store.models import Deployment

__all__ = ["database", "settings"]  # the fixtures, shared with the retry tests


def test_nothing_recorded_is_no_phase_at_step_zero() -> None:
    assert progress_of(Deployment()) == Progress()


def test_progress_survives_a_new_session_as_it_was_written(database: Database, settings: Settings) -> None:
    deployment_id = _new_deployment(database, ["a"])
    progress = Progress(
        phase="TrafficShifting",
        step=3,
        traffic_percent=40.0,
        original_targets=("blue-1", "blue-2"),
        replacement_targets=("green-1",),
        extra={"intervalMinutes": 5},
    )
    with database.transaction() as session:
        deployment = session.get(Deployment, deployment_id)
        assert deployment is not None
        record_progress(deployment, progress)
    assert progress_of(_read(database, deployment_id)) == progress  # as a restarted server reads it


def test_an_in_place_deployment_records_its_phase_at_start(database: Database, settings: Settings) -> None:
    deployment_id = _new_deployment(database, ["a"])
    Reconciler(database, settings).run_once(now=T0)
    deployment = _read(database, deployment_id)
    assert deployment.status == "InProgress"
    assert progress_of(deployment) == Progress(phase=ROLLOUT)


def test_fixed_values_are_kept_by_every_later_record(database: Database, settings: Settings) -> None:
    """What a deployment decided once (which group of a target group pair is the original one) survives
    the records of its later phases, which do not repeat it, and a restart."""
    deployment_id = _new_deployment(database, ["a"])
    with database.transaction() as session:
        deployment = session.get(Deployment, deployment_id)
        assert deployment is not None
        record_progress(deployment, Progress(phase="Install", fixed={"pairs": {"a+b": "b"}}))
        record_progress(deployment, Progress(phase="Shift", step=1, extra={"shiftStartedAt": T0}))
    assert progress_of(_read(database, deployment_id)) == Progress(
        phase="Shift", step=1, extra={"shiftStartedAt": T0}, fixed={"pairs": {"a+b": "b"}}
    )
    with database.transaction() as session:
        deployment = session.get(Deployment, deployment_id)
        assert deployment is not None
        record_progress(deployment, Progress(phase="Done", fixed={"other": 1}))
    assert progress_of(_read(database, deployment_id)).fixed == {"pairs": {"a+b": "b"}, "other": 1}

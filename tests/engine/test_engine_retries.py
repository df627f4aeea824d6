"""The engine's retry policy, in process on a virtual clock (``Reconciler.run_once(now=…)``), on SQLite and
PostgreSQL: a step that keeps raising — advancing a deployment, or firing a timer — is tried again after
5 s, 10 s, 20 s … up to the cap; the traceback is logged when the error is new, one line when it
repeats; after the last attempt the deployment ends Failed with INTERNAL_ERROR and the error in
``deploymentStatusMessages`` (as GetDeployment answers), through the one end transition (waiting work
called off, automatic rollback); a step that recovers in time starts a fresh count."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from opendeploy.api.codedeploy.deployments import get_deployment
from opendeploy.api.codedeploy.registry import OperationContext, Principal
from opendeploy.engine import deployment_end, host_commands, timers, wakeups
from opendeploy.engine.reconciler import Reconciler, retry_delay
from opendeploy.engine.strategies import server_in_place
from opendeploy.settings import EngineSettings, Settings
from opendeploy.store.db import Database, alembic_config
from opendeploy.store.models import (
    Application,
    Deployment,
    DeploymentGroup,
    DeploymentTarget,
    HostCommand,
    LifecycleEventRecord,
    OnPremisesInstance,
    OnPremisesInstanceTag,
    Revision,
    Timer,
)

ARN = "arn:aws:codedeploy:us-east-1:000000000000:instance/"
RECONCILER_LOG = "opendeploy.engine.reconciler"
# 5, 10, 20, 40, 40 seconds between the six attempts; the sixth failure is final.
ENGINE = EngineSettings(step_retry_base=5.0, step_retry_cap=40.0, step_max_attempts=6)
DELAYS = [5.0, 10.0, 20.0, 40.0, 40.0]
T0 = float(int(time.time()))


@pytest.fixture
def database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if backend == "postgresql":
        database = Database(request.getfixturevalue("postgres_databases").create())
    else:
        database = Database(f"sqlite:///{tmp_path / 'engine.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, engine=ENGINE)


# --- rows ---------------------------------------------------------------------------------------------


def _group(
    session: Any, instances: list[str], config: str = "CodeDeployDefault.OneAtATime"
) -> DeploymentGroup:
    tag = uuid.uuid4().hex[:8]
    for name in instances:
        session.add(
            OnPremisesInstance(
                name=name, iam_user_arn=f"arn:aws:iam::000000000000:user/{name}", register_time=1.0
            )
        )
        session.flush()
        session.add(OnPremisesInstanceTag(instance_name=name, key="fleet", value=tag))
    application = Application(
        id=str(uuid.uuid4()), name=f"app-{tag}", compute_platform="Server", create_time=1.0
    )
    session.add(application)
    group = DeploymentGroup(
        id=str(uuid.uuid4()),
        application_id=application.id,
        name="group",
        deployment_config_name=config,
        outdated_instances_strategy="IGNORE",
        termination_hook_enabled=False,
        create_time=1.0,
        update_time=1.0,
        on_premises_instance_tag_filters=[{"Key": "fleet", "Value": tag, "Type": "KEY_AND_VALUE"}],
    )
    session.add(group)
    session.flush()
    return group


def _deployment(session: Any, group: DeploymentGroup, *, status: str = "Created", **fields: Any) -> str:
    revision = Revision(
        id=str(uuid.uuid4()),
        application_id=group.application_id,
        location_key=uuid.uuid4().hex,
        revision_type="S3",
        location={"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "zip"}},
        register_time=1.0,
    )
    session.add(revision)
    session.flush()
    deployment = Deployment(
        id="d-" + uuid.uuid4().hex[:9].upper(),
        application_id=group.application_id,
        deployment_group_id=group.id,
        revision_id=revision.id,
        status=status,
        creator="user",
        compute_platform="Server",
        deployment_config_name=group.deployment_config_name,
        ignore_application_stop_failures=False,
        update_outdated_instances_only=False,
        file_exists_behavior="DISALLOW",
        create_time=T0 - 100 if status != "Created" else T0,
        updated_at=T0,
        instance_termination_wait_time_started=False,
        **fields,
    )
    session.add(deployment)
    session.flush()
    return deployment.id


def _new_deployment(database: Database, instances: list[str], **fields: Any) -> str:
    with database.transaction() as session:
        return _deployment(session, _group(session, instances), engine_due_at=T0, **fields)


def _read(database: Database, deployment_id: str) -> Deployment:
    with database.transaction(write=False) as session:
        deployment = session.get(Deployment, deployment_id)
        assert deployment is not None
        session.expunge(deployment)
        return deployment


def _api_view(database: Database, settings: Settings, deployment_id: str) -> dict[str, Any]:
    """What GetDeployment answers."""
    with database.transaction(write=False) as session:
        context = OperationContext(
            session=session,
            settings=settings,
            principal=Principal("AKIDEXAMPLE", "arn:aws:iam::000000000000:root", is_admin=True),
            now=time.time(),
            operation="GetDeployment",
        )
        return get_deployment(context, {"deploymentId": deployment_id})["deploymentInfo"]


def _failing(*errors: BaseException, then: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """A step that raises ``errors`` in turn, then calls ``then`` (or raises the last error for ever)."""
    calls = iter(errors)

    def step(*args: Any, **kwargs: Any) -> Any:
        error = next(calls, None)
        if error is None:
            if then is None:
                raise errors[-1]
            return then(*args, **kwargs)
        raise error

    return step


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == RECONCILER_LOG and r.exc_info]


def _run_events(database: Database, settings: Settings, host: str, count: int, now: float) -> None:
    for _ in range(count):
        with database.transaction() as session:
            delivered = host_commands.deliver_next(session, ARN + host, now, settings.engine).command
            assert delivered is not None
        with database.transaction() as session:
            command = host_commands.find_command(
                session, delivered.host_command_identifier, ARN + host, lock=True
            )
            assert host_commands.complete(
                session, command, command.host_command_identifier, "Succeeded", None, now, settings.engine
            )


# --- the policy ---------------------------------------------------------------------------------------


def test_the_delay_doubles_from_the_base_up_to_the_cap() -> None:
    assert [retry_delay(n, ENGINE) for n in range(1, 7)] == [5.0, 10.0, 20.0, 40.0, 40.0, 40.0]
    defaults = EngineSettings()
    assert [retry_delay(n, defaults) for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert defaults.step_max_attempts == 10
    assert retry_delay(10_000, defaults) == 300.0  # no overflow however long it has failed


# --- a failing deployment step ----------------------------------------------------------------------------


def test_a_failing_step_backs_off_then_the_deployment_fails_with_internal_error(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=RECONCILER_LOG)
    monkeypatch.setattr(server_in_place, "dispatch", _failing(RuntimeError("dispatch exploded")))
    deployment_id = _new_deployment(database, ["a"])
    reconciler = Reconciler(database, settings)

    now = T0
    for attempt, delay in enumerate(DELAYS, start=1):
        reconciler.run_once(now=now)
        deployment = _read(database, deployment_id)
        assert deployment.status == "Created"
        assert deployment.engine_attempts == attempt
        assert deployment.engine_last_error == "RuntimeError: dispatch exploded"
        assert deployment.engine_due_at == now + delay
        reconciler.run_once(now=now + delay - 1)  # not due yet: nothing is tried
        assert _read(database, deployment_id).engine_attempts == attempt
        now += delay

    reconciler.run_once(now=now)  # the sixth failure in a row is final
    deployment = _read(database, deployment_id)
    assert deployment.status == "Failed" and deployment.complete_time == now
    assert deployment.engine_due_at is None
    info = _api_view(database, settings, deployment_id)
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "INTERNAL_ERROR"
    assert "internal error" in info["errorInformation"]["message"]
    assert info["deploymentStatusMessages"] == [
        "The deployment server could not carry out this deployment's next step: it failed 6 times in a row, "
        "the last time with RuntimeError: dispatch exploded"
    ]

    reconciler.run_once(now=now + 3600)  # nothing is retried any more
    assert _read(database, deployment_id).engine_attempts == 6

    # One traceback (the first failure); each repeat is one line with the attempt and the next try.
    assert len(_tracebacks(caplog)) == 1
    repeats = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(repeats) == 5
    assert "attempt 2 of 6" in repeats[0] and "next try in 10s" in repeats[0]
    assert "attempt 6 of 6" in repeats[-1] and "giving up" in repeats[-1]
    assert any("ended Failed (INTERNAL_ERROR)" in r.getMessage() for r in caplog.records)


def test_changes_to_a_failing_deployment_do_not_cut_its_backoff_short(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Instances finishing (or a stop request) mark a deployment changed; while its step fails, the
    next try stays where the backoff put it, so a busy fleet cannot spend the attempts in a hot loop."""
    monkeypatch.setattr(server_in_place, "dispatch", _failing(RuntimeError("dispatch exploded")))
    deployment_id = _new_deployment(database, ["a"])
    reconciler = Reconciler(database, settings)
    reconciler.run_once(now=T0)
    assert _read(database, deployment_id).engine_due_at == T0 + DELAYS[0]
    with database.transaction() as session:
        wakeups.deployment_changed(session, deployment_id, T0 + 1)
    assert _read(database, deployment_id).engine_due_at == T0 + DELAYS[0]
    reconciler.run_once(now=T0 + 1)
    assert _read(database, deployment_id).engine_attempts == 1


def test_a_step_that_recovers_in_time_starts_a_fresh_count_and_a_new_error_logs_its_traceback(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=RECONCILER_LOG)
    errors = [RuntimeError("first"), RuntimeError("first"), KeyError("second")]
    monkeypatch.setattr(server_in_place, "dispatch", _failing(*errors, then=server_in_place.dispatch))
    deployment_id = _new_deployment(database, ["a", "b"])
    reconciler = Reconciler(database, settings)

    now = T0
    for delay in DELAYS[:3]:
        reconciler.run_once(now=now)
        assert _read(database, deployment_id).engine_due_at == now + delay
        now += delay
    assert _read(database, deployment_id).engine_last_error == "KeyError: 'second'"
    assert len(_tracebacks(caplog)) == 2  # the first error, and the other one when it appeared

    reconciler.run_once(now=now)  # the fourth attempt succeeds
    deployment = _read(database, deployment_id)
    assert deployment.status == "InProgress"
    assert (deployment.engine_attempts, deployment.engine_last_error) == (0, None)
    with database.transaction(write=False) as session:
        commands = session.scalars(
            select(HostCommand).where(HostCommand.deployment_id == deployment_id)
        ).all()
        assert [(c.host_identifier, c.command_name) for c in commands] == [(ARN + "a", "ApplicationStop")]

    # It fails again later: the count starts over (5 s, not the 40 s it had reached).
    monkeypatch.setattr(server_in_place, "dispatch", _failing(RuntimeError("again")))
    _run_events(database, settings, "a", 7, now + 1)  # instance a finishes: the engine is asked to look
    reconciler.run_once(now=now + 2)
    deployment = _read(database, deployment_id)
    assert deployment.engine_attempts == 1 and deployment.engine_due_at == now + 2 + 5.0


def test_when_what_follows_an_end_raises_too_the_deployment_still_ends(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Health, rollback and new instances are left out rather than leave the deployment hanging."""
    monkeypatch.setattr(server_in_place, "dispatch", _failing(RuntimeError("dispatch exploded")))
    monkeypatch.setattr(deployment_end, "deployment_ended", _failing(RuntimeError("rollback exploded")))
    deployment_id = _new_deployment(database, ["a"])
    reconciler = Reconciler(database, settings)
    now = T0
    for delay in DELAYS:
        reconciler.run_once(now=now)
        now += delay
    reconciler.run_once(now=now)
    deployment = _read(database, deployment_id)
    assert (deployment.status, deployment.error_code) == ("Failed", "INTERNAL_ERROR")
    assert deployment.engine_due_at is None


def test_an_internal_error_mid_deployment_calls_off_waiting_work_and_rolls_back(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two of four instances at a time: a has finished, b runs an event on its agent, c and d wait."""
    rollback_on_failure = {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}
    with database.transaction() as session:
        group = _group(session, ["a", "b", "c", "d"], config="CodeDeployDefault.HalfAtATime")
        _deployment(session, group, status="Succeeded", complete_time=T0 - 50)  # the group's revision
        deployment_id = _deployment(
            session, group, engine_due_at=T0, auto_rollback_configuration=rollback_on_failure
        )
    reconciler = Reconciler(database, settings)
    reconciler.run_once(now=T0)  # a and b start
    _run_events(database, settings, "a", 7, T0 + 1)  # a succeeds: the engine is asked to look
    with database.transaction() as session:
        running = host_commands.deliver_next(
            session, ARN + "b", T0 + 2, settings.engine
        ).command  # b's agent has one
        assert running is not None

    monkeypatch.setattr(server_in_place, "dispatch", _failing(RuntimeError("no dispatch today")))
    now = T0 + 3
    for delay in DELAYS:
        reconciler.run_once(now=now)
        now += delay
    reconciler.run_once(now=now)

    deployment = _read(database, deployment_id)
    assert (deployment.status, deployment.error_code) == ("Failed", "INTERNAL_ERROR")
    with database.transaction(write=False) as session:
        targets = dict(
            session.execute(
                select(DeploymentTarget.target_id, DeploymentTarget.status).where(
                    DeploymentTarget.deployment_id == deployment_id
                )
            ).all()
        )
        assert targets == {"a": "Succeeded", "b": "Failed", "c": "Skipped", "d": "Skipped"}
        b = session.scalar(
            select(DeploymentTarget).where(
                DeploymentTarget.deployment_id == deployment_id, DeploymentTarget.target_id == "b"
            )
        )
        assert b is not None and b.failure_cause == "internal"
        events = session.execute(
            select(LifecycleEventRecord.name, LifecycleEventRecord.status)
            .where(LifecycleEventRecord.deployment_target_id == b.id)
            .order_by(LifecycleEventRecord.position)
        ).all()
        assert [status for _, status in events] == ["InProgress"] + ["Skipped"] * 6
        # The event b's agent runs keeps its run deadline (it closes the event if the agent never
        # reports); every other timer of the deployment is gone.
        timers = session.execute(
            select(Timer.kind, Timer.host_command_id).where(Timer.deployment_id == deployment_id)
        ).all()
        assert [kind for kind, _ in timers] == [host_commands.EVENT_TIMEOUT_TIMER]
        # The automatic rollback, as for any failure.
        rollback = session.scalar(
            select(Deployment).where(Deployment.rollback_triggering_deployment_id == deployment_id)
        )
        assert rollback is not None and rollback.creator == "codeDeployRollback"
        assert deployment.rollback_deployment_id == rollback.id

    # b's agent reports its event later: it is recorded, and nothing more is issued to b.
    with database.transaction() as session:
        command = host_commands.find_command(session, running.host_command_identifier, ARN + "b", lock=True)
        assert host_commands.complete(
            session, command, command.host_command_identifier, "Succeeded", None, now + 1, settings.engine
        )
    with database.transaction(write=False) as session:
        pending = session.scalars(
            select(HostCommand).where(
                HostCommand.deployment_id == deployment_id, HostCommand.status != "Succeeded"
            )
        ).all()
        assert pending == []
        assert session.scalars(select(Timer).where(Timer.deployment_id == deployment_id)).all() == []


# --- a failing timer --------------------------------------------------------------------------------------


def _started(database: Database, settings: Settings, instances: list[str]) -> tuple[str, Timer]:
    """A deployment started at T0 whose first instance waits for its agent; and that event's start timer."""
    deployment_id = _new_deployment(database, instances)
    Reconciler(database, settings).run_once(now=T0)
    with database.transaction(write=False) as session:
        timer = session.scalar(select(Timer).where(Timer.deployment_id == deployment_id))
        assert timer is not None and timer.kind == host_commands.EVENT_START_TIMER
        session.expunge(timer)
    return deployment_id, timer


def _replace_handler(monkeypatch: pytest.MonkeyPatch, kind: str, handler: Callable[..., Any]) -> None:
    monkeypatch.setitem(timers.TIMER_KINDS, kind, dataclasses.replace(timers.kind_of(kind), handler=handler))


def test_a_timer_of_a_kind_without_a_handler_is_an_error_on_the_timer_not_dropped(
    database: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=RECONCILER_LOG)
    deployment_id, _ = _started(database, settings, ["a"])
    with database.transaction() as session:
        unknown = Timer(
            kind="no_such_kind", due_at=T0 + 1, payload={}, deployment_id=deployment_id, created_at=T0
        )
        session.add(unknown)
        session.flush()
        unknown_id = unknown.id
    reconciler = Reconciler(database, settings)
    reconciler.run_once(now=T0 + 1)
    with database.transaction(write=False) as session:
        row = session.get(Timer, unknown_id)
        assert row is not None
        assert (row.attempts, row.due_at) == (1, T0 + 1 + DELAYS[0])
        assert (
            row.last_error == "UnknownTimerKind: no handler is registered for timers of kind 'no_such_kind'"
        )
    now = T0 + 1
    for delay in DELAYS:
        now += delay
        reconciler.run_once(now=now)
    info = _api_view(database, settings, deployment_id)
    assert (info["status"], info["errorInformation"]["code"]) == ("Failed", "INTERNAL_ERROR")
    assert "no_such_kind timer" in info["deploymentStatusMessages"][0]


def test_a_failing_timer_backs_off_then_its_deployment_fails_with_internal_error(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=RECONCILER_LOG)
    deployment_id, timer = _started(database, settings, ["a"])
    assert timer.due_at == T0 + settings.engine.event_start_timeout
    _replace_handler(monkeypatch, host_commands.EVENT_START_TIMER, _failing(ValueError("timer exploded")))
    reconciler = Reconciler(database, settings)

    now = timer.due_at
    for attempt, delay in enumerate(DELAYS, start=1):
        reconciler.run_once(now=now)
        with database.transaction(write=False) as session:
            row = session.get(Timer, timer.id)
            assert row is not None
            assert (row.attempts, row.last_error, row.due_at) == (
                attempt,
                "ValueError: timer exploded",
                now + delay,
            )
        assert _read(database, deployment_id).status == "InProgress"
        now += delay
    reconciler.run_once(now=now)

    with database.transaction(write=False) as session:
        assert session.get(Timer, timer.id) is None
        assert session.scalars(select(Timer).where(Timer.deployment_id == deployment_id)).all() == []
        commands = session.scalars(
            select(HostCommand).where(HostCommand.deployment_id == deployment_id)
        ).all()
        assert [(c.command_name, c.status) for c in commands] == [("ApplicationStop", "Failed")]
        target = session.scalar(
            select(DeploymentTarget).where(DeploymentTarget.deployment_id == deployment_id)
        )
        assert target is not None and (target.status, target.failure_cause) == ("Failed", "internal")
    info = _api_view(database, settings, deployment_id)
    assert (info["status"], info["errorInformation"]["code"]) == ("Failed", "INTERNAL_ERROR")
    assert info["deploymentStatusMessages"] == [
        "The deployment server could not act on this deployment's lifecycle_event_start timer: it failed 6 "
        "times in a row, the last time with ValueError: timer exploded"
    ]
    assert len(_tracebacks(caplog)) == 1
    reconciler.run_once(now=now + 3600)
    assert _read(database, deployment_id).status == "Failed"


def test_a_timer_that_recovers_in_time_does_what_it_is_for(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment_id, timer = _started(database, settings, ["a"])
    real = timers.kind_of(host_commands.EVENT_START_TIMER).handler
    _replace_handler(
        monkeypatch, host_commands.EVENT_START_TIMER, _failing(OSError("flaky"), OSError("flaky"), then=real)
    )
    reconciler = Reconciler(database, settings)
    now = timer.due_at
    for delay in DELAYS[:2]:
        reconciler.run_once(now=now)
        now += delay
    reconciler.run_once(now=now)  # the third try works: the agent never picked the event up
    reconciler.run_once(now=now)  # … so the engine ends the deployment the usual way
    with database.transaction(write=False) as session:
        assert session.get(Timer, timer.id) is None
    deployment = _read(database, deployment_id)
    assert (deployment.status, deployment.error_code) == ("Failed", "AGENT_ISSUE")
    assert deployment.engine_attempts == 0


# --- the migration ----------------------------------------------------------------------------------------


def test_the_retry_columns_migration_goes_down_and_up_again(database: Database) -> None:
    from alembic import command

    def columns(table: str) -> set[str]:
        return {column["name"] for column in inspect(database.engine).get_columns(table)}

    assert {"engine_attempts", "engine_last_error"} <= columns("deployments")
    assert {"attempts", "last_error"} <= columns("timers")
    command.downgrade(alembic_config(database.engine), "0005_fleet")
    assert not {"engine_attempts", "engine_last_error"} & columns("deployments")
    assert not {"attempts", "last_error"} & columns("timers")
    database.migrate()
    assert {"engine_attempts", "engine_last_error"} <= columns("deployments")


# --- through a real server ------------------------------------------------------------------------------


def test_a_server_gives_up_a_step_that_keeps_failing_and_says_why_through_the_api(
    backend: str, server_factory: Callable[..., Any]
) -> None:
    """A deployment group whose stored tag filters were damaged (not a list) makes the deployment's
    first step raise every time: the server backs off, then ends the deployment Failed with
    INTERNAL_ERROR, and GetDeployment (boto3) says what went wrong."""
    retries = ["--step-retry-base", "0.2", "--step-retry-cap", "0.4", "--step-max-attempts", "3"]
    server = server_factory(backend, extra_args=retries)
    codedeploy = server.client("codedeploy")
    codedeploy.create_application(applicationName="damaged")
    codedeploy.create_deployment_group(
        applicationName="damaged",
        deploymentGroupName="group",
        serviceRoleArn="arn:aws:iam::111122223333:role/CodeDeploy",
        onPremisesInstanceTagFilters=[{"Key": "fleet", "Value": "x", "Type": "KEY_AND_VALUE"}],
    )
    database = Database(server.database_url or f"sqlite:///{server.data_dir / 'opendeploy.db'}")
    try:
        with database.transaction() as session:
            group = session.scalar(select(DeploymentGroup).where(DeploymentGroup.name == "group"))
            assert group is not None
            group.on_premises_instance_tag_filters = 17  # type: ignore[assignment]
    finally:
        database.dispose()
    deployment_id = codedeploy.create_deployment(
        applicationName="damaged",
        deploymentGroupName="group",
        revision={"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "zip"}},
    )["deploymentId"]

    deadline = time.monotonic() + 60
    while (info := codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"])["status"] not in (
        "Failed",
        "Succeeded",
        "Stopped",
    ):
        assert time.monotonic() < deadline, info
        time.sleep(0.1)
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "INTERNAL_ERROR"
    (message,) = info["deploymentStatusMessages"]
    assert "failed 3 times in a row" in message and "TypeError" in message
    assert server.log_text().count("Traceback") == 1  # once, not at every attempt

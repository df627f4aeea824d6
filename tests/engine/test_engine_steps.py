"""The engine's steps against a real database in this process: targets chosen by tags, a deployment whose
wake-up was lost, a restart between an instance finishing and the next dispatch, and the agent's
diagnostics as the API shows them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendeploy.domain.statuses import LifecycleErrorCode
from opendeploy.engine import diagnostics, host_commands
from opendeploy.engine.reconciler import Reconciler
from opendeploy.engine.targets import group_instances
from opendeploy.settings import Settings
from opendeploy.store.db import Database
from opendeploy.store.models import (
    Application,
    Deployment,
    DeploymentGroup,
    DeploymentTarget,
    HostCommand,
    OnPremisesInstance,
    OnPremisesInstanceTag,
    Revision,
)

ARN = "arn:aws:codedeploy:us-east-1:000000000000:instance/"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'engine.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def _instance(session: Any, name: str, tags: dict[str, str], *, registered: bool = True) -> None:
    session.add(
        OnPremisesInstance(
            name=name,
            iam_user_arn=f"arn:aws:iam::000000000000:user/{name}",
            register_time=time.time(),
            deregister_time=None if registered else time.time(),
        )
    )
    session.flush()
    session.add_all(OnPremisesInstanceTag(instance_name=name, key=k, value=v) for k, v in tags.items())


def _group(session: Any, **selection: Any) -> DeploymentGroup:
    application = Application(
        id=str(uuid.uuid4()), name=f"app-{uuid.uuid4().hex[:8]}", compute_platform="Server", create_time=1.0
    )
    session.add(application)
    group = DeploymentGroup(
        id=str(uuid.uuid4()),
        application_id=application.id,
        name="group",
        deployment_config_name="CodeDeployDefault.OneAtATime",
        outdated_instances_strategy="UPDATE",
        termination_hook_enabled=False,
        create_time=1.0,
        update_time=1.0,
        **selection,
    )
    session.add(group)
    session.flush()
    return group


def _deployment(session: Any, group: DeploymentGroup, *, due: float | None) -> str:
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
        status="Created",
        creator="user",
        compute_platform="Server",
        deployment_config_name=group.deployment_config_name,
        ignore_application_stop_failures=False,
        update_outdated_instances_only=False,
        file_exists_behavior="DISALLOW",
        create_time=time.time(),
        updated_at=time.time(),
        instance_termination_wait_time_started=False,
        engine_due_at=due,
    )
    session.add(deployment)
    session.flush()
    return deployment.id


def test_ec2_and_on_premises_tag_filters_both_select_registered_instances(database: Database) -> None:
    """Decision: no EC2 here, so EC2 tag filters select registered instances by their tags too; a
    group's instances are the union of both selections; deregistered instances are never selected."""
    with database.transaction() as session:
        _instance(session, "web-1", {"role": "web"})
        _instance(session, "web-2", {"role": "web", "Name": "GRP-2a"})
        _instance(session, "db-1", {"role": "db", "Name": "GRP-XYZ-a"})
        _instance(session, "web-old", {"role": "web"}, registered=False)
        by_ec2 = _group(session, ec2_tag_filters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}])
        by_both = _group(
            session,
            ec2_tag_filters=[{"Key": "Name", "Value": "GRP-*a", "Type": "KEY_AND_VALUE"}],
            on_premises_instance_tag_filters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
        )
        by_tag_set = _group(
            session,
            on_premises_tag_set={
                "onPremisesTagSetList": [
                    [{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
                    [{"Key": "Name", "Type": "KEY_ONLY"}],
                ]
            },
        )
        by_nothing = _group(session)
        assert group_instances(session, by_ec2) == ("web-1", "web-2")
        assert group_instances(session, by_both) == ("db-1", "web-1", "web-2")
        assert group_instances(session, by_tag_set) == ("web-2",)  # AND across tag groups
        assert group_instances(session, by_nothing) == ()


def _run_events(database: Database, settings: Settings, host: str, count: int) -> None:
    for _ in range(count):
        with database.transaction() as session:
            delivered = host_commands.deliver_next(session, host, time.time(), settings.engine).command
            assert delivered is not None
        with database.transaction() as session:
            command = host_commands.find_command(session, delivered.host_command_identifier, host, lock=True)
            assert host_commands.complete(
                session,
                command,
                command.host_command_identifier,
                "Succeeded",
                None,
                time.time(),
                settings.engine,
            )


def test_a_created_deployment_whose_wake_up_was_lost_is_started_by_the_sweep(
    database: Database, settings: Settings
) -> None:
    with database.transaction() as session:
        _instance(session, "a", {"fleet": "x"})
        _instance(session, "b", {"fleet": "x"})
        group = _group(session, on_premises_instance_tag_filters=[{"Key": "fleet", "Type": "KEY_ONLY"}])
        deployment_id = _deployment(session, group, due=None)
    assert Reconciler(database, settings).run_once() >= 1
    with database.transaction(write=False) as session:
        deployment = session.get(Deployment, deployment_id)
        assert deployment.status == "InProgress" and deployment.start_time is not None
        statuses = dict(
            session.execute(
                select(DeploymentTarget.target_id, DeploymentTarget.status).where(
                    DeploymentTarget.deployment_id == deployment_id
                )
            ).all()
        )
        assert statuses == {"a": "InProgress", "b": "Pending"}  # OneAtATime, by name
        commands = session.scalars(
            select(HostCommand).where(HostCommand.deployment_id == deployment_id)
        ).all()
        assert [(c.host_identifier, c.command_name) for c in commands] == [(ARN + "a", "ApplicationStop")]


def test_a_restart_between_an_instance_finishing_and_the_next_dispatch_loses_nothing(
    database: Database, settings: Settings
) -> None:
    with database.transaction() as session:
        _instance(session, "a", {"fleet": "x"})
        _instance(session, "b", {"fleet": "x"})
        group = _group(session, on_premises_instance_tag_filters=[{"Key": "fleet", "Type": "KEY_ONLY"}])
        deployment_id = _deployment(session, group, due=time.time())
    Reconciler(database, settings).run_once()
    _run_events(database, settings, ARN + "a", 7)  # instance a finishes; the engine has not looked yet
    with database.transaction(write=False) as session:
        deployment = session.get(Deployment, deployment_id)
        assert deployment.engine_due_at is not None  # the finish asked for the engine, durably
    Reconciler(database, settings).run_once()  # "after a restart": a fresh reconciler picks it up
    _run_events(database, settings, ARN + "b", 7)
    Reconciler(database, settings).run_once()
    with database.transaction(write=False) as session:
        deployment = session.get(Deployment, deployment_id)
        assert deployment.status == "Succeeded" and deployment.complete_time is not None
        assert deployment.engine_due_at is None


def _payload(**values: Any) -> dict[str, str]:
    document = {"error_code": 0, "script_name": "", "message": "Succeeded: ", "log": ""} | values
    return {"Format": "JSON", "Payload": json.dumps(document)}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (1, LifecycleErrorCode.SCRIPT_MISSING),
        (2, LifecycleErrorCode.SCRIPT_NOT_EXECUTABLE),
        (3, LifecycleErrorCode.SCRIPT_TIMED_OUT),
        (4, LifecycleErrorCode.SCRIPT_FAILED),
        (5, LifecycleErrorCode.UNKNOWN_ERROR),
        (6, LifecycleErrorCode.UNKNOWN_ERROR),  # outputs left open: no API name of its own
        (7, LifecycleErrorCode.UNKNOWN_ERROR),  # failed after an agent restart
        ("Unknown", LifecycleErrorCode.UNKNOWN_ERROR),  # the AWS agent's minimal fallback
        (0, LifecycleErrorCode.UNKNOWN_ERROR),  # a Failed completion is never a Success
    ],
)
def test_agent_error_codes_map_to_the_apis_names(code: Any, expected: LifecycleErrorCode) -> None:
    result = diagnostics.from_agent(_payload(error_code=code, message="m"), succeeded=False)
    assert result.error_code is expected


def test_success_diagnostics_read_as_aws_shows_them() -> None:
    assert diagnostics.from_agent(_payload(), succeeded=True) == diagnostics.EventDiagnostics(
        LifecycleErrorCode.SUCCESS, "", "Succeeded", ""
    )
    noop = diagnostics.from_agent(_payload(message="Succeeded: CompletedNoopCommand"), succeeded=True)
    assert noop.message == "Succeeded: CompletedNoopCommand"
    assert diagnostics.from_agent(None, succeeded=True).message == "Succeeded"


def test_the_log_tail_keeps_the_last_4_kib() -> None:
    log = "".join(f"[stdout]line {i}\n" for i in range(1000))
    result = diagnostics.from_agent(_payload(error_code=4, log=log), succeeded=False)
    assert len(result.log_tail) == 4096 and log.endswith(result.log_tail)


@pytest.mark.parametrize("depth", [100, 5000])
def test_diagnostics_nested_too_deeply_are_read_as_not_json_not_a_server_fault(depth: int) -> None:
    envelope = {"Format": "JSON", "Payload": "[" * depth + "]" * depth}
    result = diagnostics.from_agent(envelope, succeeded=False)
    assert result.error_code is LifecycleErrorCode.UNKNOWN_ERROR
    assert "are not a JSON object" in result.message

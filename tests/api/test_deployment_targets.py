"""A deployment's targets and lifecycle events through boto3: GetDeploymentTarget, ListDeploymentTargets,
BatchGetDeploymentTargets and the deprecated instance calls, on SQLite and PostgreSQL.

Targets are put on record by the engine, which comes in a later issue; ``EngineRecords`` writes them
the way the engine will — through ``opendeploy.store.deployment_targets.add_target`` into the server's
own database — so these tests read real rows through the real API.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opendeploy.store.db import Database
from opendeploy.store.deployment_targets import add_target
from opendeploy.store.models import Deployment, DeploymentTarget, LifecycleEventRecord
from support.names import unique
from support.server import ServerProcess, wait_for

SERVER_EVENTS = ("ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall")
S3_REVISION = {
    "revisionType": "S3",
    "s3Location": {"bucket": "bucket", "key": "app.zip", "bundleType": "zip"},
}
ROLE = "arn:aws:iam::111122223333:role/CodeDeployServiceRole"
FAILURE_MESSAGE = "Script at specified location: scripts/install_dependencies failed with exit code 1"


class EngineRecords:
    """Writes into a server's database what the deployment engine records (targets, events, statuses)."""

    _databases: ClassVar[dict[str, Database]] = {}  # one per database for the whole session

    def __init__(self, server: ServerProcess) -> None:
        url = server.database_url or f"sqlite:///{server.data_dir / 'opendeploy.db'}"
        if url not in self._databases:
            self._databases[url] = Database(url)
        self._database = self._databases[url]

    @contextmanager
    def session(self) -> Iterator[Session]:
        # A write transaction as the server opens them (BEGIN IMMEDIATE on SQLite: no lock upgrade).
        with self._database.transaction() as session:
            yield session

    def add_targets(
        self,
        deployment_id: str,
        target_ids: Sequence[str],
        events: Sequence[str] = SERVER_EVENTS,
        *,
        target_type: str = "InstanceTarget",
        label: str | None = None,
    ) -> None:
        with self.session() as session:
            for target_id in target_ids:
                add_target(
                    session,
                    deployment_id=deployment_id,
                    target_id=target_id,
                    lifecycle_event_names=events,
                    now=time.time(),
                    target_type=target_type,
                    target_arn=f"arn:aws:codedeploy:us-east-1:111122223333:instance/{target_id}",
                    instance_label=label,
                )

    def set_target(
        self,
        deployment_id: str,
        target_id: str,
        target_status: str,
        *,
        event: str | None = None,
        **values: Any,
    ) -> None:
        """Set a target's status and, for its lifecycle event named ``event``, the given columns."""
        with self.session() as session:
            target = session.scalars(
                select(DeploymentTarget).where(
                    DeploymentTarget.deployment_id == deployment_id, DeploymentTarget.target_id == target_id
                )
            ).one()
            target.status = target_status
            if event:
                session.execute(
                    update(LifecycleEventRecord)
                    .where(
                        LifecycleEventRecord.deployment_target_id == target.id,
                        LifecycleEventRecord.name == event,
                    )
                    .values(**values)
                )

    def set_deployment(self, deployment_id: str, **values: Any) -> None:
        with self.session() as session:
            session.execute(update(Deployment).where(Deployment.id == deployment_id).values(**values))

    def deployment(self, deployment_id: str) -> Deployment:
        with self.session() as session:
            return session.get(Deployment, deployment_id)

    def complete(self, deployment_id: str, status: str = "Succeeded") -> None:
        """Mark a deployment finished, as the engine does; only for deployments the engine is done with."""
        now = time.time()
        self.set_deployment(deployment_id, status=status, start_time=now, complete_time=now, updated_at=now)


COMPLETED = ("Succeeded", "Failed", "Stopped")


def registered_instance(codedeploy: Any) -> dict[str, str]:
    """A registered on-premises instance, tagged uniquely; returns the tag filter that selects it.

    No agent runs for it, so a deployment to it stays in progress (its first lifecycle event waits for
    the agent, for minutes) — an active deployment for tests that need one.
    """
    name = unique("host")
    codedeploy.register_on_premises_instance(
        instanceName=name, iamUserArn=f"arn:aws:iam::111122223333:user/{name}"
    )
    codedeploy.add_tags_to_on_premises_instances(
        instanceNames=[name], tags=[{"Key": "opendeploy-test-host", "Value": name}]
    )
    return {"Key": "opendeploy-test-host", "Value": name, "Type": "KEY_AND_VALUE"}


def active_group(codedeploy: Any, **settings: Any) -> tuple[str, str]:
    """A new application and a group of one registered instance without an agent: (application, group)."""
    application, group = unique("app"), unique("dg")
    codedeploy.create_application(applicationName=application)
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=group,
        serviceRoleArn=ROLE,
        onPremisesInstanceTagFilters=[registered_instance(codedeploy)],
        **settings,
    )
    return application, group


def wait_until_completed(codedeploy: Any, deployment_id: str) -> dict[str, Any]:
    """The deployment once the engine has finished it (a group with no instances fails at once)."""

    def completed() -> dict[str, Any] | None:
        info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        return info if info["status"] in COMPLETED else None

    return wait_for(completed, timeout=30, message=f"deployment {deployment_id} to complete")


def make_deployment(
    codedeploy: Any, *, platform: str = "Server", blue_green: bool = False
) -> tuple[str, str, str]:
    """A new application, group (with no instances) and deployment: (application, group, deployment id).

    The engine fails such a deployment at once (no instances, or a kind it does not run yet); this waits
    for that, so that records tests put in its place afterwards are not touched by the engine ending it.
    """
    application, group = unique("tapp"), unique("tdg")
    codedeploy.create_application(applicationName=application, computePlatform=platform)
    group_args: dict[str, Any] = {"serviceRoleArn": ROLE}
    revision: dict[str, Any] = S3_REVISION
    if platform == "ECS":
        group_args.update(
            ecsServices=[{"clusterName": unique("cluster"), "serviceName": unique("service")}],
            loadBalancerInfo={
                "targetGroupPairInfoList": [
                    {
                        "targetGroups": [{"name": "blue-tg"}, {"name": "green-tg"}],
                        "prodTrafficRoute": {"listenerArns": ["arn:aws:elasticloadbalancing:l/1"]},
                    }
                ]
            },
        )
        revision = {"revisionType": "AppSpecContent", "appSpecContent": {"content": "version: 0.0\n"}}
    elif platform == "Lambda":
        revision = {"revisionType": "AppSpecContent", "appSpecContent": {"content": "version: 0.0\n"}}
    elif blue_green:
        group_args.update(
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            loadBalancerInfo={"targetGroupInfoList": [{"name": "tg"}]},
        )
    codedeploy.create_deployment_group(applicationName=application, deploymentGroupName=group, **group_args)
    deployment_id = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=revision
    )["deploymentId"]
    wait_for(
        lambda: (
            codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"]
            in ("Failed", "Succeeded", "Stopped")
        ),
        timeout=30,
        message=f"the engine to end {deployment_id}",
    )
    return application, group, deployment_id


@pytest.fixture
def records(server: ServerProcess) -> EngineRecords:
    return EngineRecords(server)


def test_a_new_deployment_has_no_targets_yet(codedeploy):
    _, _, deployment_id = make_deployment(codedeploy)
    assert codedeploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"] == []
    assert codedeploy.list_deployment_instances(deploymentId=deployment_id)["instancesList"] == []
    with pytest.raises(codedeploy.exceptions.DeploymentTargetDoesNotExistException):
        codedeploy.get_deployment_target(deploymentId=deployment_id, targetId="host-1")
    with pytest.raises(codedeploy.exceptions.InstanceDoesNotExistException):
        codedeploy.get_deployment_instance(deploymentId=deployment_id, instanceId="host-1")


def test_get_deployment_target_shows_lifecycle_events_in_order_with_diagnostics(codedeploy, records):
    _, _, deployment_id = make_deployment(codedeploy)
    records.add_targets(deployment_id, ["host-a"])
    records.set_target(
        deployment_id,
        "host-a",
        "Failed",
        event="BeforeInstall",
        **{"status": "Failed"},
        start_time=1_700_000_000.0,
        end_time=1_700_000_002.5,
        diagnostics_error_code="ScriptFailed",
        diagnostics_script_name="scripts/install_dependencies",
        diagnostics_message=FAILURE_MESSAGE,
        diagnostics_log_tail="[stderr]boom\n",
    )
    target = codedeploy.get_deployment_target(deploymentId=deployment_id, targetId="host-a")[
        "deploymentTarget"
    ]
    assert target["deploymentTargetType"] == "InstanceTarget"
    instance = target["instanceTarget"]
    assert instance["deploymentId"] == deployment_id
    assert instance["targetId"] == "host-a"
    assert instance["targetArn"].endswith(":instance/host-a")
    assert instance["status"] == "Failed"
    events = instance["lifecycleEvents"]
    assert [e["lifecycleEventName"] for e in events] == list(SERVER_EVENTS)
    assert [e["status"] for e in events] == ["Pending", "Pending", "Failed", "Pending", "Pending"]
    failed = events[2]
    assert failed["startTime"].timestamp() == 1_700_000_000.0
    assert failed["endTime"].timestamp() == 1_700_000_002.5
    assert failed["diagnostics"] == {
        "errorCode": "ScriptFailed",
        "scriptName": "scripts/install_dependencies",
        "message": FAILURE_MESSAGE,
        "logTail": "[stderr]boom\n",
    }
    assert "diagnostics" not in events[0]

    summary = codedeploy.get_deployment_instance(deploymentId=deployment_id, instanceId="host-a")[
        "instanceSummary"
    ]
    assert summary["instanceId"] == "host-a"
    assert summary["status"] == "Failed"
    assert summary["lifecycleEvents"] == events

    overview = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["deploymentOverview"]
    assert overview == {"Pending": 0, "InProgress": 0, "Succeeded": 0, "Failed": 1, "Skipped": 0, "Ready": 0}


def test_list_targets_filters_and_pages(server, codedeploy, records):
    _, _, deployment_id = make_deployment(codedeploy)
    names = [f"host-{n:02d}" for n in range(server.page_size + 3)]
    records.add_targets(deployment_id, names)
    records.set_target(deployment_id, "host-00", "Succeeded")
    records.set_target(deployment_id, "host-01", "Skipped")

    pages = list(codedeploy.get_paginator("list_deployment_targets").paginate(deploymentId=deployment_id))
    assert len(pages) == 2
    assert [t for page in pages for t in page["targetIds"]] == names

    listed = codedeploy.list_deployment_targets(
        deploymentId=deployment_id, targetFilters={"TargetStatus": ["Succeeded", "Skipped"]}
    )["targetIds"]
    assert listed == ["host-00", "host-01"]
    instances = [
        i
        for page in codedeploy.get_paginator("list_deployment_instances").paginate(
            deploymentId=deployment_id, instanceStatusFilter=["Pending"]
        )
        for i in page["instancesList"]
    ]
    assert instances == names[2:]
    overview = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["deploymentOverview"]
    assert overview["Pending"] == len(names) - 2
    assert overview["Succeeded"] == 1 and overview["Skipped"] == 1

    with pytest.raises(codedeploy.exceptions.InvalidInstanceStatusException):
        codedeploy.list_deployment_targets(
            deploymentId=deployment_id, targetFilters={"TargetStatus": ["Done"]}
        )
    with pytest.raises(codedeploy.exceptions.InvalidInstanceTypeException):
        codedeploy.list_deployment_targets(
            deploymentId=deployment_id, targetFilters={"ServerInstanceLabel": ["Purple"]}
        )
    with pytest.raises(codedeploy.exceptions.InvalidDeploymentInstanceTypeException):
        codedeploy.list_deployment_instances(deploymentId=deployment_id, instanceTypeFilter=["Blue"])


def test_blue_green_labels(codedeploy, records):
    _, _, deployment_id = make_deployment(codedeploy, blue_green=True)
    records.add_targets(deployment_id, ["blue-1", "blue-2"], label="Blue")
    records.add_targets(deployment_id, ["green-1"], label="Green")
    green = codedeploy.list_deployment_targets(
        deploymentId=deployment_id, targetFilters={"ServerInstanceLabel": ["Green"]}
    )["targetIds"]
    assert green == ["green-1"]
    assert codedeploy.list_deployment_instances(deploymentId=deployment_id, instanceTypeFilter=["Blue"])[
        "instancesList"
    ] == ["blue-1", "blue-2"]
    target = codedeploy.get_deployment_target(deploymentId=deployment_id, targetId="green-1")[
        "deploymentTarget"
    ]
    assert target["instanceTarget"]["instanceLabel"] == "Green"


def test_batch_get_targets_and_instances(codedeploy, records):
    _, _, deployment_id = make_deployment(codedeploy)
    records.add_targets(deployment_id, ["h1", "h2", "h3"])
    targets = codedeploy.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=["h3", "h1"])[
        "deploymentTargets"
    ]
    assert [t["instanceTarget"]["targetId"] for t in targets] == ["h3", "h1"]
    with pytest.raises(codedeploy.exceptions.DeploymentTargetDoesNotExistException, match="nope"):
        codedeploy.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=["h1", "nope"])
    with pytest.raises(codedeploy.exceptions.DeploymentTargetListSizeExceededException):
        codedeploy.batch_get_deployment_targets(
            deploymentId=deployment_id, targetIds=[f"x{n}" for n in range(26)]
        )

    batch = codedeploy.batch_get_deployment_instances(deploymentId=deployment_id, instanceIds=["h2", "gone"])
    assert [s["instanceId"] for s in batch["instancesSummary"]] == ["h2"]
    assert "gone" in batch["errorMessage"]
    with pytest.raises(codedeploy.exceptions.BatchLimitExceededException):
        codedeploy.batch_get_deployment_instances(
            deploymentId=deployment_id, instanceIds=[f"x{n}" for n in range(26)]
        )


def test_target_calls_name_the_deployment_problem(codedeploy):
    with pytest.raises(codedeploy.exceptions.InvalidDeploymentIdException):
        codedeploy.list_deployment_targets(deploymentId="not-an-id")
    with pytest.raises(codedeploy.exceptions.DeploymentDoesNotExistException):
        codedeploy.get_deployment_target(deploymentId="d-AAAAAAAAA", targetId="x")
    with pytest.raises(codedeploy.exceptions.DeploymentDoesNotExistException):
        codedeploy.batch_get_deployment_instances(deploymentId="d-AAAAAAAAA", instanceIds=["x"])


def test_instance_calls_refuse_ecs_deployments(codedeploy, records):
    """The deprecated instance calls serve EC2/On-Premises and Lambda only (API model)."""
    _, _, deployment_id = make_deployment(codedeploy, platform="ECS")
    records.add_targets(deployment_id, ["cluster:service"], ["BeforeInstall"], target_type="ECSTarget")
    with pytest.raises(codedeploy.exceptions.InvalidComputePlatformException):
        codedeploy.list_deployment_instances(deploymentId=deployment_id)
    with pytest.raises(codedeploy.exceptions.InvalidComputePlatformException):
        codedeploy.get_deployment_instance(deploymentId=deployment_id, instanceId="cluster:service")
    target = codedeploy.get_deployment_target(deploymentId=deployment_id, targetId="cluster:service")
    assert target["deploymentTarget"]["deploymentTargetType"] == "ECSTarget"
    assert (
        target["deploymentTarget"]["ecsTarget"]["lifecycleEvents"][0]["lifecycleEventName"] == "BeforeInstall"
    )


def test_put_lifecycle_event_hook_execution_status(codedeploy, records):
    """A Lambda hook function reports Succeeded or Failed once; the report is recorded for the engine."""
    _, _, deployment_id = make_deployment(codedeploy, platform="Lambda")
    records.add_targets(
        deployment_id,
        ["my-function:live"],
        ["BeforeAllowTraffic", "AllowTraffic"],
        target_type="LambdaTarget",
    )
    with records.session() as session:
        event = session.scalars(
            select(LifecycleEventRecord)
            .where(LifecycleEventRecord.name == "BeforeAllowTraffic")
            .join(DeploymentTarget, DeploymentTarget.id == LifecycleEventRecord.deployment_target_id)
            .where(DeploymentTarget.deployment_id == deployment_id)
        ).one()
        execution_id = f"{deployment_id}-hook-1"
        event.hook_execution_id = execution_id
        event.status = "InProgress"

    with pytest.raises(codedeploy.exceptions.InvalidLifecycleEventHookExecutionStatusException):
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id, lifecycleEventHookExecutionId=execution_id, status="Pending"
        )
    with pytest.raises(codedeploy.exceptions.InvalidLifecycleEventHookExecutionIdException):
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id, lifecycleEventHookExecutionId="unknown", status="Succeeded"
        )
    answer = codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=deployment_id, lifecycleEventHookExecutionId=execution_id, status="Succeeded"
    )
    assert answer["lifecycleEventHookExecutionId"] == execution_id
    with records.session() as session:
        recorded = session.scalars(
            select(LifecycleEventRecord).where(LifecycleEventRecord.hook_execution_id == execution_id)
        ).one()
        assert recorded.hook_reported_status == "Succeeded"
        assert recorded.hook_reported_at is not None
    with pytest.raises(codedeploy.exceptions.LifecycleEventAlreadyCompletedException):
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id, lifecycleEventHookExecutionId=execution_id, status="Failed"
        )


def test_put_lifecycle_event_hook_execution_status_is_for_lambda_and_ecs(codedeploy):
    _, _, deployment_id = make_deployment(codedeploy)
    with pytest.raises(codedeploy.exceptions.UnsupportedActionForDeploymentTypeException):
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id, lifecycleEventHookExecutionId="x", status="Succeeded"
        )
    with pytest.raises(codedeploy.exceptions.DeploymentDoesNotExistException):
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId="d-ZZZZZZZZZ", lifecycleEventHookExecutionId="x", status="Succeeded"
        )


def test_deployment_ids_are_d_and_nine_upper_case_alphanumerics(codedeploy):
    _, _, deployment_id = make_deployment(codedeploy)
    assert re.fullmatch(r"d-[A-Z0-9]{9}", deployment_id)

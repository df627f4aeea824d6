"""Deployments through boto3 against a real server, on SQLite and PostgreSQL: create (every request
member validated and stored), get, batch get, list with its filters, stop, continue, skip-wait and
DeleteResourcesByExternalId.

The server's engine carries deployments out: a deployment to a group with no instances fails at once
(NO_INSTANCES); one to a registered instance whose agent never polls stays in progress for minutes
(``active_group``). Where a test needs a state the engine cannot reach without agents (succeeded,
ready, waiting to terminate), ``EngineRecords`` sets it in the server's database, as the engine would,
once the engine is done with that deployment.
"""

from __future__ import annotations

import datetime
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from test_deployment_targets import (
    ROLE,
    S3_REVISION,
    EngineRecords,
    active_group,
    make_deployment,
    wait_until_completed,
)

from support.names import unique

ALARMS = {"enabled": True, "ignorePollAlarmFailure": False, "alarms": [{"name": "Errors"}]}


def _group(codedeploy: Any, platform: str = "Server", **settings: Any) -> tuple[str, str]:
    application, group = unique("app"), unique("dg")
    codedeploy.create_application(applicationName=application, computePlatform=platform)
    codedeploy.create_deployment_group(
        applicationName=application, deploymentGroupName=group, serviceRoleArn=ROLE, **settings
    )
    return application, group


@pytest.fixture
def records(server: Any) -> EngineRecords:
    return EngineRecords(server)


def test_create_stores_every_request_member(codedeploy):
    application, group = active_group(
        codedeploy,
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
        alarmConfiguration=ALARMS,
    )
    before = time.time()
    rollback = {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]}
    override = {"enabled": False, "ignorePollAlarmFailure": True, "alarms": [{"name": "Latency"}]}
    deployment_id = codedeploy.create_deployment(
        applicationName=application,
        deploymentGroupName=group,
        revision=S3_REVISION,
        deploymentConfigName="CodeDeployDefault.AllAtOnce",
        description="release 42",
        ignoreApplicationStopFailures=True,
        autoRollbackConfiguration=rollback,
        updateOutdatedInstancesOnly=True,
        fileExistsBehavior="OVERWRITE",
        overrideAlarmConfiguration=override,
        ec2DeploymentOptions={"autoScalingGroupProcessesToSuspend": ["AZRebalance"]},
    )["deploymentId"]
    assert re.fullmatch(r"d-[A-Z0-9]{9}", deployment_id)
    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["deploymentId"] == deployment_id
    assert info["applicationName"] == application
    assert info["deploymentGroupName"] == group
    # Created as "Created"; the engine may already have started it (its agent never answers).
    assert info["status"] in ("Created", "InProgress")
    assert info["creator"] == "user"
    assert info["computePlatform"] == "Server"
    assert info["revision"] == S3_REVISION
    assert info["deploymentConfigName"] == "CodeDeployDefault.AllAtOnce"
    assert info["description"] == "release 42"
    assert info["ignoreApplicationStopFailures"] is True
    assert info["autoRollbackConfiguration"] == rollback  # the deployment's own overrides the group's
    assert info["updateOutdatedInstancesOnly"] is True
    assert info["fileExistsBehavior"] == "OVERWRITE"
    assert info["overrideAlarmConfiguration"] == override
    assert info["ec2DeploymentOptions"] == {"autoScalingGroupProcessesToSuspend": ["AZRebalance"]}
    assert info["deploymentStyle"] == {
        "deploymentType": "IN_PLACE",
        "deploymentOption": "WITHOUT_TRAFFIC_CONTROL",
    }
    assert set(info["deploymentOverview"]) == {
        "Pending",
        "InProgress",
        "Succeeded",
        "Failed",
        "Skipped",
        "Ready",
    }
    assert info["instanceTerminationWaitTimeStarted"] is False
    assert before - 1 <= info["createTime"].timestamp() <= time.time() + 1
    assert "completeTime" not in info and "errorInformation" not in info
    assert "previousRevision" not in info  # the group had no successful deployment yet


def test_defaults_come_from_the_group_then_the_platform(codedeploy):
    application, group = _group(
        codedeploy,
        deploymentConfigName="CodeDeployDefault.HalfAtATime",
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    )
    deployment_id = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=S3_REVISION
    )["deploymentId"]
    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["deploymentConfigName"] == "CodeDeployDefault.HalfAtATime"
    assert info["autoRollbackConfiguration"] == {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}
    assert info["fileExistsBehavior"] == "DISALLOW"  # the API's default (guide L18841–18852)
    assert info["ignoreApplicationStopFailures"] is False
    assert info["updateOutdatedInstancesOnly"] is False


def test_one_active_deployment_per_group(codedeploy):
    """The guide's quotas table: concurrent deployments per deployment group = 1, "to prevent
    concurrent deployments of the same application to the same deployment group". Of the model's
    errors for CreateDeployment, DeploymentLimitExceededException is the one for it: a second deployment
    is refused (not queued) while the first is active; once it has finished the group deploys again."""
    application, group = active_group(codedeploy)
    first = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=S3_REVISION
    )
    with pytest.raises(codedeploy.exceptions.DeploymentLimitExceededException, match=first["deploymentId"]):
        codedeploy.create_deployment(
            applicationName=application, deploymentGroupName=group, revision=S3_REVISION
        )

    other = unique("dg")  # no instances: its deployment fails at once, which frees the group
    codedeploy.create_deployment_group(
        applicationName=application, deploymentGroupName=other, serviceRoleArn=ROLE
    )
    done = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=other, revision=S3_REVISION
    )
    assert wait_until_completed(codedeploy, done["deploymentId"])["status"] == "Failed"
    again = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=other, revision=S3_REVISION
    )
    assert again["deploymentId"] != done["deploymentId"]


def test_concurrent_creates_in_one_group_start_exactly_one(server):
    """Eight clients at once: one deployment is created, the others get DeploymentLimitExceededException."""
    codedeploy = server.client("codedeploy")
    application, group = active_group(codedeploy)

    def attempt(_: int) -> str:
        client = server.client("codedeploy", max_pool_connections=2)
        try:
            client.create_deployment(
                applicationName=application, deploymentGroupName=group, revision=S3_REVISION
            )
        except client.exceptions.DeploymentLimitExceededException:
            return "refused"
        return "created"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("created") == 1
    assert outcomes.count("refused") == 7
    listed = codedeploy.list_deployments(applicationName=application, deploymentGroupName=group)[
        "deployments"
    ]
    assert len(listed) == 1


def test_previous_revision_is_the_last_successful_one(codedeploy, records):
    application, group = _group(codedeploy)
    first = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=S3_REVISION
    )
    wait_until_completed(codedeploy, first["deploymentId"])
    records.complete(first["deploymentId"], "Succeeded")
    newer = {
        "revisionType": "S3",
        "s3Location": {"bucket": "bucket", "key": "app-v2.tgz", "bundleType": "tgz"},
    }
    second = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=newer
    )
    info = codedeploy.get_deployment(deploymentId=second["deploymentId"])["deploymentInfo"]
    assert info["previousRevision"] == S3_REVISION
    assert info["revision"] == newer


def test_restart_redeploys_the_last_successful_revision(codedeploy, records):
    application, group = _group(codedeploy)
    with pytest.raises(codedeploy.exceptions.RevisionDoesNotExistException):
        codedeploy.create_deployment(
            applicationName=application, deploymentGroupName=group, deploymentMode="RESTART"
        )
    first = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=S3_REVISION
    )
    wait_until_completed(codedeploy, first["deploymentId"])
    records.complete(first["deploymentId"], "Succeeded")
    with pytest.raises(codedeploy.exceptions.InvalidRevisionException):
        codedeploy.create_deployment(
            applicationName=application,
            deploymentGroupName=group,
            deploymentMode="RESTART",
            revision=S3_REVISION,
        )
    restart = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, deploymentMode="RESTART"
    )
    info = codedeploy.get_deployment(deploymentId=restart["deploymentId"])["deploymentInfo"]
    assert info["deploymentMode"] == "RESTART"
    assert info["revision"] == S3_REVISION


def test_target_instances_are_for_blue_green_groups(codedeploy):
    """Guide L18853–18857: targetInstances name the replacement environment of a blue/green deployment."""
    application, group = _group(codedeploy)
    targets = {"tagFilters": [{"Key": "Name", "Value": "green", "Type": "KEY_AND_VALUE"}]}
    with pytest.raises(codedeploy.exceptions.InvalidTargetInstancesException, match="in place"):
        codedeploy.create_deployment(
            applicationName=application,
            deploymentGroupName=group,
            revision=S3_REVISION,
            targetInstances=targets,
        )
    application, group = _group(
        codedeploy,
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        loadBalancerInfo={"targetGroupInfoList": [{"name": "tg"}]},
    )
    with pytest.raises(codedeploy.exceptions.InvalidTargetInstancesException, match="not both"):
        codedeploy.create_deployment(
            applicationName=application,
            deploymentGroupName=group,
            revision=S3_REVISION,
            targetInstances={**targets, "ec2TagSet": {"ec2TagSetList": [[{"Key": "a", "Type": "KEY_ONLY"}]]}},
        )
    deployment_id = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=S3_REVISION, targetInstances=targets
    )["deploymentId"]
    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["targetInstances"] == targets
    assert info["deploymentStyle"]["deploymentType"] == "BLUE_GREEN"
    assert info["loadBalancerInfo"] == {"targetGroupInfoList": [{"name": "tg"}]}


def test_create_refusals_name_the_problem(codedeploy):
    application, group = _group(codedeploy)
    exceptions = codedeploy.exceptions

    def create(**arguments: Any) -> None:
        arguments = {
            "applicationName": application,
            "deploymentGroupName": group,
            "revision": S3_REVISION,
            **arguments,
        }
        codedeploy.create_deployment(**{k: v for k, v in arguments.items() if v is not None})

    with pytest.raises(exceptions.ApplicationDoesNotExistException):
        create(applicationName=unique("none"))
    with pytest.raises(exceptions.DeploymentGroupNameRequiredException):
        create(deploymentGroupName=None)
    with pytest.raises(exceptions.DeploymentGroupDoesNotExistException):
        create(deploymentGroupName=unique("none"))
    with pytest.raises(exceptions.RevisionRequiredException):
        create(revision=None)
    with pytest.raises(exceptions.InvalidRevisionException, match="bundleType"):
        create(revision={"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k"}})
    with pytest.raises(exceptions.DeploymentConfigDoesNotExistException):
        create(deploymentConfigName=unique("none"))
    with pytest.raises(exceptions.InvalidDeploymentConfigNameException):
        create(deploymentConfigName="CodeDeployDefault.ECSAllAtOnce")
    with pytest.raises(exceptions.DescriptionTooLongException):
        create(description="x" * 1025)
    with pytest.raises(exceptions.InvalidAutoRollbackConfigException):
        create(autoRollbackConfiguration={"enabled": True, "events": []})
    with pytest.raises(exceptions.InvalidAlarmConfigException):
        create(overrideAlarmConfiguration={"enabled": True, "alarms": []})
    with pytest.raises(exceptions.AlarmsLimitExceededException):
        create(overrideAlarmConfiguration={"enabled": True, "alarms": [{"name": f"a{n}"} for n in range(21)]})
    # None of these refusals created anything.
    assert (
        codedeploy.list_deployments(applicationName=application, deploymentGroupName=group)["deployments"]
        == []
    )


def test_lambda_deployments_refuse_server_only_options(codedeploy):
    application, group = _group(codedeploy, "Lambda")
    appspec = {"revisionType": "AppSpecContent", "appSpecContent": {"content": "version: 0.0\n"}}
    with pytest.raises(codedeploy.exceptions.InvalidUpdateOutdatedInstancesOnlyValueException):
        codedeploy.create_deployment(
            applicationName=application,
            deploymentGroupName=group,
            revision=appspec,
            updateOutdatedInstancesOnly=True,
        )
    with pytest.raises(codedeploy.exceptions.InvalidIgnoreApplicationStopFailuresValueException):
        codedeploy.create_deployment(
            applicationName=application,
            deploymentGroupName=group,
            revision=appspec,
            ignoreApplicationStopFailures=True,
        )
    with pytest.raises(codedeploy.exceptions.InvalidRevisionException):
        codedeploy.create_deployment(
            applicationName=application, deploymentGroupName=group, revision=S3_REVISION
        )
    deployment_id = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=appspec
    )["deploymentId"]
    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["computePlatform"] == "Lambda"
    assert info["deploymentConfigName"] == "CodeDeployDefault.LambdaAllAtOnce"
    assert info["revision"]["appSpecContent"]["content"] == "version: 0.0\n"


def test_get_and_batch_get(codedeploy):
    _, _, first = make_deployment(codedeploy)
    _, _, second = make_deployment(codedeploy)
    with pytest.raises(codedeploy.exceptions.InvalidDeploymentIdException):
        codedeploy.get_deployment(deploymentId="12345")
    with pytest.raises(codedeploy.exceptions.DeploymentDoesNotExistException):
        codedeploy.get_deployment(deploymentId="d-NOTTHERE9")
    batch = codedeploy.batch_get_deployments(deploymentIds=[second, "d-NOTTHERE9", first])["deploymentsInfo"]
    assert [d["deploymentId"] for d in batch] == [second, first]  # missing ones are left out
    with pytest.raises(codedeploy.exceptions.InvalidDeploymentIdException):
        codedeploy.batch_get_deployments(deploymentIds=[first, "nonsense"])
    with pytest.raises(codedeploy.exceptions.BatchLimitExceededException):
        codedeploy.batch_get_deployments(deploymentIds=[f"d-{n:09d}" for n in range(101)])


def test_list_filters_and_pages(server, codedeploy, records):
    application = unique("app")
    codedeploy.create_application(applicationName=application)
    group, other = unique("dg"), unique("dg")
    for name in (group, other):
        codedeploy.create_deployment_group(
            applicationName=application, deploymentGroupName=name, serviceRoleArn=ROLE
        )

    def deploy(name: str) -> str:
        deployment_id = codedeploy.create_deployment(
            applicationName=application, deploymentGroupName=name, revision=S3_REVISION
        )["deploymentId"]
        wait_until_completed(codedeploy, deployment_id)  # no instances: the engine fails it at once
        return deployment_id

    created = [deploy(group) for _ in range(server.page_size + 2)]
    elsewhere = deploy(other)
    records.complete(created[0], "Succeeded")
    records.complete(created[1], "Stopped")

    in_group = {"applicationName": application, "deploymentGroupName": group}
    pages = list(codedeploy.get_paginator("list_deployments").paginate(**in_group))
    assert len(pages) == 2
    listed = [d for page in pages for d in page["deployments"]]
    assert listed == list(reversed(created))  # newest first

    by_group = codedeploy.list_deployments(applicationName=application, deploymentGroupName=other)
    assert by_group["deployments"] == [elsewhere]
    finished = codedeploy.list_deployments(**in_group, includeOnlyStatuses=["Succeeded", "Stopped"])
    assert set(finished["deployments"]) == {created[0], created[1]}
    everywhere = [
        d
        for page in codedeploy.get_paginator("list_deployments").paginate(includeOnlyStatuses=["Stopped"])
        for d in page["deployments"]
    ]
    assert created[1] in everywhere and created[0] not in everywhere

    # Creation times one minute apart, as if created over twelve minutes (set in the database).
    base = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    for index, deployment_id in enumerate(created):
        records.set_deployment(
            deployment_id, create_time=(base + datetime.timedelta(minutes=index)).timestamp()
        )
    minute = datetime.timedelta(minutes=1)

    def window(**time_range: datetime.datetime) -> list[str]:
        pages = codedeploy.get_paginator("list_deployments").paginate(**in_group, createTimeRange=time_range)
        return [d for page in pages for d in page["deployments"]]

    assert window(start=base + 2 * minute, end=base + 4 * minute) == [created[4], created[3], created[2]]
    assert window(start=base + 10 * minute) == [created[11], created[10]]
    assert window(end=base + 30 * 1 * datetime.timedelta(seconds=1)) == [created[0]]
    assert window(start=base - minute, end=base - datetime.timedelta(seconds=1)) == []
    last_time = base + 11 * minute

    exceptions = codedeploy.exceptions
    with pytest.raises(exceptions.InvalidTimeRangeException):
        codedeploy.list_deployments(
            **in_group, createTimeRange={"start": last_time, "end": last_time - minute}
        )
    with pytest.raises(exceptions.ApplicationNameRequiredException):
        codedeploy.list_deployments(deploymentGroupName=group)
    with pytest.raises(exceptions.DeploymentGroupDoesNotExistException):
        codedeploy.list_deployments(applicationName=application, deploymentGroupName=unique("none"))
    with pytest.raises(exceptions.ApplicationDoesNotExistException):
        codedeploy.list_deployments(applicationName=unique("none"), deploymentGroupName=group)


def test_stop_is_recorded_for_the_engine(codedeploy, records):
    """Guide L19314–19369: the stop is recorded on the deployment. No lifecycle event is running on an
    agent here (the instance has none), so it takes effect at once: Succeeded, and the deployment is
    Stopped (engine.stop; tests/fleet cover the Pending answer while events drain). A deployment that
    has finished cannot be stopped."""
    application, group = active_group(codedeploy)
    deployment_id = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=S3_REVISION
    )["deploymentId"]
    answer = codedeploy.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
    assert answer["status"] == "Succeeded"
    assert deployment_id in answer["statusMessage"]
    recorded = records.deployment(deployment_id)
    assert recorded.stop_requested_at is not None
    assert recorded.stop_auto_rollback_enabled is True
    assert codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"] == "Stopped"
    with pytest.raises(codedeploy.exceptions.DeploymentAlreadyCompletedException):
        codedeploy.stop_deployment(deploymentId=deployment_id)
    assert records.deployment(deployment_id).stop_requested_at == recorded.stop_requested_at

    _, _, finished = make_deployment(codedeploy)
    wait_until_completed(codedeploy, finished)
    with pytest.raises(codedeploy.exceptions.DeploymentAlreadyCompletedException):
        codedeploy.stop_deployment(deploymentId=finished)
    with pytest.raises(codedeploy.exceptions.DeploymentDoesNotExistException):
        codedeploy.stop_deployment(deploymentId="d-NOTTHERE9")
    with pytest.raises(codedeploy.exceptions.InvalidDeploymentIdException):
        codedeploy.stop_deployment(deploymentId="bad")


def test_continue_deployment(codedeploy, records):
    """Blue/green only. This blue/green deployment names no load balancer nor replacement instances, so the
    engine fails it at once; the states a blue/green deployment passes through are set in the database
    once the engine is done (tests/engine/test_blue_green_engine.py runs real ones)."""
    _, _, in_place = make_deployment(codedeploy)
    with pytest.raises(codedeploy.exceptions.UnsupportedActionForDeploymentTypeException):
        codedeploy.continue_deployment(deploymentId=in_place)
    with pytest.raises(codedeploy.exceptions.DeploymentIdRequiredException):
        codedeploy.continue_deployment()

    _, _, blue_green = make_deployment(codedeploy, blue_green=True)
    wait_until_completed(codedeploy, blue_green)
    with pytest.raises(codedeploy.exceptions.DeploymentAlreadyCompletedException):
        codedeploy.continue_deployment(deploymentId=blue_green)
    records.set_deployment(blue_green, status="InProgress", complete_time=None)
    with pytest.raises(codedeploy.exceptions.DeploymentIsNotInReadyStateException):
        codedeploy.continue_deployment(deploymentId=blue_green, deploymentWaitType="READY_WAIT")
    with pytest.raises(codedeploy.exceptions.InvalidDeploymentStatusException):
        codedeploy.continue_deployment(deploymentId=blue_green, deploymentWaitType="TERMINATION_WAIT")

    records.set_deployment(blue_green, status="Ready")
    codedeploy.continue_deployment(deploymentId=blue_green)
    assert records.deployment(blue_green).ready_wait_continue_requested_at is not None

    records.set_deployment(blue_green, status="InProgress", instance_termination_wait_time_started=True)
    assert codedeploy.get_deployment(deploymentId=blue_green)["deploymentInfo"][
        "instanceTerminationWaitTimeStarted"
    ]
    codedeploy.continue_deployment(deploymentId=blue_green, deploymentWaitType="TERMINATION_WAIT")
    assert records.deployment(blue_green).termination_wait_skip_requested_at is not None


def test_skip_wait_time_for_instance_termination(codedeploy, records):
    _, _, in_place = make_deployment(codedeploy)
    with pytest.raises(codedeploy.exceptions.UnsupportedActionForDeploymentTypeException):
        codedeploy.skip_wait_time_for_instance_termination(deploymentId=in_place)
    with pytest.raises(codedeploy.exceptions.DeploymentIdRequiredException):
        codedeploy.skip_wait_time_for_instance_termination()
    _, _, blue_green = make_deployment(codedeploy, blue_green=True)
    wait_until_completed(codedeploy, blue_green)  # the engine fails blue/green for now; then set states
    with pytest.raises(codedeploy.exceptions.DeploymentAlreadyCompletedException):
        codedeploy.skip_wait_time_for_instance_termination(deploymentId=blue_green)
    records.set_deployment(blue_green, status="Queued", complete_time=None)
    with pytest.raises(codedeploy.exceptions.DeploymentNotStartedException):
        codedeploy.skip_wait_time_for_instance_termination(deploymentId=blue_green)
    records.set_deployment(blue_green, status="InProgress")
    codedeploy.skip_wait_time_for_instance_termination(deploymentId=blue_green)
    assert records.deployment(blue_green).termination_wait_skip_requested_at is not None


def test_delete_resources_by_external_id(codedeploy, records):
    """Deployments a CloudFormation stack started carry its id; deleting by it removes them."""
    _, _, deployment_id = make_deployment(codedeploy)
    _, _, other_id = make_deployment(codedeploy)
    stack = f"arn:aws:cloudformation:us-east-1:111122223333:stack/{unique('stack')}/1"
    records.set_deployment(deployment_id, external_id=stack)
    assert codedeploy.list_deployments(externalId=stack)["deployments"] == [deployment_id]
    assert codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["externalId"] == stack
    codedeploy.delete_resources_by_external_id(externalId=stack)
    with pytest.raises(codedeploy.exceptions.DeploymentDoesNotExistException):
        codedeploy.get_deployment(deploymentId=deployment_id)
    assert codedeploy.get_deployment(deploymentId=other_id)["deploymentInfo"]["deploymentId"] == other_id
    codedeploy.delete_resources_by_external_id(externalId=stack)  # nothing left: still fine


def test_error_information_and_rollback_info_as_the_engine_records_them(codedeploy, records):
    _, _, deployment_id = make_deployment(codedeploy)
    _, _, rollback_id = make_deployment(codedeploy)
    failed = wait_until_completed(codedeploy, deployment_id)
    assert failed["errorInformation"]["code"] == "NO_INSTANCES"  # the engine's, for a group with no instances
    records.set_deployment(
        deployment_id,
        rollback_deployment_id=rollback_id,
        rollback_message=f"Deployment rolled back by {rollback_id}",
    )
    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["rollbackInfo"] == {
        "rollbackDeploymentId": rollback_id,
        "rollbackMessage": f"Deployment rolled back by {rollback_id}",
    }


def test_deleting_the_application_deletes_its_deployments(codedeploy):
    application, group, deployment_id = make_deployment(codedeploy)
    codedeploy.delete_application(applicationName=application)
    with pytest.raises(codedeploy.exceptions.DeploymentDoesNotExistException):
        codedeploy.get_deployment(deploymentId=deployment_id)
    codedeploy.create_application(applicationName=application)  # the name is free again, and empty
    assert codedeploy.list_deployment_groups(applicationName=application)["deploymentGroups"] == []
    assert codedeploy.list_application_revisions(applicationName=application)["revisions"] == []
    with pytest.raises(codedeploy.exceptions.DeploymentGroupDoesNotExistException):
        codedeploy.list_deployments(applicationName=application, deploymentGroupName=group)


def test_zonal_configurations_are_for_in_place_deployments(codedeploy):
    """Guide L15000–15002: zonal configuration supports in-place deployments only, for the group's
    configuration and for a deployment's own."""
    zonal = unique("zonal")
    codedeploy.create_deployment_config(
        deploymentConfigName=zonal,
        minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
        zonalConfig={"monitorDurationInSeconds": 60},
    )
    blue_green = {
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "loadBalancerInfo": {"targetGroupInfoList": [{"name": "tg"}]},
    }
    application, group = _group(codedeploy, **blue_green)
    with pytest.raises(codedeploy.exceptions.InvalidDeploymentConfigNameException, match="in-place"):
        codedeploy.create_deployment(
            applicationName=application,
            deploymentGroupName=group,
            revision=S3_REVISION,
            deploymentConfigName=zonal,
        )
    with pytest.raises(codedeploy.exceptions.InvalidDeploymentConfigNameException, match="in-place"):
        codedeploy.update_deployment_group(
            applicationName=application, currentDeploymentGroupName=group, deploymentConfigName=zonal
        )

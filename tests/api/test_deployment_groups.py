"""Deployment groups through boto3 against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from test_deployment_targets import ROLE, S3_REVISION, wait_until_completed

from support.names import unique

TRIGGER = {
    "triggerName": "Trigger-group-us-east-2",
    "triggerTargetArn": "arn:aws:sns:us-east-2:444455556666:us-east-deployments",
    "triggerEvents": ["DeploymentStart", "DeploymentSuccess", "DeploymentFailure"],
}
ALARMS = {
    "enabled": True,
    "ignorePollAlarmFailure": True,
    "alarms": [{"name": "HighErrorRate"}, {"name": "Latency"}],
}
ROLLBACK = {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]}


def _application(codedeploy: Any, platform: str = "Server") -> str:
    name = unique("app")
    codedeploy.create_application(applicationName=name, computePlatform=platform)
    return name


def _get(codedeploy: Any, application: str, group: str) -> dict[str, Any]:
    return codedeploy.get_deployment_group(applicationName=application, deploymentGroupName=group)[
        "deploymentGroupInfo"
    ]


def test_every_in_place_setting_is_stored_and_returned_exactly(codedeploy):
    application, group = _application(codedeploy), unique("dg")
    settings = {
        "deploymentConfigName": "CodeDeployDefault.HalfAtATime",
        "ec2TagFilters": [
            {"Key": "Name", "Value": "CodeDeployDemo", "Type": "KEY_AND_VALUE"},
            {"Key": "Env", "Type": "KEY_ONLY"},
            {"Value": "GRP-*a", "Type": "VALUE_ONLY"},
        ],
        "onPremisesInstanceTagFilters": [
            {"Key": "Name", "Value": "CodeDeployDemo-OnPrem", "Type": "KEY_AND_VALUE"}
        ],
        "autoScalingGroups": ["asg-one", "asg-two"],
        "serviceRoleArn": ROLE,
        "triggerConfigurations": [TRIGGER],
        "alarmConfiguration": ALARMS,
        "autoRollbackConfiguration": ROLLBACK,
        "outdatedInstancesStrategy": "IGNORE",
        "deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "loadBalancerInfo": {
            "elbInfoList": [{"name": "classic-lb"}],
            "targetGroupInfoList": [{"name": "tg-web"}],
        },
        "ec2DeploymentOptions": {"autoScalingGroupProcessesToSuspend": ["AZRebalance", "ScheduledActions"]},
        "terminationHookEnabled": True,
    }
    created = codedeploy.create_deployment_group(
        applicationName=application, deploymentGroupName=group, **settings
    )
    info = _get(codedeploy, application, group)
    assert info["deploymentGroupId"] == created["deploymentGroupId"]
    assert info["applicationName"] == application
    assert info["deploymentGroupName"] == group
    assert info["computePlatform"] == "Server"
    for member, value in settings.items():
        if member == "autoScalingGroups":
            assert info[member] == [{"name": name} for name in value]
        else:
            assert info[member] == value, member
    assert "lastAttemptedDeployment" not in info and "targetRevision" not in info


def test_blue_green_group_with_tag_sets(codedeploy):
    application, group = _application(codedeploy), unique("dg")
    ec2_set = {
        "ec2TagSetList": [
            [{"Key": "Name", "Value": "AppVersion-ABC", "Type": "KEY_AND_VALUE"}],
            [
                {"Key": "Region", "Value": "North", "Type": "KEY_AND_VALUE"},
                {"Key": "Region", "Value": "South", "Type": "KEY_AND_VALUE"},
            ],
            [{"Key": "Type", "Value": "t2.medium", "Type": "KEY_AND_VALUE"}],
        ]
    }
    onprem_set = {
        "onPremisesTagSetList": [[{"Key": "Environment", "Value": "Beta", "Type": "KEY_AND_VALUE"}]]
    }
    blue_green = {
        "terminateBlueInstancesOnDeploymentSuccess": {
            "action": "TERMINATE",
            "terminationWaitTimeInMinutes": 60,
        },
        "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 30},
        "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"},
    }
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=group,
        serviceRoleArn=ROLE,
        ec2TagSet=ec2_set,
        onPremisesTagSet=onprem_set,
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        blueGreenDeploymentConfiguration=blue_green,
        loadBalancerInfo={"targetGroupInfoList": [{"name": "tg-blue-green"}]},
    )
    info = _get(codedeploy, application, group)
    assert info["ec2TagSet"] == ec2_set
    assert info["onPremisesTagSet"] == onprem_set
    assert info["blueGreenDeploymentConfiguration"] == blue_green
    assert info["deploymentStyle"] == {
        "deploymentType": "BLUE_GREEN",
        "deploymentOption": "WITH_TRAFFIC_CONTROL",
    }


def test_server_group_defaults(codedeploy):
    """No configuration given: OneAtATime (guide L14641–14643); in place, no load balancer; outdated
    instances updated (guide L17127–17158)."""
    application, group = _application(codedeploy), unique("dg")
    codedeploy.create_deployment_group(
        applicationName=application, deploymentGroupName=group, serviceRoleArn=ROLE
    )
    info = _get(codedeploy, application, group)
    assert info["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"
    assert info["deploymentStyle"] == {
        "deploymentType": "IN_PLACE",
        "deploymentOption": "WITHOUT_TRAFFIC_CONTROL",
    }
    assert info["outdatedInstancesStrategy"] == "UPDATE"
    assert info["terminationHookEnabled"] is False
    assert info["ec2TagFilters"] == [] and info["onPremisesInstanceTagFilters"] == []
    assert info["autoScalingGroups"] == [] and info["triggerConfigurations"] == []
    assert info["alarmConfiguration"] == {"enabled": False, "ignorePollAlarmFailure": False, "alarms": []}


def test_lambda_group_defaults(codedeploy):
    """Lambda deployments are blue/green with traffic control (guide L15302–15312)."""
    application, group = _application(codedeploy, "Lambda"), unique("dg")
    codedeploy.create_deployment_group(
        applicationName=application, deploymentGroupName=group, serviceRoleArn=ROLE
    )
    info = _get(codedeploy, application, group)
    assert info["computePlatform"] == "Lambda"
    assert info["deploymentStyle"] == {
        "deploymentType": "BLUE_GREEN",
        "deploymentOption": "WITH_TRAFFIC_CONTROL",
    }
    assert info["deploymentConfigName"] == "CodeDeployDefault.LambdaAllAtOnce"
    with pytest.raises(codedeploy.exceptions.InvalidDeploymentStyleException):
        codedeploy.create_deployment_group(
            applicationName=application,
            deploymentGroupName=unique("dg"),
            serviceRoleArn=ROLE,
            deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"},
        )
    with pytest.raises(codedeploy.exceptions.InvalidEC2TagException):
        codedeploy.create_deployment_group(
            applicationName=application,
            deploymentGroupName=unique("dg"),
            serviceRoleArn=ROLE,
            ec2TagFilters=[{"Key": "Name", "Value": "x", "Type": "KEY_AND_VALUE"}],
        )


def _ecs_settings(service: str) -> dict[str, Any]:
    return {
        "ecsServices": [{"serviceName": service, "clusterName": "cluster"}],
        "loadBalancerInfo": {
            "targetGroupPairInfoList": [
                {
                    "targetGroups": [{"name": "tg-1"}, {"name": "tg-2"}],
                    "prodTrafficRoute": {
                        "listenerArns": ["arn:aws:elasticloadbalancing:us-east-1:1:listener/p"]
                    },
                    "testTrafficRoute": {
                        "listenerArns": ["arn:aws:elasticloadbalancing:us-east-1:1:listener/t"]
                    },
                }
            ]
        },
        "blueGreenDeploymentConfiguration": {
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "TERMINATE",
                "terminationWaitTimeInMinutes": 5,
            },
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
        },
    }


def test_ecs_group(codedeploy):
    """An ECS group names one service and a pair of target groups (guide L15627–15700); one group per
    ECS service (guide quotas table)."""
    application, group, service = _application(codedeploy, "ECS"), unique("dg"), unique("svc")
    settings = _ecs_settings(service)
    codedeploy.create_deployment_group(
        applicationName=application, deploymentGroupName=group, serviceRoleArn=ROLE, **settings
    )
    info = _get(codedeploy, application, group)
    for member, value in settings.items():
        assert info[member] == value
    assert info["deploymentConfigName"] == "CodeDeployDefault.ECSAllAtOnce"
    exceptions = codedeploy.exceptions
    with pytest.raises(exceptions.ECSServiceMappingLimitExceededException):
        codedeploy.create_deployment_group(
            applicationName=application, deploymentGroupName=unique("dg"), serviceRoleArn=ROLE, **settings
        )
    with pytest.raises(exceptions.InvalidECSServiceException):
        codedeploy.create_deployment_group(
            applicationName=application, deploymentGroupName=unique("dg"), serviceRoleArn=ROLE
        )
    broken = _ecs_settings(unique("svc"))
    broken["loadBalancerInfo"]["targetGroupPairInfoList"][0]["targetGroups"] = [{"name": "only-one"}]
    with pytest.raises(exceptions.InvalidTargetGroupPairException):
        codedeploy.create_deployment_group(
            applicationName=application, deploymentGroupName=unique("dg"), serviceRoleArn=ROLE, **broken
        )
    with pytest.raises(exceptions.InvalidDeploymentConfigNameException, match="Lambda"):
        codedeploy.create_deployment_group(
            applicationName=application,
            deploymentGroupName=unique("dg"),
            serviceRoleArn=ROLE,
            deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce",
            **_ecs_settings(unique("svc")),
        )


SERVER_PAIR = {
    "targetGroups": [{"name": "tg-blue"}, {"name": "tg-green"}],
    "prodTrafficRoute": {"listenerArns": ["arn:aws:elasticloadbalancing:us-east-1:1:listener/app/web/1/p"]},
}


def test_server_blue_green_group_with_a_target_group_pair(codedeploy):
    """Beyond AWS (ECS only there): a Server blue/green group may name a target group pair, to shift
    traffic between its two groups; refused for in-place groups, with a test listener, or with one of
    its groups also in targetGroupInfoList."""
    application, group = _application(codedeploy), unique("dg")
    blue_green = {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
    info = {"targetGroupPairInfoList": [SERVER_PAIR]}
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=group,
        serviceRoleArn=ROLE,
        deploymentStyle=blue_green,
        loadBalancerInfo=info,
    )
    assert _get(codedeploy, application, group)["loadBalancerInfo"] == info

    exceptions = codedeploy.exceptions
    with pytest.raises(exceptions.InvalidTargetGroupPairException, match="in-place deployment"):
        codedeploy.update_deployment_group(
            applicationName=application,
            currentDeploymentGroupName=group,
            deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        )
    assert _get(codedeploy, application, group)["deploymentStyle"] == blue_green  # nothing changed
    listener = SERVER_PAIR["prodTrafficRoute"]["listenerArns"][0]
    for broken, exception, message in [
        (
            {"targetGroupPairInfoList": [{**SERVER_PAIR, "targetGroups": [{"name": "tg-blue"}]}]},
            exceptions.InvalidTargetGroupPairException,
            "two named target groups",
        ),
        (
            {"targetGroupPairInfoList": [{**SERVER_PAIR, "prodTrafficRoute": {"listenerArns": []}}]},
            exceptions.InvalidTargetGroupPairException,
            "prodTrafficRoute needs exactly one listener ARN",
        ),
        (
            {"targetGroupPairInfoList": [{**SERVER_PAIR, "testTrafficRoute": {"listenerArns": [listener]}}]},
            exceptions.InvalidTargetGroupPairException,
            "AllowTestTraffic",
        ),
        (
            {"targetGroupPairInfoList": [SERVER_PAIR, SERVER_PAIR]},
            exceptions.InvalidTargetGroupPairException,
            "exactly one targetGroupPairInfoList entry",
        ),
        (
            {"targetGroupPairInfoList": [SERVER_PAIR], "targetGroupInfoList": [{"name": "tg-green"}]},
            exceptions.InvalidLoadBalancerInfoException,
            "'tg-green' is named both",
        ),
    ]:
        with pytest.raises(exception, match=message):
            codedeploy.create_deployment_group(
                applicationName=application,
                deploymentGroupName=unique("dg"),
                serviceRoleArn=ROLE,
                deploymentStyle=blue_green,
                loadBalancerInfo=broken,
            )
    with pytest.raises(exceptions.InvalidTargetGroupPairException, match="Server BLUE_GREEN"):
        codedeploy.create_deployment_group(
            applicationName=application,
            deploymentGroupName=unique("dg"),
            serviceRoleArn=ROLE,
            loadBalancerInfo=info,
        )


def test_update_renames_and_keeps_what_is_not_given(codedeploy):
    """Guide L16926–17033 and L21074–21075: update with --current-deployment-group-name; members left
    out are kept; an empty list clears."""
    application, group, renamed = _application(codedeploy), unique("dg"), unique("renamed")
    created = codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=group,
        serviceRoleArn=ROLE,
        ec2TagFilters=[{"Key": "Name", "Value": "Project-ABC", "Type": "KEY_AND_VALUE"}],
        triggerConfigurations=[TRIGGER],
        tags=[{"Key": "team", "Value": "web"}],
    )
    answer = codedeploy.update_deployment_group(
        applicationName=application,
        currentDeploymentGroupName=group,
        newDeploymentGroupName=renamed,
        outdatedInstancesStrategy="IGNORE",
    )
    assert answer["hooksNotCleanedUp"] == []
    with pytest.raises(codedeploy.exceptions.DeploymentGroupDoesNotExistException):
        _get(codedeploy, application, group)
    info = _get(codedeploy, application, renamed)
    assert info["deploymentGroupId"] == created["deploymentGroupId"]
    assert info["outdatedInstancesStrategy"] == "IGNORE"
    assert info["triggerConfigurations"] == [TRIGGER]
    assert info["ec2TagFilters"] == [{"Key": "Name", "Value": "Project-ABC", "Type": "KEY_AND_VALUE"}]

    codedeploy.update_deployment_group(
        applicationName=application, currentDeploymentGroupName=renamed, triggerConfigurations=[]
    )
    assert _get(codedeploy, application, renamed)["triggerConfigurations"] == []

    # Giving a tag set replaces the tag filters (the group describes its instances one way).
    tag_set = {"ec2TagSetList": [[{"Key": "Name", "Value": "Project-XYZ", "Type": "KEY_AND_VALUE"}]]}
    codedeploy.update_deployment_group(
        applicationName=application, currentDeploymentGroupName=renamed, ec2TagSet=tag_set
    )
    info = _get(codedeploy, application, renamed)
    assert info["ec2TagSet"] == tag_set and info["ec2TagFilters"] == []

    # Tags follow the group through the rename (they belong to its id).
    region_account = codedeploy.meta.region_name, "111122223333"
    arn = (
        f"arn:aws:codedeploy:{region_account[0]}:{region_account[1]}:deploymentgroup:{application}/{renamed}"
    )
    assert codedeploy.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "web"}]


def test_update_refusals(codedeploy):
    application, first, second = _application(codedeploy), unique("dg"), unique("dg")
    for name in (first, second):
        codedeploy.create_deployment_group(
            applicationName=application, deploymentGroupName=name, serviceRoleArn=ROLE
        )
    exceptions = codedeploy.exceptions
    with pytest.raises(exceptions.DeploymentGroupAlreadyExistsException):
        codedeploy.update_deployment_group(
            applicationName=application, currentDeploymentGroupName=first, newDeploymentGroupName=second
        )
    with pytest.raises(exceptions.DeploymentGroupDoesNotExistException):
        codedeploy.update_deployment_group(
            applicationName=application, currentDeploymentGroupName=unique("none")
        )
    with pytest.raises(exceptions.ApplicationDoesNotExistException):
        codedeploy.update_deployment_group(applicationName=unique("none"), currentDeploymentGroupName=first)
    with pytest.raises(exceptions.DeploymentConfigDoesNotExistException):
        codedeploy.update_deployment_group(
            applicationName=application, currentDeploymentGroupName=first, deploymentConfigName=unique("none")
        )
    with pytest.raises(exceptions.InvalidEC2TagCombinationException):
        codedeploy.update_deployment_group(
            applicationName=application,
            currentDeploymentGroupName=first,
            ec2TagFilters=[{"Key": "a", "Value": "b", "Type": "KEY_AND_VALUE"}],
            ec2TagSet={"ec2TagSetList": [[{"Key": "a", "Value": "b", "Type": "KEY_AND_VALUE"}]]},
        )
    assert _get(codedeploy, application, first)["ec2TagFilters"] == []  # nothing changed


@pytest.mark.parametrize(
    ("settings", "exception"),
    [
        ({"deploymentConfigName": "NoSuchConfig"}, "DeploymentConfigDoesNotExistException"),
        (
            {"deploymentConfigName": "CodeDeployDefault.LambdaAllAtOnce"},
            "InvalidDeploymentConfigNameException",
        ),
        ({"serviceRoleArn": "not-a-role"}, "InvalidRoleException"),
        (
            {
                "ec2TagFilters": [{"Key": "a", "Value": "b", "Type": "KEY_AND_VALUE"}],
                "ec2TagSet": {"ec2TagSetList": [[{"Key": "a", "Value": "b", "Type": "KEY_AND_VALUE"}]]},
            },
            "InvalidEC2TagCombinationException",
        ),
        (
            {
                "onPremisesInstanceTagFilters": [{"Key": "a", "Value": "b", "Type": "KEY_AND_VALUE"}],
                "onPremisesTagSet": {
                    "onPremisesTagSetList": [[{"Key": "a", "Value": "b", "Type": "KEY_AND_VALUE"}]]
                },
            },
            "InvalidOnPremisesTagCombinationException",
        ),
        (
            {"ec2TagSet": {"ec2TagSetList": [[{"Key": f"k{n}", "Type": "KEY_ONLY"}] for n in range(4)]}},
            "TagSetListLimitExceededException",
        ),
        ({"ec2TagFilters": [{"Value": "x", "Type": "KEY_ONLY"}]}, "InvalidEC2TagException"),
        ({"onPremisesInstanceTagFilters": [{"Key": "x", "Type": "KEY_AND_VALUE"}]}, "InvalidTagException"),
        ({"autoScalingGroups": [f"asg-{n}" for n in range(11)]}, "InvalidAutoScalingGroupException"),
        (
            {"triggerConfigurations": [dict(TRIGGER, triggerName=f"t{n}") for n in range(11)]},
            "TriggerTargetsLimitExceededException",
        ),
        ({"triggerConfigurations": [dict(TRIGGER, triggerTargetArn="")]}, "InvalidTriggerConfigException"),
        ({"triggerConfigurations": [TRIGGER, TRIGGER]}, "InvalidTriggerConfigException"),
        (
            {"alarmConfiguration": {"enabled": True, "alarms": [{"name": f"a{n}"} for n in range(21)]}},
            "AlarmsLimitExceededException",
        ),
        ({"alarmConfiguration": {"enabled": True, "alarms": []}}, "InvalidAlarmConfigException"),
        (
            {"autoRollbackConfiguration": {"enabled": True, "events": []}},
            "InvalidAutoRollbackConfigException",
        ),
        (
            {"autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]}},
            "InvalidAutoRollbackConfigException",
        ),
        (
            {
                "deploymentStyle": {
                    "deploymentType": "BLUE_GREEN",
                    "deploymentOption": "WITHOUT_TRAFFIC_CONTROL",
                }
            },
            "InvalidDeploymentStyleException",
        ),
        (
            {"deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"}},
            "InvalidLoadBalancerInfoException",
        ),
        (
            {"loadBalancerInfo": {"elbInfoList": [{"name": f"lb{n}"} for n in range(11)]}},
            "InvalidLoadBalancerInfoException",
        ),
        (
            {
                "blueGreenDeploymentConfiguration": {
                    "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 2881}
                }
            },
            "InvalidBlueGreenDeploymentConfigurationException",
        ),
        ({"ecsServices": [{"serviceName": "s", "clusterName": "c"}]}, "InvalidECSServiceException"),
        ({"tags": [{"Key": "", "Value": "v"}]}, "InvalidTagsToAddException"),
    ],
)
def test_create_refusals_name_the_problem(codedeploy, settings, exception):
    application = _application(codedeploy)
    arguments = {"serviceRoleArn": ROLE, **settings}
    with pytest.raises(getattr(codedeploy.exceptions, exception)):
        codedeploy.create_deployment_group(
            applicationName=application, deploymentGroupName=unique("dg"), **arguments
        )


def test_create_needs_an_application_and_a_new_name(codedeploy):
    application, group = _application(codedeploy), unique("dg")
    with pytest.raises(codedeploy.exceptions.ApplicationDoesNotExistException):
        codedeploy.create_deployment_group(
            applicationName=unique("none"), deploymentGroupName=group, serviceRoleArn=ROLE
        )
    codedeploy.create_deployment_group(
        applicationName=application, deploymentGroupName=group, serviceRoleArn=ROLE
    )
    with pytest.raises(codedeploy.exceptions.DeploymentGroupAlreadyExistsException):
        codedeploy.create_deployment_group(
            applicationName=application, deploymentGroupName=group, serviceRoleArn=ROLE
        )
    # Group names are scoped to their application (guide L15376–15381).
    other = _application(codedeploy)
    codedeploy.create_deployment_group(applicationName=other, deploymentGroupName=group, serviceRoleArn=ROLE)
    with pytest.raises(codedeploy.exceptions.InvalidDeploymentGroupNameException):
        codedeploy.create_deployment_group(
            applicationName=application, deploymentGroupName="has space", serviceRoleArn=ROLE
        )


def test_list_batch_get_and_delete(server, codedeploy):
    application = _application(codedeploy)
    names = sorted(unique("dg") for _ in range(server.page_size + 2))
    for name in names:
        codedeploy.create_deployment_group(
            applicationName=application, deploymentGroupName=name, serviceRoleArn=ROLE
        )
    pages = list(codedeploy.get_paginator("list_deployment_groups").paginate(applicationName=application))
    assert len(pages) == 2
    assert all(page["applicationName"] == application for page in pages)
    assert sorted(n for page in pages for n in page["deploymentGroups"]) == names

    batch = codedeploy.batch_get_deployment_groups(
        applicationName=application, deploymentGroupNames=[names[1], "missing-group", names[0]]
    )
    assert [g["deploymentGroupName"] for g in batch["deploymentGroupsInfo"]] == [names[1], names[0]]
    assert "missing-group" in batch["errorMessage"]
    with pytest.raises(codedeploy.exceptions.BatchLimitExceededException):
        codedeploy.batch_get_deployment_groups(
            applicationName=application, deploymentGroupNames=[f"g{n}" for n in range(101)]
        )
    with pytest.raises(codedeploy.exceptions.ApplicationDoesNotExistException):
        codedeploy.list_deployment_groups(applicationName=unique("none"))

    deployment_id = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=names[0], revision=S3_REVISION
    )["deploymentId"]
    answer = codedeploy.delete_deployment_group(applicationName=application, deploymentGroupName=names[0])
    assert answer["hooksNotCleanedUp"] == []
    with pytest.raises(codedeploy.exceptions.DeploymentGroupDoesNotExistException):
        _get(codedeploy, application, names[0])
    # "All details associated with that deployment group will also be deleted" (guide L17160–17209).
    with pytest.raises(codedeploy.exceptions.DeploymentDoesNotExistException):
        codedeploy.get_deployment(deploymentId=deployment_id)


def test_deleting_a_group_that_does_not_exist_succeeds(codedeploy):
    """The model lists no does-not-exist error for DeleteDeploymentGroup: deletion is idempotent."""
    application = _application(codedeploy)
    answer = codedeploy.delete_deployment_group(
        applicationName=application, deploymentGroupName=unique("none")
    )
    assert answer["hooksNotCleanedUp"] == []


def test_get_missing_group(codedeploy):
    application = _application(codedeploy)
    with pytest.raises(codedeploy.exceptions.DeploymentGroupDoesNotExistException):
        _get(codedeploy, application, unique("none"))
    with pytest.raises(codedeploy.exceptions.ApplicationDoesNotExistException):
        _get(codedeploy, unique("none"), "dg")


def test_last_attempted_deployment(codedeploy):
    application, group = _application(codedeploy), unique("dg")
    codedeploy.create_deployment_group(
        applicationName=application, deploymentGroupName=group, serviceRoleArn=ROLE
    )
    deployment_id = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=S3_REVISION
    )["deploymentId"]
    finished = wait_until_completed(codedeploy, deployment_id)  # a group with no instances fails at once
    info = _get(codedeploy, application, group)
    assert info["lastAttemptedDeployment"]["deploymentId"] == deployment_id
    assert info["lastAttemptedDeployment"]["status"] == finished["status"] == "Failed"
    assert info["lastAttemptedDeployment"]["endTime"] == finished["completeTime"]
    assert "lastSuccessfulDeployment" not in info and "targetRevision" not in info

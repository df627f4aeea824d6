"""Malformed requests to the deployment operations get the exception the model lists for them.

Requests here are well-formed for boto3 (it checks types, not enum values), so the server's
validation (botocore's model, mapped to each operation's listed exceptions) decides. Cases marked
``xfail`` are known gaps of the generic member-name mapping in ``api/validation.py`` (engineer C's):
they answer ``ValidationException``, which the CodeDeploy model does not list. ``strict=True`` makes a
fixed case fail here, so its marker gets removed.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_deployment_targets import ROLE, make_deployment

from support.names import unique


def _gap(reason: str) -> Any:
    return pytest.mark.xfail(strict=True, reason=f"api/validation.py answers ValidationException: {reason}")


GROUP = {"serviceRoleArn": ROLE}


@pytest.mark.parametrize(
    ("operation", "params", "exception"),
    [
        ("create_deployment_config", {"computePlatform": "Mainframe"}, "InvalidComputePlatformException"),
        pytest.param(
            "create_deployment_config",
            {"minimumHealthyHosts": {"type": "MOST_CONCURRENCY", "value": 1}},
            "InvalidMinimumHealthyHostValueException",
            marks=_gap("minimumHealthyHosts.type -> InvalidMinimumHealthyHostValueException"),
        ),
        pytest.param(
            "create_deployment_config",
            {"computePlatform": "Lambda", "trafficRoutingConfig": {"type": "Sometimes"}},
            "InvalidTrafficRoutingConfigurationException",
            marks=_gap("trafficRoutingConfig.type -> InvalidTrafficRoutingConfigurationException"),
        ),
        pytest.param(
            "create_deployment_config",
            {
                "minimumHealthyHosts": {"type": "HOST_COUNT", "value": 1},
                "zonalConfig": {"minimumHealthyHostsPerZone": {"type": "ZONE", "value": 1}},
            },
            "InvalidZonalDeploymentConfigurationException",
            marks=_gap(
                "zonalConfig.minimumHealthyHostsPerZone.type -> InvalidZonalDeploymentConfigurationException"
            ),
        ),
        (
            "create_deployment_group",
            {**GROUP, "deploymentStyle": {"deploymentType": "ROLLING"}},
            "InvalidDeploymentStyleException",
        ),
        (
            "create_deployment_group",
            {**GROUP, "ec2TagFilters": [{"Key": "k", "Type": "ANY"}]},
            "InvalidEC2TagException",
        ),
        (
            "create_deployment_group",
            {**GROUP, "onPremisesInstanceTagFilters": [{"Key": "k", "Type": "ANY"}]},
            "InvalidTagException",
        ),
        (
            "create_deployment_group",
            {
                **GROUP,
                "triggerConfigurations": [
                    {"triggerName": "t", "triggerTargetArn": "arn:x", "triggerEvents": ["Never"]}
                ],
            },
            "InvalidTriggerConfigException",
        ),
        (
            "create_deployment_group",
            {
                **GROUP,
                "blueGreenDeploymentConfiguration": {"deploymentReadyOption": {"actionOnTimeout": "WAIT"}},
            },
            "InvalidBlueGreenDeploymentConfigurationException",
        ),
        pytest.param(
            "create_deployment_group",
            {**GROUP, "autoRollbackConfiguration": {"enabled": True, "events": ["ALWAYS"]}},
            "InvalidAutoRollbackConfigException",
            marks=_gap("autoRollbackConfiguration.events -> InvalidAutoRollbackConfigException"),
        ),
        pytest.param(
            "create_deployment_group",
            {**GROUP, "ec2DeploymentOptions": {"autoScalingGroupProcessesToSuspend": ["Launch"]}},
            "InvalidAutoScalingGroupProcessToSuspendException",
            marks=pytest.mark.xfail(
                strict=True, reason="api/validation.py answers InvalidAutoScalingGroupException instead"
            ),
        ),
        pytest.param(
            "list_application_revisions",
            {"deployed": "sometimes"},
            "InvalidDeployedStateFilterException",
            marks=_gap("deployed -> InvalidDeployedStateFilterException"),
        ),
        ("list_application_revisions", {"sortBy": "size"}, "InvalidSortByException"),
        ("list_application_revisions", {"sortOrder": "random"}, "InvalidSortOrderException"),
        ("list_deployments", {"includeOnlyStatuses": ["Done"]}, "InvalidDeploymentStatusException"),
    ],
)
def test_malformed_members_get_the_modeled_exception(codedeploy, operation, params, exception):
    application = unique("app")
    codedeploy.create_application(applicationName=application)
    arguments = dict(params)
    if operation == "create_deployment_config":
        arguments["deploymentConfigName"] = unique("cfg")
    elif operation == "create_deployment_group":
        arguments.update(applicationName=application, deploymentGroupName=unique("dg"))
    elif operation == "list_application_revisions":
        arguments["applicationName"] = application
    with pytest.raises(getattr(codedeploy.exceptions, exception)):
        getattr(codedeploy, operation)(**arguments)


@pytest.mark.parametrize(
    ("operation", "params", "exception"),
    [
        ("create_deployment", {"fileExistsBehavior": "MERGE"}, "InvalidFileExistsBehaviorException"),
        ("create_deployment", {"revision": {"revisionType": "FTP"}}, "InvalidRevisionException"),
        pytest.param(
            "create_deployment",
            {"autoRollbackConfiguration": {"enabled": True, "events": ["ALWAYS"]}},
            "InvalidAutoRollbackConfigException",
            marks=_gap("autoRollbackConfiguration.events -> InvalidAutoRollbackConfigException"),
        ),
        ("continue_deployment", {"deploymentWaitType": "FOREVER"}, "InvalidDeploymentWaitTypeException"),
        ("list_deployment_instances", {"instanceStatusFilter": ["Done"]}, "InvalidInstanceStatusException"),
        ("list_deployment_instances", {"instanceTypeFilter": ["Purple"]}, "InvalidInstanceTypeException"),
        pytest.param(
            "list_deployment_targets",
            {"targetFilters": {"Zone": ["a"]}},
            "InvalidTargetFilterNameException",
            marks=_gap("a targetFilters key -> InvalidTargetFilterNameException"),
        ),
        pytest.param(
            "put_lifecycle_event_hook_execution_status",
            {"lifecycleEventHookExecutionId": "x", "status": "Done"},
            "InvalidLifecycleEventHookExecutionStatusException",
            marks=_gap("status -> InvalidLifecycleEventHookExecutionStatusException"),
        ),
    ],
)
def test_malformed_deployment_requests_get_the_modeled_exception(codedeploy, operation, params, exception):
    application, group, deployment_id = make_deployment(codedeploy)
    arguments = dict(params)
    if operation == "create_deployment":
        arguments.update(applicationName=application, deploymentGroupName=group)
        arguments.setdefault(
            "revision", {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "zip"}}
        )
    else:
        arguments["deploymentId"] = deployment_id
    with pytest.raises(getattr(codedeploy.exceptions, exception)):
        getattr(codedeploy, operation)(**arguments)

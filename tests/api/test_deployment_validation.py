"""Malformed requests to the deployment operations get the exception the model lists for them.

Requests here are well-formed for boto3 (it checks types, not enum values), so the server's
validation (botocore's model, mapped to each operation's listed exceptions) decides; none of them may
answer ``ValidationException``, which the CodeDeploy model does not list.
"""

from __future__ import annotations

import pytest
from test_deployment_targets import ROLE, make_deployment

from support.names import unique

GROUP = {"serviceRoleArn": ROLE}


@pytest.mark.parametrize(
    ("operation", "params", "exception"),
    [
        ("create_deployment_config", {"computePlatform": "Mainframe"}, "InvalidComputePlatformException"),
        (
            "create_deployment_config",
            {"minimumHealthyHosts": {"type": "MOST_CONCURRENCY", "value": 1}},
            "InvalidMinimumHealthyHostValueException",
        ),
        (
            "create_deployment_config",
            {"computePlatform": "Lambda", "trafficRoutingConfig": {"type": "Sometimes"}},
            "InvalidTrafficRoutingConfigurationException",
        ),
        (
            "create_deployment_config",
            {
                "minimumHealthyHosts": {"type": "HOST_COUNT", "value": 1},
                "zonalConfig": {"minimumHealthyHostsPerZone": {"type": "ZONE", "value": 1}},
            },
            "InvalidZonalDeploymentConfigurationException",
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
        (
            "create_deployment_group",
            {**GROUP, "autoRollbackConfiguration": {"enabled": True, "events": ["ALWAYS"]}},
            "InvalidAutoRollbackConfigException",
        ),
        (
            "create_deployment_group",
            {**GROUP, "ec2DeploymentOptions": {"autoScalingGroupProcessesToSuspend": ["Launch"]}},
            "InvalidAutoScalingGroupProcessToSuspendException",
        ),
        (
            "list_application_revisions",
            {"deployed": "sometimes"},
            "InvalidDeployedStateFilterException",
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
        (
            "create_deployment",
            {"autoRollbackConfiguration": {"enabled": True, "events": ["ALWAYS"]}},
            "InvalidAutoRollbackConfigException",
        ),
        ("continue_deployment", {"deploymentWaitType": "FOREVER"}, "InvalidDeploymentWaitTypeException"),
        ("list_deployment_instances", {"instanceStatusFilter": ["Done"]}, "InvalidInstanceStatusException"),
        ("list_deployment_instances", {"instanceTypeFilter": ["Purple"]}, "InvalidInstanceTypeException"),
        (
            "list_deployment_targets",
            {"targetFilters": {"Zone": ["a"]}},
            "InvalidTargetFilterNameException",
        ),
        (
            "put_lifecycle_event_hook_execution_status",
            {"lifecycleEventHookExecutionId": "x", "status": "Done"},
            "InvalidLifecycleEventHookExecutionStatusException",
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

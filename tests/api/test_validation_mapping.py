"""The generic choice of exception for a request that fails botocore-model validation.

Pure checks of ``api.validation`` over the whole model (no server); the server tests show the same
errors reaching boto3 as the named exception classes.
"""

from __future__ import annotations

import pytest

from opendeploy.api.errors import ApiError
from opendeploy.api.validation import invalid_parameter, missing_parameter, operation_model, validate_request

GROUP = {"applicationName": "a", "deploymentGroupName": "g", "serviceRoleArn": "r"}
CASES = [
    # missing, empty or malformed top-level members: <Member>RequiredException / Invalid<Member>Exception
    ("CreateApplication", {}, "ApplicationNameRequiredException"),
    ("CreateApplication", {"applicationName": ""}, "ApplicationNameRequiredException"),
    ("CreateApplication", {"applicationName": "x" * 101}, "InvalidApplicationNameException"),
    ("CreateApplication", {"applicationName": "a b"}, "InvalidApplicationNameException"),
    (
        "CreateApplication",
        {"applicationName": "a", "computePlatform": "X"},
        "InvalidComputePlatformException",
    ),
    ("CreateApplication", {"applicationName": "a", "tags": [{"Key": 1}]}, "InvalidTagsToAddException"),
    ("BatchGetApplications", {"applicationNames": ["a b"]}, "InvalidApplicationNameException"),
    ("TagResource", {"ResourceArn": "", "Tags": []}, "ResourceArnRequiredException"),
    (
        "RegisterOnPremisesInstance",
        {"instanceName": "i", "iamSessionArn": 5},
        "InvalidIamSessionArnException",
    ),
    ("ListOnPremisesInstances", {"registrationStatus": "X"}, "InvalidRegistrationStatusException"),
    ("ListDeployments", {"includeOnlyStatuses": ["Done"]}, "InvalidDeploymentStatusException"),
    ("ContinueDeployment", {"deploymentWaitType": "FOREVER"}, "InvalidDeploymentWaitTypeException"),
    # nested members: the shape's name, the parent's name + the member's, or the enclosing member
    ("ListOnPremisesInstances", {"tagFilters": [{"Type": "X"}]}, "InvalidTagFilterException"),
    ("ListDeployments", {"createTimeRange": {"start": "soon"}}, "InvalidTimeRangeException"),
    (
        "CreateDeploymentConfig",
        {"deploymentConfigName": "c", "minimumHealthyHosts": {"type": "HOST_COUNT", "value": "x"}},
        "InvalidMinimumHealthyHostValueException",
    ),
    (
        "CreateDeploymentConfig",
        {"deploymentConfigName": "c", "minimumHealthyHosts": {"type": "SOME", "value": 1}},
        "InvalidMinimumHealthyHostValueException",
    ),
    ("CreateDeploymentGroup", {**GROUP, "ec2TagFilters": [{"Type": "X"}]}, "InvalidEC2TagException"),
    (
        "CreateDeploymentGroup",
        {**GROUP, "deploymentStyle": {"deploymentType": "X"}},
        "InvalidDeploymentStyleException",
    ),
    (
        "CreateDeploymentGroup",
        {**GROUP, "triggerConfigurations": [{"triggerEvents": ["Nope"]}]},
        "InvalidTriggerConfigException",
    ),
    # names that differ in spelling: words matched in order (Config ~ Configuration, Processes ~ Process)
    (
        "CreateDeploymentConfig",
        {"deploymentConfigName": "c", "trafficRoutingConfig": {"type": "X"}},
        "InvalidTrafficRoutingConfigurationException",
    ),
    (
        "CreateDeploymentConfig",
        {"deploymentConfigName": "c", "zonalConfig": {"minimumHealthyHostsPerZone": {"type": "X"}}},
        "InvalidZonalDeploymentConfigurationException",
    ),
    (
        "CreateDeploymentGroup",
        {**GROUP, "autoRollbackConfiguration": {"events": ["X"]}},
        "InvalidAutoRollbackConfigException",
    ),
    (
        "CreateDeploymentGroup",
        {**GROUP, "ec2DeploymentOptions": {"autoScalingGroupProcessesToSuspend": ["Launch"]}},
        "InvalidAutoScalingGroupProcessToSuspendException",
    ),
    (
        "ListApplicationRevisions",
        {"applicationName": "a", "deployed": "X"},
        "InvalidDeployedStateFilterException",
    ),
    (
        "ListDeploymentTargets",
        {"deploymentId": "d-AAAAAAAAA", "targetFilters": {"Colour": ["x"]}},
        "InvalidTargetFilterNameException",
    ),
    (
        "PutLifecycleEventHookExecutionStatus",
        {"deploymentId": "d-AAAAAAAAA", "status": "X"},
        "InvalidLifecycleEventHookExecutionStatusException",
    ),
    # nothing in the model fits: the generic error
    ("CreateApplication", {"applicationName": "a", "colour": "blue"}, "ValidationException"),
]


@pytest.mark.parametrize(("operation", "params", "expected"), CASES)
def test_failure_gets_the_modeled_exception(operation, params, expected):
    with pytest.raises(ApiError) as raised:
        validate_request(operation_model(operation), params)
    assert raised.value.code == expected
    assert raised.value.status == 400


def test_valid_request_passes():
    validate_request(operation_model("ListDeployments"), {"createTimeRange": {"start": 1700000000.5}})
    validate_request(operation_model("CreateApplication"), {"applicationName": "My_App-1.0@x"})


def test_helpers_for_handlers():
    assert (
        invalid_parameter("CreateApplication", "applicationName", "m").code
        == "InvalidApplicationNameException"
    )
    nested = invalid_parameter("CreateDeploymentConfig", "value", "m", enclosing=["minimumHealthyHosts"])
    assert nested.code == "InvalidMinimumHealthyHostValueException"
    assert missing_parameter("GetDeploymentGroup", "deploymentGroupName").code == (
        "DeploymentGroupNameRequiredException"
    )
    assert invalid_parameter("ListApplications", "colour", "m").code == "ValidationException"

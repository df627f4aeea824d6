"""Statuses and error codes of deployments, instances (targets), lifecycle events and host commands.

The values are the wire values of CodeDeploy's API model; the deployment error codes carry the guide's
messages (guide L28307–28509, "Error codes for CodeDeploy") so the engine reports them word for word.
"""

from __future__ import annotations

from enum import StrEnum


class DeploymentStatus(StrEnum):
    CREATED = "Created"
    QUEUED = "Queued"
    IN_PROGRESS = "InProgress"
    BAKING = "Baking"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"
    READY = "Ready"  # blue/green: replacement installed, waiting to reroute traffic


# A deployment in one of these is "active": it holds its deployment group (one at a time per group).
ACTIVE_DEPLOYMENT_STATUSES: frozenset[DeploymentStatus] = frozenset(
    {
        DeploymentStatus.CREATED,
        DeploymentStatus.QUEUED,
        DeploymentStatus.IN_PROGRESS,
        DeploymentStatus.BAKING,
        DeploymentStatus.READY,
    }
)
COMPLETED_DEPLOYMENT_STATUSES: frozenset[DeploymentStatus] = frozenset(
    {DeploymentStatus.SUCCEEDED, DeploymentStatus.FAILED, DeploymentStatus.STOPPED}
)
# Statuses before the deployment has started work on any target.
NOT_STARTED_DEPLOYMENT_STATUSES: frozenset[DeploymentStatus] = frozenset(
    {DeploymentStatus.CREATED, DeploymentStatus.QUEUED}
)


class LifecycleEventStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    UNKNOWN = "Unknown"


COMPLETED_LIFECYCLE_EVENT_STATUSES: frozenset[LifecycleEventStatus] = frozenset(
    {LifecycleEventStatus.SUCCEEDED, LifecycleEventStatus.FAILED, LifecycleEventStatus.SKIPPED}
)


class TargetStatus(StrEnum):
    """Status of one target (instance, Lambda function, ECS service) in a deployment."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    UNKNOWN = "Unknown"
    READY = "Ready"


# The deprecated instance calls use the same values under the name InstanceStatus.
InstanceStatus = TargetStatus

# deploymentOverview counts targets in these statuses (the API shape has no Unknown member).
OVERVIEW_STATUSES: tuple[TargetStatus, ...] = (
    TargetStatus.PENDING,
    TargetStatus.IN_PROGRESS,
    TargetStatus.SUCCEEDED,
    TargetStatus.FAILED,
    TargetStatus.SKIPPED,
    TargetStatus.READY,
)


class TargetLabel(StrEnum):
    """Which environment of a blue/green deployment a target belongs to."""

    BLUE = "Blue"
    GREEN = "Green"


class DeploymentTargetType(StrEnum):
    INSTANCE = "InstanceTarget"
    LAMBDA = "LambdaTarget"
    ECS = "ECSTarget"
    CLOUDFORMATION = "CloudFormationTarget"


class LifecycleErrorCode(StrEnum):
    """A lifecycle event's ``diagnostics.errorCode``."""

    SUCCESS = "Success"
    SCRIPT_MISSING = "ScriptMissing"
    SCRIPT_NOT_EXECUTABLE = "ScriptNotExecutable"
    SCRIPT_TIMED_OUT = "ScriptTimedOut"
    SCRIPT_FAILED = "ScriptFailed"
    UNKNOWN_ERROR = "UnknownError"


class HostCommandStatus(StrEnum):
    """The agent protocol's DeploymentCommandStatus of one host command."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class StopStatus(StrEnum):
    """What StopDeployment answers: the stop is under way (Pending) or done (Succeeded)."""

    PENDING = "Pending"
    SUCCEEDED = "Succeeded"


class DeploymentCreator(StrEnum):
    USER = "user"
    AUTOSCALING = "autoscaling"
    CODEDEPLOY_ROLLBACK = "codeDeployRollback"
    CODEDEPLOY = "CodeDeploy"
    CODEDEPLOY_AUTO_UPDATE = "CodeDeployAutoUpdate"
    CLOUDFORMATION = "CloudFormation"
    CLOUDFORMATION_ROLLBACK = "CloudFormationRollback"
    AUTOSCALING_TERMINATION = "autoscalingTermination"


class ErrorCode(StrEnum):
    """A deployment's ``errorInformation.code`` (the API model's ErrorCode enum)."""

    AGENT_ISSUE = "AGENT_ISSUE"
    ALARM_ACTIVE = "ALARM_ACTIVE"
    APPLICATION_MISSING = "APPLICATION_MISSING"
    AUTOSCALING_VALIDATION_ERROR = "AUTOSCALING_VALIDATION_ERROR"
    AUTO_SCALING_CONFIGURATION = "AUTO_SCALING_CONFIGURATION"
    AUTO_SCALING_IAM_ROLE_PERMISSIONS = "AUTO_SCALING_IAM_ROLE_PERMISSIONS"
    CODEDEPLOY_RESOURCE_CANNOT_BE_FOUND = "CODEDEPLOY_RESOURCE_CANNOT_BE_FOUND"
    CUSTOMER_APPLICATION_UNHEALTHY = "CUSTOMER_APPLICATION_UNHEALTHY"
    DEPLOYMENT_GROUP_MISSING = "DEPLOYMENT_GROUP_MISSING"
    ECS_UPDATE_ERROR = "ECS_UPDATE_ERROR"
    ELASTIC_LOAD_BALANCING_INVALID = "ELASTIC_LOAD_BALANCING_INVALID"
    ELB_INVALID_INSTANCE = "ELB_INVALID_INSTANCE"
    HEALTH_CONSTRAINTS = "HEALTH_CONSTRAINTS"
    HEALTH_CONSTRAINTS_INVALID = "HEALTH_CONSTRAINTS_INVALID"
    HOOK_EXECUTION_FAILURE = "HOOK_EXECUTION_FAILURE"
    IAM_ROLE_MISSING = "IAM_ROLE_MISSING"
    IAM_ROLE_PERMISSIONS = "IAM_ROLE_PERMISSIONS"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    INVALID_ECS_SERVICE = "INVALID_ECS_SERVICE"
    INVALID_LAMBDA_CONFIGURATION = "INVALID_LAMBDA_CONFIGURATION"
    INVALID_LAMBDA_FUNCTION = "INVALID_LAMBDA_FUNCTION"
    INVALID_REVISION = "INVALID_REVISION"
    MANUAL_STOP = "MANUAL_STOP"
    MISSING_BLUE_GREEN_DEPLOYMENT_CONFIGURATION = "MISSING_BLUE_GREEN_DEPLOYMENT_CONFIGURATION"
    MISSING_ELB_INFORMATION = "MISSING_ELB_INFORMATION"
    MISSING_GITHUB_TOKEN = "MISSING_GITHUB_TOKEN"
    NO_EC2_SUBSCRIPTION = "NO_EC2_SUBSCRIPTION"
    NO_INSTANCES = "NO_INSTANCES"
    OVER_MAX_INSTANCES = "OVER_MAX_INSTANCES"
    RESOURCE_LIMIT_EXCEEDED = "RESOURCE_LIMIT_EXCEEDED"
    REVISION_MISSING = "REVISION_MISSING"
    THROTTLED = "THROTTLED"
    TIMEOUT = "TIMEOUT"
    CLOUDFORMATION_STACK_FAILURE = "CLOUDFORMATION_STACK_FAILURE"
    # In the guide's error-code table but not in the API model's enum (botocore does not check
    # response enums, so clients still read it).
    UNABLE_TO_SEND_ASG = "UNABLE_TO_SEND_ASG"


# The guide's error-code table (L28307–28509), message text verbatim with the PDF's hyphenation
# repaired. NO_INSTANCES, which the table describes by a list of causes, uses the message the guide
# shows for its common cause (L27975–27978).
ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.AGENT_ISSUE: (
        "The deployment failed because of a problem with the CodeDeploy agent. Make sure the agent is "
        "installed and running on all instances in this deployment group."
    ),
    ErrorCode.AUTO_SCALING_IAM_ROLE_PERMISSIONS: (
        "The service role associated with your deployment group does not have the permission required to "
        "perform operations in the following AWS service."
    ),
    ErrorCode.HEALTH_CONSTRAINTS: (
        "The overall deployment failed because too many individual instances failed deployment, too few "
        "healthy instances are available for deployment, or some instances in your deployment group are "
        "experiencing problems."
    ),
    ErrorCode.HEALTH_CONSTRAINTS_INVALID: (
        "The deployment can’t start because the minimum number of healthy instances, as defined by your "
        "deployment configuration, are not available. You can reduce the required number of healthy "
        "instances by updating your deployment configuration or increase the number of instances in this "
        "deployment group."
    ),
    ErrorCode.IAM_ROLE_MISSING: (
        "The deployment failed because no service role exists with the service role name specified for "
        "the deployment group. Make sure you are using the correct service role name."
    ),
    ErrorCode.IAM_ROLE_PERMISSIONS: (
        "CodeDeploy does not have the permissions required to assume a role, or the IAM role you're using "
        "does't give you permission to perform operations in an AWS service."
    ),
    ErrorCode.NO_INSTANCES: (
        "The deployment failed because no instances were found for your deployment group. Check your "
        "deployment group settings to make sure the tags for your EC2 instances or Auto Scaling groups "
        "correctly identify the instances you want to deploy to, and then try again."
    ),
    ErrorCode.OVER_MAX_INSTANCES: (
        "The deployment failed because more instances are targeted for deployment than are allowed for "
        "your account. To reduce the number of instances targeted for this deployment, update the tag "
        "settings for this deployment group or delete some of the targeted instances. Alternatively, you "
        "can contact AWS Support to request a limit increase."
    ),
    ErrorCode.THROTTLED: (
        "The deployment failed because more requests were made than are permitted for AWS CodeDeploy by "
        "an IAM role. Try reducing the number of requests."
    ),
    ErrorCode.UNABLE_TO_SEND_ASG: (
        "The deployment failed because the deployment group isn’t configured correctly with its Amazon "
        "EC2 Auto Scaling group. In the CodeDeploy console, delete the Amazon EC2 Auto Scaling group from "
        "the deployment group, and then add it again."
    ),
}

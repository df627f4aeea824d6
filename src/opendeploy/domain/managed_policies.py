"""The AWS managed policies the guide names for CodeDeploy, as plain policy documents under their ARNs.

They exist on the server as they do in every AWS account: attachable, never editable. Sources:

- ``AWSCodeDeployRole`` and ``AmazonEC2RoleforAWSCodeDeployLimited``: printed in full in the guide
  (L21744–21797, L21820–21850).
- The notification statements of ``AWSCodeDeployFullAccess`` and ``AWSCodeDeployReadOnlyAccess``: printed
  in the guide (L21881–21979), including their ``StringLike`` on ``arn:aws:codedeploy:*``. AWS's current
  versions (v6) write that condition as ``ArnLike`` on ``arn:aws:codedeploy:*:*:application:*``; the
  guide's form is kept, here and in DeployerAccess.
- The CodeDeploy statements of the three user policies, the rest of DeployerAccess, the Lambda and ECS
  service role policies and the ARNs' ``service-role/`` paths: AWS's managed policy reference
  (docs.aws.amazon.com/aws-managed-policy/latest/reference/<name>.html); the guide describes them
  only in words (L21714–21818, L1898–1944) and gives the ARNs at L2165–2185.
- ``AdministratorAccess``: ``*`` on ``*``, AWS's well-known document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

from opendeploy.domain.iam_policy import Policy, parse_policy

AWS_POLICY_PREFIX = "arn:aws:iam::aws:policy/"

ADMINISTRATOR_ACCESS = AWS_POLICY_PREFIX + "AdministratorAccess"
CODEDEPLOY_FULL_ACCESS = AWS_POLICY_PREFIX + "AWSCodeDeployFullAccess"
CODEDEPLOY_READ_ONLY_ACCESS = AWS_POLICY_PREFIX + "AWSCodeDeployReadOnlyAccess"
CODEDEPLOY_DEPLOYER_ACCESS = AWS_POLICY_PREFIX + "AWSCodeDeployDeployerAccess"
CODEDEPLOY_ROLE = AWS_POLICY_PREFIX + "service-role/AWSCodeDeployRole"
CODEDEPLOY_ROLE_FOR_LAMBDA = AWS_POLICY_PREFIX + "service-role/AWSCodeDeployRoleForLambda"
CODEDEPLOY_ROLE_FOR_LAMBDA_LIMITED = AWS_POLICY_PREFIX + "service-role/AWSCodeDeployRoleForLambdaLimited"
CODEDEPLOY_ROLE_FOR_ECS = AWS_POLICY_PREFIX + "AWSCodeDeployRoleForECS"
EC2_ROLE_FOR_CODEDEPLOY_LIMITED = AWS_POLICY_PREFIX + "service-role/AmazonEC2RoleforAWSCodeDeployLimited"

_VERSION = "2012-10-17"


def _allow(actions: list[str], resource: str = "*", sid: str | None = None, **extra: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid} if sid else {}
    statement.update({"Effect": "Allow", "Action": actions, "Resource": resource, **extra})
    return statement


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": _VERSION, "Statement": list(statements)}


# Notification rules may only concern CodeDeploy resources (guide L21896–21899).
_FOR_CODEDEPLOY = {"StringLike": {"codestar-notifications:NotificationsForResource": "arn:aws:codedeploy:*"}}
# S3 objects tagged for CodeDeploy (guide L21838–21846).
_TAGGED_FOR_CODEDEPLOY = {"StringEquals": {"s3:ExistingObjectTag/UseWithCodeDeploy": "true"}}
_CODEDEPLOY_READ = ["codedeploy:Batch*", "codedeploy:Get*", "codedeploy:List*"]
_NOTIFICATION_LISTS = [
    "codestar-notifications:ListNotificationRules",
    "codestar-notifications:ListTargets",
    "codestar-notifications:ListTagsforResource",
    "codestar-notifications:ListEventTypes",
]

_CODEDEPLOY_ROLE_ACTIONS = [
    *(
        f"autoscaling:{name}"
        for name in (
            "CompleteLifecycleAction",
            "DeleteLifecycleHook",
            "DescribeAutoScalingGroups",
            "DescribeLifecycleHooks",
            "PutLifecycleHook",
            "RecordLifecycleActionHeartbeat",
            "CreateAutoScalingGroup",
            "CreateOrUpdateTags",
            "UpdateAutoScalingGroup",
            "EnableMetricsCollection",
            "DescribePolicies",
            "DescribeScheduledActions",
            "DescribeNotificationConfigurations",
            "SuspendProcesses",
            "ResumeProcesses",
            "AttachLoadBalancers",
            "AttachLoadBalancerTargetGroups",
            "PutScalingPolicy",
            "PutScheduledUpdateGroupAction",
            "PutNotificationConfiguration",
            "DescribeScalingActivities",
            "DeleteAutoScalingGroup",
            "PutWarmPool",
        )
    ),
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ec2:TerminateInstances",
    "tag:GetResources",
    "sns:Publish",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:PutMetricAlarm",
    *(
        f"elasticloadbalancing:{name}"
        for name in (
            "DescribeLoadBalancers",
            "DescribeLoadBalancerAttributes",
            "DescribeInstanceHealth",
            "RegisterInstancesWithLoadBalancer",
            "DeregisterInstancesFromLoadBalancer",
            "DescribeTargetGroups",
            "DescribeTargetGroupAttributes",
            "DescribeTargetHealth",
            "RegisterTargets",
            "DeregisterTargets",
        )
    ),
]


def _lambda_role(publish: bool) -> dict[str, Any]:
    # AWSCodeDeployRoleForLambda (v3) and its Limited variant, which lacks sns:Publish.
    basics = [
        "cloudwatch:DescribeAlarms",
        "lambda:UpdateAlias",
        "lambda:GetAlias",
        "lambda:GetProvisionedConcurrencyConfig",
    ]
    if publish:
        basics.append("sns:Publish")
    return _document(
        _allow(basics),
        _allow(["s3:GetObject", "s3:GetObjectVersion"], "arn:aws:s3:::*/CodeDeploy/*"),
        _allow(["s3:GetObject", "s3:GetObjectVersion"], Condition=_TAGGED_FOR_CODEDEPLOY),
        # Hook functions must be named CodeDeployHook_* (guide L8803–8806).
        _allow(["lambda:InvokeFunction"], "arn:aws:lambda:*:*:function:CodeDeployHook_*"),
    )


_DOCUMENTS: dict[str, dict[str, Any]] = {
    ADMINISTRATOR_ACCESS: _document(_allow(["*"])),
    CODEDEPLOY_FULL_ACCESS: _document(
        _allow(["codedeploy:*"]),
        _allow(
            [
                "codestar-notifications:CreateNotificationRule",
                "codestar-notifications:DescribeNotificationRule",
                "codestar-notifications:UpdateNotificationRule",
                "codestar-notifications:DeleteNotificationRule",
                "codestar-notifications:Subscribe",
                "codestar-notifications:Unsubscribe",
            ],
            sid="CodeStarNotificationsReadWriteAccess",
            Condition=_FOR_CODEDEPLOY,
        ),
        _allow(_NOTIFICATION_LISTS, sid="CodeStarNotificationsListAccess"),
        _allow(
            ["sns:CreateTopic", "sns:SetTopicAttributes"],
            "arn:aws:sns:*:*:codestar-notifications*",
            sid="CodeStarNotificationsSNSTopicCreateAccess",
        ),
        _allow(["sns:ListTopics"], sid="SNSTopicListAccess"),
        _allow(
            ["chatbot:DescribeSlackChannelConfigurations", "chatbot:ListMicrosoftTeamsChannelConfigurations"],
            sid="CodeStarNotificationsChatbotAccess",
        ),
    ),
    CODEDEPLOY_READ_ONLY_ACCESS: _document(
        _allow(_CODEDEPLOY_READ),
        _allow(
            ["codestar-notifications:DescribeNotificationRule"],
            sid="CodeStarNotificationsPowerUserAccess",
            Condition=_FOR_CODEDEPLOY,
        ),
        _allow(
            [
                "codestar-notifications:ListNotificationRules",
                "codestar-notifications:ListEventTypes",
                "codestar-notifications:ListTargets",
            ],
            sid="CodeStarNotificationsListAccess",
        ),
    ),
    # The notification statements after the first are those AWS lists for DeployerAccess (read-write on
    # rules without delete, the list actions, sns:ListTopics, chatbot:DescribeSlackChannelConfigurations);
    # their Sids follow the FullAccess statements with the same actions.
    CODEDEPLOY_DEPLOYER_ACCESS: _document(
        _allow(
            [
                "codedeploy:Batch*",
                "codedeploy:CreateDeployment",
                "codedeploy:Get*",
                "codedeploy:List*",
                "codedeploy:RegisterApplicationRevision",
            ]
        ),
        _allow(
            [
                "codestar-notifications:CreateNotificationRule",
                "codestar-notifications:DescribeNotificationRule",
                "codestar-notifications:UpdateNotificationRule",
                "codestar-notifications:Subscribe",
                "codestar-notifications:Unsubscribe",
            ],
            sid="CodeStarNotificationsReadWriteAccess",
            Condition=_FOR_CODEDEPLOY,
        ),
        _allow(_NOTIFICATION_LISTS, sid="CodeStarNotificationsListAccess"),
        _allow(["sns:ListTopics"], sid="SNSTopicListAccess"),
        _allow(["chatbot:DescribeSlackChannelConfigurations"], sid="CodeStarNotificationsChatbotAccess"),
    ),
    CODEDEPLOY_ROLE: _document(_allow(_CODEDEPLOY_ROLE_ACTIONS)),
    CODEDEPLOY_ROLE_FOR_LAMBDA: _lambda_role(publish=True),
    CODEDEPLOY_ROLE_FOR_LAMBDA_LIMITED: _lambda_role(publish=False),
    CODEDEPLOY_ROLE_FOR_ECS: _document(
        _allow(
            [
                "ecs:DescribeServices",
                "ecs:CreateTaskSet",
                "ecs:UpdateServicePrimaryTaskSet",
                "ecs:DeleteTaskSet",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:ModifyRule",
                "lambda:InvokeFunction",
                "cloudwatch:DescribeAlarms",
                "sns:Publish",
                "s3:GetObject",
                "s3:GetObjectVersion",
            ]
        ),
        _allow(
            ["iam:PassRole"], Condition={"StringLike": {"iam:PassedToService": ["ecs-tasks.amazonaws.com"]}}
        ),
    ),
    EC2_ROLE_FOR_CODEDEPLOY_LIMITED: _document(
        _allow(["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"], "arn:aws:s3:::*/CodeDeploy/*"),
        # s3:ListBucket left this statement on 2021-11-22 (guide L21981–22088).
        _allow(["s3:GetObject", "s3:GetObjectVersion"], Condition=_TAGGED_FOR_CODEDEPLOY),
    ),
}

# Callers get copies (``document``) or the parsed, frozen ``Policy``; the table itself never changes.
MANAGED_POLICY_ARNS: tuple[str, ...] = tuple(_DOCUMENTS)


def policy_name(arn: str) -> str:
    """``arn:aws:iam::aws:policy/service-role/AWSCodeDeployRole`` -> ``AWSCodeDeployRole``."""
    return arn.rsplit("/", 1)[-1]


def policy_path(arn: str) -> str:
    """The policy's IAM path: ``/`` or ``/service-role/``."""
    middle = arn[len(AWS_POLICY_PREFIX) :].rpartition("/")[0]
    return f"/{middle}/" if middle else "/"


def is_managed_policy(arn: str) -> bool:
    return arn in _DOCUMENTS


def document(arn: str) -> dict[str, Any]:
    """A fresh copy of the managed policy's document (``KeyError`` for an unknown ARN)."""
    return json.loads(json.dumps(_DOCUMENTS[arn]))


def document_json(arn: str) -> str:
    """The document as JSON text, as IAM's GetPolicyVersion returns it (before URL-encoding)."""
    return json.dumps(_DOCUMENTS[arn], indent=2)


@cache
def managed_policy(arn: str) -> Policy:
    """The parsed policy, named by its ARN (parsed once per process)."""
    return parse_policy(_DOCUMENTS[arn], name=arn)


def all_documents() -> Mapping[str, dict[str, Any]]:
    """Every managed policy's document by ARN (copies)."""
    return MappingProxyType({arn: document(arn) for arn in _DOCUMENTS})

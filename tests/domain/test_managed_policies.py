"""The AWS managed policies (guide L21701–21980) decide as their documents say, under their AWS ARNs."""

from __future__ import annotations

from typing import Any

import pytest

from opendeploy.domain import managed_policies as managed
from opendeploy.domain.iam_policy import Outcome, Request, evaluate

ALLOW, IMPLICIT = Outcome.ALLOW, Outcome.IMPLICIT_DENY
GROUP = "arn:aws:codedeploy:us-west-2:444455556666:deploymentgroup:App/Group"
APPLICATION = "arn:aws:codedeploy:us-west-2:444455556666:application:App"
CONFIG = "arn:aws:codedeploy:us-west-2:444455556666:deploymentconfig:CodeDeployDefault.OneAtATime"
TAGGED = {"s3:ExistingObjectTag/UseWithCodeDeploy": "true"}
FOR_CODEDEPLOY = {"codestar-notifications:NotificationsForResource": APPLICATION}
FOR_CODECOMMIT = {"codestar-notifications:NotificationsForResource": "arn:aws:codecommit:us-west-2:1:repo"}


@pytest.mark.parametrize(
    ("arn", "action", "resource", "context", "expected"),
    [
        # AdministratorAccess: everything, everywhere.
        (managed.ADMINISTRATOR_ACCESS, "codedeploy:CreateDeployment", GROUP, {}, ALLOW),
        (managed.ADMINISTRATOR_ACCESS, "s3:GetObject", "arn:aws:s3:::any/key", {}, ALLOW),
        (managed.ADMINISTRATOR_ACCESS, "iam:CreateUser", "arn:aws:iam::444455556666:user/x", {}, ALLOW),
        # ReadOnly: Batch*, Get*, List* and nothing that changes anything.
        (managed.CODEDEPLOY_READ_ONLY_ACCESS, "codedeploy:GetDeployment", GROUP, {}, ALLOW),
        (managed.CODEDEPLOY_READ_ONLY_ACCESS, "codedeploy:ListApplications", "*", {}, ALLOW),
        (managed.CODEDEPLOY_READ_ONLY_ACCESS, "codedeploy:BatchGetDeployments", GROUP, {}, ALLOW),
        (managed.CODEDEPLOY_READ_ONLY_ACCESS, "codedeploy:GetDeploymentConfig", CONFIG, {}, ALLOW),
        (managed.CODEDEPLOY_READ_ONLY_ACCESS, "codedeploy:CreateDeployment", GROUP, {}, IMPLICIT),
        (
            managed.CODEDEPLOY_READ_ONLY_ACCESS,
            "codedeploy:RegisterApplicationRevision",
            APPLICATION,
            {},
            IMPLICIT,
        ),
        (managed.CODEDEPLOY_READ_ONLY_ACCESS, "codedeploy:DeleteApplication", APPLICATION, {}, IMPLICIT),
        (managed.CODEDEPLOY_READ_ONLY_ACCESS, "codedeploy:StopDeployment", GROUP, {}, IMPLICIT),
        (
            managed.CODEDEPLOY_READ_ONLY_ACCESS,
            "codestar-notifications:DescribeNotificationRule",
            "*",
            FOR_CODEDEPLOY,
            ALLOW,
        ),
        (
            managed.CODEDEPLOY_READ_ONLY_ACCESS,
            "codestar-notifications:DescribeNotificationRule",
            "*",
            FOR_CODECOMMIT,
            IMPLICIT,
        ),
        (
            managed.CODEDEPLOY_READ_ONLY_ACCESS,
            "codestar-notifications:CreateNotificationRule",
            "*",
            FOR_CODEDEPLOY,
            IMPLICIT,
        ),
        # Deployer: register and deploy revisions, read everything, delete or create nothing.
        (managed.CODEDEPLOY_DEPLOYER_ACCESS, "codedeploy:CreateDeployment", GROUP, {}, ALLOW),
        (
            managed.CODEDEPLOY_DEPLOYER_ACCESS,
            "codedeploy:RegisterApplicationRevision",
            APPLICATION,
            {},
            ALLOW,
        ),
        (managed.CODEDEPLOY_DEPLOYER_ACCESS, "codedeploy:GetDeploymentConfig", CONFIG, {}, ALLOW),
        (
            managed.CODEDEPLOY_DEPLOYER_ACCESS,
            "codedeploy:BatchGetApplicationRevisions",
            APPLICATION,
            {},
            ALLOW,
        ),
        (managed.CODEDEPLOY_DEPLOYER_ACCESS, "codedeploy:DeleteApplication", APPLICATION, {}, IMPLICIT),
        (managed.CODEDEPLOY_DEPLOYER_ACCESS, "codedeploy:CreateApplication", APPLICATION, {}, IMPLICIT),
        (managed.CODEDEPLOY_DEPLOYER_ACCESS, "codedeploy:StopDeployment", GROUP, {}, IMPLICIT),
        (
            managed.CODEDEPLOY_DEPLOYER_ACCESS,
            "codestar-notifications:DeleteNotificationRule",
            "*",
            FOR_CODEDEPLOY,
            IMPLICIT,
        ),
        (managed.CODEDEPLOY_DEPLOYER_ACCESS, "codestar-notifications:Subscribe", "*", FOR_CODEDEPLOY, ALLOW),
        # FullAccess: all of CodeDeploy and its notifications, nothing of S3 or EC2.
        (managed.CODEDEPLOY_FULL_ACCESS, "codedeploy:DeleteApplication", APPLICATION, {}, ALLOW),
        (managed.CODEDEPLOY_FULL_ACCESS, "codedeploy:CreateDeploymentConfig", CONFIG, {}, ALLOW),
        (managed.CODEDEPLOY_FULL_ACCESS, "CodeDeploy:deleteDeploymentGroup", GROUP, {}, ALLOW),
        (managed.CODEDEPLOY_FULL_ACCESS, "s3:GetObject", "arn:aws:s3:::bucket/key", {}, IMPLICIT),
        (managed.CODEDEPLOY_FULL_ACCESS, "ec2:DescribeInstances", "*", {}, IMPLICIT),
        (
            managed.CODEDEPLOY_FULL_ACCESS,
            "sns:CreateTopic",
            "arn:aws:sns:us-west-2:1:codestar-notifications-x",
            {},
            ALLOW,
        ),
        (managed.CODEDEPLOY_FULL_ACCESS, "sns:CreateTopic", "arn:aws:sns:us-west-2:1:other", {}, IMPLICIT),
        (
            managed.CODEDEPLOY_FULL_ACCESS,
            "codestar-notifications:DeleteNotificationRule",
            "*",
            FOR_CODEDEPLOY,
            ALLOW,
        ),
        (managed.CODEDEPLOY_FULL_ACCESS, "codestar-notifications:DeleteNotificationRule", "*", {}, IMPLICIT),
        (managed.CODEDEPLOY_FULL_ACCESS, "chatbot:ListMicrosoftTeamsChannelConfigurations", "*", {}, ALLOW),
        # The instance profile policy: CodeDeploy/ prefixes of any bucket, or objects tagged for CodeDeploy.
        (
            managed.EC2_ROLE_FOR_CODEDEPLOY_LIMITED,
            "s3:GetObject",
            "arn:aws:s3:::bucket/CodeDeploy/x",
            {},
            ALLOW,
        ),
        (
            managed.EC2_ROLE_FOR_CODEDEPLOY_LIMITED,
            "s3:GetObjectVersion",
            "arn:aws:s3:::b/CodeDeploy/a/b.zip",
            {},
            ALLOW,
        ),
        (
            managed.EC2_ROLE_FOR_CODEDEPLOY_LIMITED,
            "s3:GetObject",
            "arn:aws:s3:::bucket/releases/x.zip",
            {},
            IMPLICIT,
        ),
        (
            managed.EC2_ROLE_FOR_CODEDEPLOY_LIMITED,
            "s3:GetObject",
            "arn:aws:s3:::bucket/releases/x.zip",
            TAGGED,
            ALLOW,
        ),
        (
            managed.EC2_ROLE_FOR_CODEDEPLOY_LIMITED,
            "s3:GetObject",
            "arn:aws:s3:::bucket/releases/x.zip",
            {"s3:ExistingObjectTag/UseWithCodeDeploy": "false"},
            IMPLICIT,
        ),
        (
            managed.EC2_ROLE_FOR_CODEDEPLOY_LIMITED,
            "s3:ListBucket",
            "arn:aws:s3:::bucket/releases/x",
            TAGGED,
            IMPLICIT,
        ),
        (
            managed.EC2_ROLE_FOR_CODEDEPLOY_LIMITED,
            "s3:PutObject",
            "arn:aws:s3:::bucket/CodeDeploy/x",
            {},
            IMPLICIT,
        ),
        (managed.EC2_ROLE_FOR_CODEDEPLOY_LIMITED, "s3:ListAllMyBuckets", "*", {}, IMPLICIT),
        # The service role policies.
        (managed.CODEDEPLOY_ROLE, "autoscaling:PutWarmPool", "*", {}, ALLOW),
        (managed.CODEDEPLOY_ROLE, "elasticloadbalancing:DescribeTargetGroupAttributes", "*", {}, ALLOW),
        (managed.CODEDEPLOY_ROLE, "ec2:RunInstances", "*", {}, IMPLICIT),
        (managed.CODEDEPLOY_ROLE, "codedeploy:CreateDeployment", GROUP, {}, IMPLICIT),
        (
            managed.CODEDEPLOY_ROLE_FOR_LAMBDA,
            "lambda:InvokeFunction",
            "arn:aws:lambda:us-west-2:1:function:CodeDeployHook_pre",
            {},
            ALLOW,
        ),
        (
            managed.CODEDEPLOY_ROLE_FOR_LAMBDA,
            "lambda:InvokeFunction",
            "arn:aws:lambda:us-west-2:1:function:myFunction",
            {},
            IMPLICIT,
        ),
        (managed.CODEDEPLOY_ROLE_FOR_LAMBDA, "sns:Publish", "arn:aws:sns:us-west-2:1:topic", {}, ALLOW),
        (
            managed.CODEDEPLOY_ROLE_FOR_LAMBDA_LIMITED,
            "sns:Publish",
            "arn:aws:sns:us-west-2:1:topic",
            {},
            IMPLICIT,
        ),
        (managed.CODEDEPLOY_ROLE_FOR_LAMBDA_LIMITED, "lambda:UpdateAlias", "*", {}, ALLOW),
        (managed.CODEDEPLOY_ROLE_FOR_ECS, "ecs:CreateTaskSet", "*", {}, ALLOW),
        (
            managed.CODEDEPLOY_ROLE_FOR_ECS,
            "iam:PassRole",
            "*",
            {"iam:PassedToService": "ecs-tasks.amazonaws.com"},
            ALLOW,
        ),
        (
            managed.CODEDEPLOY_ROLE_FOR_ECS,
            "iam:PassRole",
            "*",
            {"iam:PassedToService": "ec2.amazonaws.com"},
            IMPLICIT,
        ),
    ],
)
def test_managed_policies_decide(
    arn: str, action: str, resource: str, context: dict, expected: Outcome
) -> None:
    decision = evaluate([managed.managed_policy(arn)], Request(action, resource, context))
    assert decision.outcome is expected
    if expected is ALLOW:
        assert decision.policy == arn


@pytest.mark.parametrize(
    ("arn", "name", "path"),
    [
        ("arn:aws:iam::aws:policy/AdministratorAccess", "AdministratorAccess", "/"),
        ("arn:aws:iam::aws:policy/AWSCodeDeployFullAccess", "AWSCodeDeployFullAccess", "/"),
        ("arn:aws:iam::aws:policy/AWSCodeDeployReadOnlyAccess", "AWSCodeDeployReadOnlyAccess", "/"),
        ("arn:aws:iam::aws:policy/AWSCodeDeployDeployerAccess", "AWSCodeDeployDeployerAccess", "/"),
        ("arn:aws:iam::aws:policy/service-role/AWSCodeDeployRole", "AWSCodeDeployRole", "/service-role/"),
        (
            "arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda",
            "AWSCodeDeployRoleForLambda",
            "/service-role/",
        ),
        ("arn:aws:iam::aws:policy/AWSCodeDeployRoleForECS", "AWSCodeDeployRoleForECS", "/"),
        (
            "arn:aws:iam::aws:policy/service-role/AmazonEC2RoleforAWSCodeDeployLimited",
            "AmazonEC2RoleforAWSCodeDeployLimited",
            "/service-role/",
        ),
    ],
)
def test_managed_policies_live_under_their_aws_arns(arn: str, name: str, path: str) -> None:
    assert managed.is_managed_policy(arn)
    assert (managed.policy_name(arn), managed.policy_path(arn)) == (name, path)
    assert arn in managed.MANAGED_POLICY_ARNS


def test_every_document_parses_and_is_handed_out_as_a_copy() -> None:
    for arn in managed.MANAGED_POLICY_ARNS:
        document: dict[str, Any] = managed.document(arn)
        assert document["Version"] == "2012-10-17"
        assert managed.managed_policy(arn).statements
        document["Statement"].clear()
        assert managed.document(arn)["Statement"]
        assert managed.all_documents()[arn] == managed.document(arn)
    assert not managed.is_managed_policy("arn:aws:iam::aws:policy/NoSuchPolicy")


def test_the_guide_printed_documents_are_carried_over_exactly() -> None:
    role = managed.document(managed.CODEDEPLOY_ROLE)["Statement"]
    assert len(role) == 1 and role[0]["Resource"] == "*"
    assert (
        len(role[0]["Action"]) == 40
    )  # L21744–21791: 23 autoscaling, 3 ec2, 1 tag, 1 sns, 2 cloudwatch, 10 elb
    limited = managed.document(managed.EC2_ROLE_FOR_CODEDEPLOY_LIMITED)["Statement"]
    assert limited == [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"],
            "Resource": "arn:aws:s3:::*/CodeDeploy/*",
        },
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": "*",
            "Condition": {"StringEquals": {"s3:ExistingObjectTag/UseWithCodeDeploy": "true"}},
        },
    ]
    full_sids = [
        statement.get("Sid") for statement in managed.document(managed.CODEDEPLOY_FULL_ACCESS)["Statement"]
    ]
    assert full_sids == [
        None,
        "CodeStarNotificationsReadWriteAccess",
        "CodeStarNotificationsListAccess",
        "CodeStarNotificationsSNSTopicCreateAccess",
        "SNSTopicListAccess",
        "CodeStarNotificationsChatbotAccess",
    ]
    assert '"Version": "2012-10-17"' in managed.document_json(managed.CODEDEPLOY_READ_ONLY_ACCESS)

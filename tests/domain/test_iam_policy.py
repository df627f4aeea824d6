"""The IAM policy evaluator on the guide's policy examples (guide L22089–22395, L22464–22490), the IAM
semantics it documents (deny wins, NotAction/NotResource, wildcards, condition operators, policy
variables) and malformed documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from opendeploy.domain.iam_conditions import normalize_context
from opendeploy.domain.iam_policy import (
    Decision,
    DecisionMemo,
    MalformedPolicy,
    Outcome,
    Policy,
    Request,
    allows_everything,
    cached_policy,
    canonical_codedeploy_arn,
    context_keys,
    evaluate,
    evaluate_all,
    parse_policy,
    uses_resource_tags,
)

ALLOW, DENY, IMPLICIT = Outcome.ALLOW, Outcome.EXPLICIT_DENY, Outcome.IMPLICIT_DENY
ACCOUNT = "444455556666"


def cd(rest: str, region: str = "us-west-2", account: str = ACCOUNT) -> str:
    """A CodeDeploy ARN in the guide's example account."""
    return f"arn:aws:codedeploy:{region}:{account}:{rest}"


def statement(effect: str, action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict:
    return {"Effect": effect, "Action": action, "Resource": resource, **extra}


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict:
    return statement("Allow", action, resource, **extra)


def deny(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict:
    return statement("Deny", action, resource, **extra)


def policy(*statements: dict, name: str = "test-policy", version: str = "2012-10-17") -> Policy:
    return parse_policy({"Version": version, "Statement": list(statements)}, name=name)


def decide(policies: Policy | list[Policy], action: str, resource: str, **context: Any) -> Outcome:
    # Condition keys as keyword arguments: aws_username -> aws:username, aws_PrincipalTag__team ->
    # aws:PrincipalTag/team.
    keys = {key.replace("__", "/").replace("_", ":", 1): value for key, value in context.items()}
    chosen = policies if isinstance(policies, list) else [policies]
    return evaluate(chosen, Request(action, resource, keys)).outcome


# --- the guide's examples -------------------------------------------------------------------------------

DELETE_ONE_GROUP = policy(
    allow("codedeploy:DeleteDeploymentGroup", [cd("deploymentgroup:WordPress_App/WordPress_DepGroup")])
)
EXAMPLE_1_ONE_REGION = policy(allow(["codedeploy:*"], [cd("*")]))
EXAMPLE_2_TEST_APPLICATIONS = policy(
    allow(["codedeploy:RegisterApplicationRevision"], [cd("application:Test*")])
)
EXAMPLE_3_ONE_GROUP = policy(
    allow(["codedeploy:CreateDeployment"], [cd("deploymentgroup:WordPress_App/WordPress_DepGroup")]),
    allow(["codedeploy:GetDeploymentConfig"], [cd("deploymentconfig:ThreeQuartersHealthy")]),
    allow(["codedeploy:GetApplicationRevision"], [cd("application:WordPress_App")]),
)
TEST_WEST_GROUPS = policy(allow("codedeploy:*", cd("deploymentgroup:Test*/West*")))
VIEW_OWN_USER = policy(
    {
        "Sid": "ViewOwnUserInfo",
        "Effect": "Allow",
        "Action": [
            "iam:GetUserPolicy",
            "iam:ListGroupsForUser",
            "iam:ListAttachedUserPolicies",
            "iam:ListUserPolicies",
            "iam:GetUser",
        ],
        "Resource": ["arn:aws:iam::*:user/${aws:username}"],
    },
    {
        "Sid": "NavigateInConsole",
        "Effect": "Allow",
        "Action": [
            "iam:GetGroupPolicy",
            "iam:GetPolicyVersion",
            "iam:GetPolicy",
            "iam:ListAttachedGroupPolicies",
            "iam:ListGroupPolicies",
            "iam:ListPolicyVersions",
            "iam:ListPolicies",
            "iam:ListUsers",
        ],
        "Resource": "*",
    },
)
MARY = "arn:aws:iam::123456789012:user/marymajor"


@pytest.mark.parametrize(
    ("example", "action", "resource", "context", "expected"),
    [
        # Delete one deployment group (L22146–22163).
        (
            DELETE_ONE_GROUP,
            "codedeploy:DeleteDeploymentGroup",
            cd("deploymentgroup:WordPress_App/WordPress_DepGroup"),
            {},
            ALLOW,
        ),
        (
            DELETE_ONE_GROUP,
            "codedeploy:DeleteDeploymentGroup",
            cd("deploymentgroup:WordPress_App/Other"),
            {},
            IMPLICIT,
        ),
        (
            DELETE_ONE_GROUP,
            "codedeploy:DeleteDeploymentGroup",
            cd("deploymentgroup:WordPress_App/WordPress_DepGroup", "us-east-1"),
            {},
            IMPLICIT,
        ),
        (
            DELETE_ONE_GROUP,
            "codedeploy:DeleteDeploymentGroup",
            cd("deploymentgroup:WordPress_App/WordPress_DepGroup", account="111122223333"),
            {},
            IMPLICIT,
        ),
        (
            DELETE_ONE_GROUP,
            "codedeploy:UpdateDeploymentGroup",
            cd("deploymentgroup:WordPress_App/WordPress_DepGroup"),
            {},
            IMPLICIT,
        ),
        # Example 1: everything in one Region (L22196–22215).
        (EXAMPLE_1_ONE_REGION, "codedeploy:CreateApplication", cd("application:Anything"), {}, ALLOW),
        (EXAMPLE_1_ONE_REGION, "codedeploy:CreateDeployment", cd("deploymentgroup:App/Group"), {}, ALLOW),
        (EXAMPLE_1_ONE_REGION, "codedeploy:DeleteDeploymentConfig", cd("deploymentconfig:Custom"), {}, ALLOW),
        (EXAMPLE_1_ONE_REGION, "codedeploy:RegisterOnPremisesInstance", cd("instance/host-1"), {}, ALLOW),
        (
            EXAMPLE_1_ONE_REGION,
            "codedeploy:CreateApplication",
            cd("application:App", "eu-west-1"),
            {},
            IMPLICIT,
        ),
        (
            EXAMPLE_1_ONE_REGION,
            "codedeploy:CreateApplication",
            cd("application:App", account="1"),
            {},
            IMPLICIT,
        ),
        (EXAMPLE_1_ONE_REGION, "s3:GetObject", "arn:aws:s3:::bucket/key", {}, IMPLICIT),
        # Example 2: revisions of applications named Test* (L22222–22240); names are case-sensitive.
        (
            EXAMPLE_2_TEST_APPLICATIONS,
            "codedeploy:RegisterApplicationRevision",
            cd("application:TestApp"),
            {},
            ALLOW,
        ),
        (
            EXAMPLE_2_TEST_APPLICATIONS,
            "codedeploy:RegisterApplicationRevision",
            cd("application:Test"),
            {},
            ALLOW,
        ),
        (
            EXAMPLE_2_TEST_APPLICATIONS,
            "codedeploy:RegisterApplicationRevision",
            cd("application:testApp"),
            {},
            IMPLICIT,
        ),
        (
            EXAMPLE_2_TEST_APPLICATIONS,
            "codedeploy:RegisterApplicationRevision",
            cd("application:MyTest"),
            {},
            IMPLICIT,
        ),
        (
            EXAMPLE_2_TEST_APPLICATIONS,
            "codedeploy:GetApplicationRevision",
            cd("application:TestApp"),
            {},
            IMPLICIT,
        ),
        # Example 3: the three permissions one CreateDeployment needs (L22242–22282, footnote L22826).
        (
            EXAMPLE_3_ONE_GROUP,
            "codedeploy:CreateDeployment",
            cd("deploymentgroup:WordPress_App/WordPress_DepGroup"),
            {},
            ALLOW,
        ),
        (
            EXAMPLE_3_ONE_GROUP,
            "codedeploy:GetDeploymentConfig",
            cd("deploymentconfig:ThreeQuartersHealthy"),
            {},
            ALLOW,
        ),
        (
            EXAMPLE_3_ONE_GROUP,
            "codedeploy:GetApplicationRevision",
            cd("application:WordPress_App"),
            {},
            ALLOW,
        ),
        (
            EXAMPLE_3_ONE_GROUP,
            "codedeploy:GetDeploymentConfig",
            cd("deploymentconfig:CodeDeployDefault.AllAtOnce"),
            {},
            IMPLICIT,
        ),
        (
            EXAMPLE_3_ONE_GROUP,
            "codedeploy:CreateDeployment",
            cd("deploymentgroup:WordPress_App/Staging"),
            {},
            IMPLICIT,
        ),
        (
            EXAMPLE_3_ONE_GROUP,
            "codedeploy:RegisterApplicationRevision",
            cd("application:WordPress_App"),
            {},
            IMPLICIT,
        ),
        # Wildcards in both names of a deployment group ARN (L22470–22478).
        (
            TEST_WEST_GROUPS,
            "codedeploy:GetDeploymentGroup",
            cd("deploymentgroup:TestApp/WestFleet"),
            {},
            ALLOW,
        ),
        (TEST_WEST_GROUPS, "codedeploy:CreateDeployment", cd("deploymentgroup:Test/West"), {}, ALLOW),
        (
            TEST_WEST_GROUPS,
            "codedeploy:CreateDeployment",
            cd("deploymentgroup:TestApp/EastFleet"),
            {},
            IMPLICIT,
        ),
        (
            TEST_WEST_GROUPS,
            "codedeploy:CreateDeployment",
            cd("deploymentgroup:ProdApp/WestFleet"),
            {},
            IMPLICIT,
        ),
        (TEST_WEST_GROUPS, "codedeploy:GetApplication", cd("application:TestApp"), {}, IMPLICIT),
        # Viewing one's own user, through ${aws:username} (L22353–22395).
        (VIEW_OWN_USER, "iam:GetUser", MARY, {"aws:username": "marymajor"}, ALLOW),
        (VIEW_OWN_USER, "iam:ListAttachedUserPolicies", MARY, {"aws:username": "marymajor"}, ALLOW),
        (VIEW_OWN_USER, "iam:GetUser", MARY, {"aws:username": "johndoe"}, IMPLICIT),
        (VIEW_OWN_USER, "iam:GetUser", MARY, {}, IMPLICIT),  # no user name: the variable matches nothing
        (VIEW_OWN_USER, "iam:DeleteUser", MARY, {"aws:username": "marymajor"}, IMPLICIT),
        (VIEW_OWN_USER, "iam:ListUsers", "*", {}, ALLOW),
        (VIEW_OWN_USER, "iam:ListPolicies", "arn:aws:iam::123456789012:policy/x", {}, ALLOW),
    ],
)
def test_guide_policy_examples(
    example: Policy, action: str, resource: str, context: dict, expected: Outcome
) -> None:
    assert evaluate([example], Request(action, resource, context)).outcome is expected


# --- deciding: deny wins, the deciding statement --------------------------------------------------------

FULL = policy(allow("codedeploy:*"), name="full")
NO_DELETES = parse_policy(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadAnything", "Effect": "Allow", "Action": "codedeploy:Get*", "Resource": "*"},
            {"Sid": "NoDeletes", "Effect": "Deny", "Action": "codedeploy:Delete*", "Resource": "*"},
        ],
    },
    name="arn:aws:iam::444455556666:policy/no-deletes",
)


@pytest.mark.parametrize(
    ("policies", "action", "expected", "deciding_policy", "sid"),
    [
        ([FULL, NO_DELETES], "codedeploy:DeleteApplication", DENY, NO_DELETES.name, "NoDeletes"),
        ([NO_DELETES, FULL], "codedeploy:DeleteApplication", DENY, NO_DELETES.name, "NoDeletes"),
        ([FULL, NO_DELETES], "codedeploy:CreateApplication", ALLOW, "full", None),
        ([NO_DELETES, FULL], "codedeploy:GetApplication", ALLOW, NO_DELETES.name, "ReadAnything"),
        ([NO_DELETES], "codedeploy:CreateApplication", IMPLICIT, None, None),
        ([], "codedeploy:GetApplication", IMPLICIT, None, None),  # no policy: nothing is allowed
    ],
)
def test_explicit_deny_wins_and_the_deciding_statement_is_named(
    policies: list[Policy], action: str, expected: Outcome, deciding_policy: str | None, sid: str | None
) -> None:
    decision = evaluate(policies, Request(action, cd("application:App")))
    assert (decision.outcome, decision.policy, decision.sid) == (expected, deciding_policy, sid)
    assert decision.allowed is (expected is ALLOW)


def test_a_deny_applies_only_to_what_it_matches() -> None:
    deny_one = policy(
        allow("codedeploy:*"), deny("codedeploy:CreateDeployment", cd("deploymentgroup:App/Prod"))
    )
    assert decide(deny_one, "codedeploy:CreateDeployment", cd("deploymentgroup:App/Prod")) is DENY
    assert decide(deny_one, "codedeploy:CreateDeployment", cd("deploymentgroup:App/Test")) is ALLOW


def test_decision_explains_itself() -> None:
    denied = evaluate([FULL, NO_DELETES], Request("codedeploy:DeleteApplication", cd("application:App")))
    assert denied == Decision(
        DENY, "codedeploy:DeleteApplication", cd("application:App"), NO_DELETES.name, "NoDeletes", 1
    )
    assert (
        "explicitly denied by statement 'NoDeletes' of policy arn:aws:iam::444455556666:policy/no-deletes"
        in (denied.explain())
    )
    assert (
        "allowed by statement #0 of policy full"
        in evaluate([FULL], Request("codedeploy:GetApplication", "*")).explain()
    )
    assert "implicitly denied" in evaluate([], Request("codedeploy:GetApplication", "*")).explain()


def test_evaluate_all_needs_every_pair_allowed() -> None:
    # A rename needs permission on the old and the new name (guide L22833–22837).
    renames = policy(allow("codedeploy:UpdateApplication", cd("application:Old*")))
    request = Request("codedeploy:UpdateApplication", cd("application:OldName"))
    both = evaluate_all([renames], [request, request.on(cd("application:NewName"))])
    assert (both.outcome, both.resource) == (IMPLICIT, cd("application:NewName"))
    assert evaluate_all([renames], [request, request.on(cd("application:Old2"))]).allowed
    with pytest.raises(ValueError):
        evaluate_all([renames], [])


# --- Action / NotAction, Resource / NotResource, wildcards ----------------------------------------------


@pytest.mark.parametrize(
    ("statements", "action", "resource", "expected"),
    [
        # Actions are case-insensitive, in the policy and in the request.
        ([allow("CodeDeploy:getapplication")], "codedeploy:GetApplication", "*", ALLOW),
        ([allow("codedeploy:GetApplication")], "CODEDEPLOY:GETAPPLICATION", "*", ALLOW),
        ([allow("codedeploy:Get*")], "codedeploy:GetDeploymentGroup", "*", ALLOW),
        ([allow("codedeploy:Get*")], "codedeploy:BatchGetApplications", "*", IMPLICIT),
        ([allow("codedeploy:*Deployment")], "codedeploy:CreateDeployment", "*", ALLOW),
        ([allow("codedeploy:*Deployment")], "codedeploy:CreateDeploymentGroup", "*", IMPLICIT),
        ([allow("*")], "s3:GetObject", "arn:aws:s3:::b/k", ALLOW),
        ([allow("codedeploy:*")], "codedeploy-commands-secure:PollHostCommand", "*", IMPLICIT),
        # ? is exactly one character.
        ([allow("codedeploy:?etApplication")], "codedeploy:GetApplication", "*", ALLOW),
        ([allow("codedeploy:?etApplication")], "codedeploy:etApplication", "*", IMPLICIT),
        (
            [allow("codedeploy:*", cd("application:App?"))],
            "codedeploy:GetApplication",
            cd("application:App1"),
            ALLOW,
        ),
        (
            [allow("codedeploy:*", cd("application:App?"))],
            "codedeploy:GetApplication",
            cd("application:App12"),
            IMPLICIT,
        ),
        (
            [allow("codedeploy:*", cd("application:App?"))],
            "codedeploy:GetApplication",
            cd("application:App"),
            IMPLICIT,
        ),
        # Resources are case-sensitive.
        (
            [allow("codedeploy:*", cd("application:MyApp"))],
            "codedeploy:GetApplication",
            cd("application:myapp"),
            IMPLICIT,
        ),
        # NotAction: everything but the named actions.
        (
            [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}],
            "codedeploy:CreateDeployment",
            "*",
            ALLOW,
        ),
        ([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], "iam:CreateUser", "*", IMPLICIT),
        (
            [allow("*"), {"Effect": "Deny", "NotAction": "codedeploy:Get*", "Resource": "*"}],
            "codedeploy:CreateDeployment",
            "*",
            DENY,
        ),
        (
            [allow("*"), {"Effect": "Deny", "NotAction": "codedeploy:Get*", "Resource": "*"}],
            "codedeploy:GetDeployment",
            "*",
            ALLOW,
        ),
        # NotResource: every resource but the named ones.
        (
            [{"Effect": "Allow", "Action": "codedeploy:*", "NotResource": cd("application:Prod*")}],
            "codedeploy:DeleteApplication",
            cd("application:Test"),
            ALLOW,
        ),
        (
            [{"Effect": "Allow", "Action": "codedeploy:*", "NotResource": cd("application:Prod*")}],
            "codedeploy:DeleteApplication",
            cd("application:Prod1"),
            IMPLICIT,
        ),
        (
            [
                allow("codedeploy:*"),
                {
                    "Effect": "Deny",
                    "Action": "codedeploy:*",
                    "NotResource": [cd("application:Sandbox"), cd("deploymentgroup:Sandbox/*")],
                },
            ],
            "codedeploy:DeleteApplication",
            cd("application:Prod"),
            DENY,
        ),
        (
            [
                allow("codedeploy:*"),
                {
                    "Effect": "Deny",
                    "Action": "codedeploy:*",
                    "NotResource": [cd("application:Sandbox"), cd("deploymentgroup:Sandbox/*")],
                },
            ],
            "codedeploy:CreateDeployment",
            cd("deploymentgroup:Sandbox/dev"),
            ALLOW,
        ),
        # ARN segments: a trailing * runs on across colons, an inner one stays in its segment.
        (
            [allow("codedeploy:*", "arn:aws:codedeploy:*")],
            "codedeploy:GetApplication",
            cd("application:A"),
            ALLOW,
        ),
        (
            [allow("*", "arn:aws:codedeploy:*")],
            "codedeploy:GetApplication",
            cd("instance/i-1", "ap-south-1"),
            ALLOW,
        ),
        (
            [allow("codedeploy:*", "arn:aws:codedeploy:*")],
            "codedeploy:GetApplication",
            "arn:aws:s3:::b/k",
            IMPLICIT,
        ),
        (
            [allow("codedeploy:*", "arn:aws:codedeploy:us-*:444455556666:application:A")],
            "codedeploy:GetApplication",
            cd("application:A"),
            ALLOW,
        ),
        (
            [allow("codedeploy:*", "arn:aws:codedeploy:*:*:application:A")],
            "codedeploy:GetApplication",
            cd("application:A", "eu-west-1", "1"),
            ALLOW,
        ),
        (
            [allow("codedeploy:*", "arn:aws:codedeploy:u*6:application:A")],
            "codedeploy:GetApplication",
            cd("application:A"),
            IMPLICIT,
        ),
        (
            [allow("codedeploy:*", cd("application?A"))],
            "codedeploy:GetApplication",
            cd("application:A"),
            IMPLICIT,
        ),
        (
            [allow("s3:GetObject", "arn:aws:s3:::*/CodeDeploy/*")],
            "s3:GetObject",
            "arn:aws:s3:::bucket/CodeDeploy/app/v1.zip",
            ALLOW,
        ),
        (
            [allow("s3:GetObject", "arn:aws:s3:::*/CodeDeploy/*")],
            "s3:GetObject",
            "arn:aws:s3:::bucket/app/CodeDeploy",
            IMPLICIT,
        ),
    ],
)
def test_actions_resources_and_wildcards(
    statements: list[dict], action: str, resource: str, expected: Outcome
) -> None:
    assert decide(policy(*statements), action, resource) is expected


@pytest.mark.parametrize(
    ("policy_resource", "request_resource", "expected"),
    [
        # The permissions reference writes deployment configs with "/", the ARN table with ":"
        # (guide L22489–22490, L21617); either matches.
        (cd("deploymentconfig/ThreeQuartersHealthy"), cd("deploymentconfig:ThreeQuartersHealthy"), ALLOW),
        (cd("deploymentconfig:ThreeQuartersHealthy"), cd("deploymentconfig/ThreeQuartersHealthy"), ALLOW),
        (cd("deploymentconfig/*"), cd("deploymentconfig:CodeDeployDefault.OneAtATime"), ALLOW),
        (cd("application/WordPress_App"), cd("application:WordPress_App"), ALLOW),
        (
            cd("deploymentgroup/WordPress_App/WordPress_DepGroup"),
            cd("deploymentgroup:WordPress_App/WordPress_DepGroup"),
            ALLOW,
        ),
        (cd("instance:host-1"), cd("instance/host-1"), ALLOW),
        (cd("instance/host-*"), cd("instance:host-2"), ALLOW),
        (cd("application/Other"), cd("application:WordPress_App"), IMPLICIT),
        # Only CodeDeploy's four resource types, only in CodeDeploy ARNs.
        (
            "arn:aws:sns:us-west-2:444455556666:application/x",
            "arn:aws:sns:us-west-2:444455556666:application:x",
            IMPLICIT,
        ),
    ],
)
def test_colon_or_slash_after_a_codedeploy_resource_type(
    policy_resource: str, request_resource: str, expected: Outcome
) -> None:
    assert (
        decide(policy(allow("*", policy_resource)), "codedeploy:GetDeploymentConfig", request_resource)
        is expected
    )


@pytest.mark.parametrize(
    ("arn", "canonical"),
    [
        (cd("deploymentconfig/X"), cd("deploymentconfig:X")),
        (cd("deploymentgroup/A/B"), cd("deploymentgroup:A/B")),
        (cd("application/A"), cd("application:A")),
        (cd("instance:i-1"), cd("instance/i-1")),
        (cd("instance/i-1"), cd("instance/i-1")),
        (cd("applications/A"), cd("applications/A")),  # not a resource type
        (cd("*"), cd("*")),
        ("arn:aws:codedeploy:*", "arn:aws:codedeploy:*"),
        ("arn:aws:s3:::bucket/application/x", "arn:aws:s3:::bucket/application/x"),
        ("*", "*"),
    ],
)
def test_canonical_codedeploy_arn(arn: str, canonical: str) -> None:
    assert canonical_codedeploy_arn(arn) == canonical


# --- conditions -----------------------------------------------------------------------------------------

SOME_TIME = "2021-06-01T12:00:00Z"
SOME_EPOCH = 1622548800  # the same instant


@pytest.mark.parametrize(
    ("condition", "context", "applies"),
    [
        # String operators; several values are ORed; values are case-sensitive, key names are not.
        ({"StringEquals": {"aws:username": "bob"}}, {"aws:username": "bob"}, True),
        ({"StringEquals": {"aws:username": "bob"}}, {"aws:username": "Bob"}, False),
        ({"StringEquals": {"aws:username": "bob"}}, {}, False),
        ({"StringEquals": {"AWS:UserName": "bob"}}, {"aws:USERNAME": "bob"}, True),
        ({"StringEquals": {"aws:username": ["alice", "bob"]}}, {"aws:username": "bob"}, True),
        ({"StringNotEquals": {"aws:username": ["alice", "bob"]}}, {"aws:username": "carol"}, True),
        ({"StringNotEquals": {"aws:username": ["alice", "bob"]}}, {"aws:username": "bob"}, False),
        ({"StringNotEquals": {"aws:username": "bob"}}, {}, True),  # negated operator, key missing
        ({"StringEqualsIgnoreCase": {"aws:username": "BOB"}}, {"aws:username": "bob"}, True),
        ({"StringNotEqualsIgnoreCase": {"aws:username": "BOB"}}, {"aws:username": "Bob"}, False),
        ({"StringNotEqualsIgnoreCase": {"aws:username": "BOB"}}, {"aws:username": "alice"}, True),
        (
            {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/dev-*"}},
            {"aws:PrincipalArn": "arn:aws:iam::1:user/dev-ann"},
            True,
        ),
        (
            {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/dev-*"}},
            {"aws:PrincipalArn": "arn:aws:iam::1:user/ops-ann"},
            False,
        ),
        ({"StringLike": {"aws:username": "a?c"}}, {"aws:username": "abc"}, True),
        ({"StringLike": {"aws:username": "a?c"}}, {"aws:username": "abbc"}, False),
        ({"StringNotLike": {"aws:username": "dev-*"}}, {"aws:username": "ops-1"}, True),
        ({"StringNotLike": {"aws:username": "dev-*"}}, {"aws:username": "dev-1"}, False),
        ({"StringNotLike": {"aws:username": "dev-*"}}, {}, True),
        ({"StringEquals": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True}, True),
        # …IfExists: true when the key is missing, an ordinary test otherwise.
        ({"StringEqualsIfExists": {"aws:RequestTag/env": "dev"}}, {}, True),
        ({"StringEqualsIfExists": {"aws:RequestTag/env": "dev"}}, {"aws:RequestTag/env": "prod"}, False),
        ({"StringEqualsIfExists": {"aws:RequestTag/env": "dev"}}, {"aws:RequestTag/env": "dev"}, True),
        ({"StringNotEqualsIfExists": {"aws:RequestTag/env": "prod"}}, {"aws:RequestTag/env": "prod"}, False),
        ({"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:codedeploy:*"}}, {}, True),
        # Tag keys in key names are case-insensitive too.
        ({"StringEquals": {"aws:PrincipalTag/Team": "ops"}}, {"aws:principaltag/team": "ops"}, True),
        ({"StringEquals": {"aws:ResourceTag/env": "prod"}}, {"aws:ResourceTag/Env": "prod"}, True),
        # Numeric.
        ({"NumericEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, True),
        ({"NumericEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": 10}, True),
        ({"NumericEquals": {"s3:max-keys": 10}}, {"s3:max-keys": "10.0"}, True),
        ({"NumericNotEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "11"}, True),
        ({"NumericNotEquals": {"s3:max-keys": "10"}}, {}, True),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": 9}, True),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": 10}, False),
        ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": 10}, True),
        ({"NumericGreaterThan": {"s3:max-keys": "1.5"}}, {"s3:max-keys": "2"}, True),
        ({"NumericGreaterThanEquals": {"s3:max-keys": "2"}}, {"s3:max-keys": "1.99"}, False),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "ten"}, False),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {}, False),
        # Date: ISO 8601 or epoch seconds, on either side.
        (
            {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
            {"aws:CurrentTime": SOME_TIME},
            True,
        ),
        (
            {"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
            {"aws:CurrentTime": SOME_TIME},
            False,
        ),
        ({"DateGreaterThan": {"aws:EpochTime": "1577836800"}}, {"aws:EpochTime": SOME_EPOCH}, True),
        ({"DateEquals": {"aws:EpochTime": SOME_TIME}}, {"aws:EpochTime": str(SOME_EPOCH)}, True),
        ({"DateEquals": {"aws:CurrentTime": str(SOME_EPOCH)}}, {"aws:CurrentTime": SOME_TIME}, True),
        (
            {"DateEquals": {"aws:CurrentTime": "2021-06-01T14:00:00+02:00"}},
            {"aws:CurrentTime": SOME_TIME},
            True,
        ),
        ({"DateNotEquals": {"aws:CurrentTime": "2021-06-01"}}, {"aws:CurrentTime": SOME_TIME}, True),
        (
            {"DateLessThanEquals": {"aws:CurrentTime": SOME_TIME}},
            {"aws:CurrentTime": datetime(2021, 6, 1, 12, tzinfo=UTC)},
            True,
        ),
        ({"DateGreaterThanEquals": {"aws:CurrentTime": "2021-06-02"}}, {"aws:CurrentTime": SOME_TIME}, False),
        ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {}, False),
        (
            {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            {"aws:CurrentTime": "not a date"},
            False,
        ),
        # Bool.
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": False}, False),
        ({"Bool": {"aws:SecureTransport": "True"}}, {"aws:SecureTransport": "true"}, True),
        ({"Bool": {"aws:SecureTransport": False}}, {"aws:SecureTransport": False}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, {}, False),
        ({"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}, {}, True),
        (
            {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}},
            {"aws:MultiFactorAuthPresent": False},
            False,
        ),
        # IpAddress / NotIpAddress, IPv4 and IPv6, CIDR or single address.
        ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "203.0.113.5"}, True),
        ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "198.51.100.1"}, False),
        ({"IpAddress": {"aws:SourceIp": "203.0.113.5"}}, {"aws:SourceIp": "203.0.113.5"}, True),
        (
            {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}},
            {"aws:SourceIp": "2001:db8:1234:5678::1"},
            True,
        ),
        (
            {"IpAddress": {"aws:SourceIp": "2001:DB8:1234:5678::/64"}},
            {"aws:SourceIp": "2001:db8:1234:9999::1"},
            False,
        ),
        ({"IpAddress": {"aws:SourceIp": "2001:DB8::/32"}}, {"aws:SourceIp": "203.0.113.5"}, False),
        ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "garbage"}, False),
        ({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "203.0.113.5"}, False),
        ({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "198.51.100.1"}, True),
        ({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {}, True),
        # Arn operators: wildcards per segment, ArnEquals like ArnLike.
        (
            {
                "ArnLike": {
                    "aws:SourceArn": cd("deploymentgroup:myApplication/*", "us-east-1", "111122223333")
                }
            },
            {"aws:SourceArn": cd("deploymentgroup:myApplication/prod", "us-east-1", "111122223333")},
            True,
        ),
        (
            {
                "ArnLike": {
                    "aws:SourceArn": cd("deploymentgroup:myApplication/*", "us-east-1", "111122223333")
                }
            },
            {"aws:SourceArn": cd("deploymentgroup:other/prod", "us-east-1", "111122223333")},
            False,
        ),
        (
            {"ArnEquals": {"aws:SourceArn": "arn:aws:codedeploy:*:111122223333:*"}},
            {"aws:SourceArn": cd("application:A", account="111122223333")},
            True,
        ),
        (
            {"ArnNotLike": {"aws:SourceArn": "arn:aws:codedeploy:*"}},
            {"aws:SourceArn": "arn:aws:cloudformation:us-east-1:1:stack/S/x"},
            True,
        ),
        (
            {"ArnNotEquals": {"aws:SourceArn": "arn:aws:codedeploy:*"}},
            {"aws:SourceArn": cd("application:A")},
            False,
        ),
        ({"ArnNotLike": {"aws:SourceArn": "arn:aws:codedeploy:*"}}, {}, True),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:codedeploy:*"}}, {"aws:SourceArn": "not-an-arn"}, False),
        # Binary.
        ({"BinaryEquals": {"key": "QmluYXJ5VmFsdWU="}}, {"key": b"BinaryValue"}, True),
        ({"BinaryEquals": {"key": "QmluYXJ5VmFsdWU="}}, {"key": b"Other"}, False),
        # Null: is the key absent?
        ({"Null": {"aws:TokenIssueTime": "true"}}, {}, True),
        ({"Null": {"aws:TokenIssueTime": "true"}}, {"aws:TokenIssueTime": SOME_TIME}, False),
        ({"Null": {"aws:TokenIssueTime": "false"}}, {"aws:TokenIssueTime": SOME_TIME}, True),
        ({"Null": {"aws:TagKeys": "true"}}, {"aws:TagKeys": []}, True),
        ({"Null": {"aws:TokenIssueTime": False}}, {}, False),
        # ForAnyValue / ForAllValues on a multi-valued key.
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["env", "x"]}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["x"]}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": []}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["env"]}, True),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}},
            {"aws:TagKeys": ["env", "x"]},
            False,
        ),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": []}, True),
        (
            {"ForAllValues:StringLike": {"aws:TagKeys": "Created*"}},
            {"aws:TagKeys": ["CreatedBy", "CreatedAt"]},
            True,
        ),
        ({"ForAnyValue:StringNotEquals": {"aws:TagKeys": "env"}}, {"aws:TagKeys": ["env", "x"]}, True),
        ({"ForAnyValue:StringNotEquals": {"aws:TagKeys": "env"}}, {"aws:TagKeys": ["env"]}, False),
        ({"ForAllValues:StringNotEquals": {"aws:TagKeys": "secret"}}, {"aws:TagKeys": ["env", "x"]}, True),
        (
            {"ForAllValues:StringNotEquals": {"aws:TagKeys": "secret"}},
            {"aws:TagKeys": ["env", "secret"]},
            False,
        ),
        ({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "env"}}, {}, True),
        ({"ForAnyValue:StringLike": {"aws:TagKeys": "team-?"}}, {"aws:TagKeys": ("a", "team-1")}, True),
        # A multi-valued key without a qualifier: any value may match; negated, none may.
        ({"StringEquals": {"aws:TagKeys": "env"}}, {"aws:TagKeys": ["x", "env"]}, True),
        ({"StringNotEquals": {"aws:TagKeys": "env"}}, {"aws:TagKeys": ["x", "env"]}, False),
        # Several keys under one operator, and several operators, are ANDed.
        (
            {"StringEquals": {"aws:username": "bob", "aws:PrincipalTag/team": "ops"}},
            {"aws:username": "bob", "aws:PrincipalTag/team": "ops"},
            True,
        ),
        (
            {"StringEquals": {"aws:username": "bob", "aws:PrincipalTag/team": "ops"}},
            {"aws:username": "bob", "aws:PrincipalTag/team": "dev"},
            False,
        ),
        (
            {"StringEquals": {"aws:username": "bob"}, "Bool": {"aws:SecureTransport": "true"}},
            {"aws:username": "bob", "aws:SecureTransport": True},
            True,
        ),
        (
            {"StringEquals": {"aws:username": "bob"}, "Bool": {"aws:SecureTransport": "true"}},
            {"aws:username": "bob", "aws:SecureTransport": False},
            False,
        ),
        # Policy variables in condition values, with defaults and escapes.
        (
            {"StringEquals": {"aws:RequestTag/owner": "${aws:username}"}},
            {"aws:username": "bob", "aws:RequestTag/owner": "bob"},
            True,
        ),
        (
            {"StringEquals": {"aws:RequestTag/owner": "${aws:username}"}},
            {"aws:username": "bob", "aws:RequestTag/owner": "ann"},
            False,
        ),
        (
            {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}},
            {"aws:ResourceTag/team": "ops"},
            False,
        ),
        (
            {"StringNotEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}},
            {"aws:ResourceTag/team": "ops"},
            True,
        ),
        (
            {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team, 'company-wide'}"}},
            {"aws:ResourceTag/team": "company-wide"},
            True,
        ),
        (
            {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team, 'company-wide'}"}},
            {"aws:ResourceTag/team": "company-wide", "aws:PrincipalTag/team": "ops"},
            False,
        ),
        (
            {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/${aws:username}"}},
            {"aws:username": "bob", "aws:PrincipalArn": "arn:aws:iam::1:user/bob"},
            True,
        ),
        ({"StringLike": {"aws:username": "a${*}b"}}, {"aws:username": "a*b"}, True),
        ({"StringLike": {"aws:username": "a${*}b"}}, {"aws:username": "axb"}, False),
        ({"StringLike": {"aws:username": "a${?}"}}, {"aws:username": "ax"}, False),
        ({"StringEquals": {"aws:username": "${$}x"}}, {"aws:username": "$x"}, True),
        (
            {"StringEqualsIgnoreCase": {"aws:RequestTag/owner": "${aws:username}"}},
            {"aws:username": "Bob", "aws:RequestTag/owner": "bob"},
            True,
        ),
        (
            {"ArnLike": {"aws:SourceArn": cd("application:${aws:username}-*")}},
            {"aws:username": "bob", "aws:SourceArn": cd("application:bob-1")},
            True,
        ),
        (
            {"Bool": {"aws:SecureTransport": "${aws:PrincipalTag/https}"}},
            {"aws:PrincipalTag/https": "true", "aws:SecureTransport": True},
            True,
        ),
        # A variable's value is literal text, never a wildcard.
        (
            {"StringLike": {"aws:RequestTag/owner": "${aws:username}"}},
            {"aws:username": "*", "aws:RequestTag/owner": "bob"},
            False,
        ),
    ],
)
def test_condition_operators(condition: dict, context: dict, applies: bool) -> None:
    decision = evaluate(
        [policy(allow("*", Condition=condition))], Request("codedeploy:GetApplication", "*", context)
    )
    assert decision.allowed is applies


@pytest.mark.parametrize(
    ("context", "expected"),
    [({"aws:SecureTransport": False}, DENY), ({"aws:SecureTransport": True}, ALLOW), ({}, ALLOW)],
)
def test_deny_over_plain_http(context: dict, expected: Outcome) -> None:
    https_only = policy(
        allow("codedeploy:*"), deny("*", Condition={"Bool": {"aws:SecureTransport": "false"}})
    )
    assert evaluate([https_only], Request("codedeploy:GetApplication", "*", context)).outcome is expected


@pytest.mark.parametrize(
    ("resource", "context", "expected"),
    [
        (cd("application:bob-tools"), {"aws:username": "bob"}, ALLOW),
        (cd("application:ann-tools"), {"aws:username": "bob"}, IMPLICIT),
        (cd("application:ops-tools"), {"aws:PrincipalTag/team": "ops"}, ALLOW),
        (cd("application:ops-tools"), {}, IMPLICIT),
        (cd("application:shared-tools"), {}, ALLOW),  # the default value
        (cd("application:*-tools"), {"aws:username": "*"}, ALLOW),  # a literal "*", as the request names it
        (cd("application:any-tools"), {"aws:username": "*"}, IMPLICIT),
    ],
)
def test_policy_variables_in_resources(resource: str, context: dict, expected: Outcome) -> None:
    per_user = policy(
        allow(
            "codedeploy:*",
            [
                cd("application:${aws:username}-tools"),
                cd("application:${aws:PrincipalTag/team, 'shared'}-tools"),
            ],
        )
    )
    assert evaluate([per_user], Request("codedeploy:GetApplication", resource, context)).outcome is expected


def test_policy_variables_only_in_version_2012_10_17() -> None:
    # In 2008-10-17 (also the default without a Version) "${aws:username}" is plain text.
    for old in (
        policy(allow("iam:GetUser", "arn:aws:iam::*:user/${aws:username}"), version="2008-10-17"),
        parse_policy({"Statement": allow("iam:GetUser", "arn:aws:iam::*:user/${aws:username}")}),
    ):
        assert old.version == "2008-10-17"
        assert decide(old, "iam:GetUser", MARY, aws_username="marymajor") is IMPLICIT
        assert decide(old, "iam:GetUser", "arn:aws:iam::1:user/${aws:username}") is ALLOW
    assert decide(VIEW_OWN_USER, "iam:GetUser", MARY, aws_username="marymajor") is ALLOW


def test_the_same_policy_decides_many_requests_and_parses_once() -> None:
    # Twenty statements, evaluated over and over: parsing happened once; results stay right.
    statements = [allow(f"codedeploy:Get{index}*", cd(f"application:App{index}-*")) for index in range(19)]
    statements.append(allow("codedeploy:GetApplication", cd("application:${aws:username}")))
    big = policy(*statements)
    for index in range(200):
        user = f"user{index}"
        assert decide(big, "codedeploy:GetApplication", cd(f"application:{user}"), aws_username=user) is ALLOW
        assert (
            decide(big, "codedeploy:GetApplication", cd("application:other"), aws_username=user) is IMPLICIT
        )
    assert decide(big, "codedeploy:Get7Things", cd("application:App7-x")) is ALLOW


def test_a_parsed_policy_does_not_follow_later_changes_to_its_dict() -> None:
    document = {"Version": "2012-10-17", "Statement": [allow("codedeploy:GetApplication")]}
    parsed = parse_policy(document)
    document["Statement"][0]["Action"] = "codedeploy:*"
    assert decide(parsed, "codedeploy:DeleteApplication", "*") is IMPLICIT


def test_cached_policy_parses_stored_text_once() -> None:
    text = '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}'
    first = cached_policy(text, "inline")
    assert cached_policy(text, "inline") is first
    assert first.name == "inline" and cached_policy(text, "other").name == "other"
    with pytest.raises(MalformedPolicy):
        cached_policy("{}", "broken")


def test_statement_may_be_a_single_object_and_json_text() -> None:
    text = '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}'
    assert decide(parse_policy(text), "s3:ListBucket", "arn:aws:s3:::b") is ALLOW
    assert decide(parse_policy(text.encode()), "s3:ListBucket", "arn:aws:s3:::b") is ALLOW


# --- malformed documents --------------------------------------------------------------------------------


def _document(*statements: Any, **top: Any) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements), **top}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "Syntax errors in policy"),
        ("[" * 100 + "]" * 100, "Syntax errors in policy"),
        ("[]", "must be a JSON object"),
        ({"Version": "2012-10-17"}, "has no Statement"),
        ({"Version": "2020-01-01", "Statement": [allow("*")]}, "Version must be 2012-10-17 or 2008-10-17"),
        (_document(), "non-empty list"),
        ({"Version": "2012-10-17", "Statement": "Allow everything"}, "Statement must be"),
        (_document(allow("*"), Foo=1), "Unknown policy element(s) Foo"),
        (_document({"Action": "*", "Resource": "*"}), "Statement 0: Effect must be Allow or Deny"),
        (
            _document(allow("*"), {"Effect": "allow", "Action": "*", "Resource": "*"}),
            "Statement 1: Effect must be",
        ),
        (
            _document({"Effect": "Allow", "Action": "*", "NotAction": "iam:*", "Resource": "*"}),
            "Action or NotAction, not both",
        ),
        (_document({"Effect": "Allow", "Resource": "*"}), "must contain actions"),
        (_document({"Effect": "Allow", "Action": "*"}), "must contain resources"),
        (_document({"Effect": "Allow", "Action": "*", "Resource": "*", "NotResource": "*"}), "not both"),
        (_document(allow("*", Principal={"AWS": "*"})), "should not specify a principal"),
        (_document(allow("*", NotPrincipal={"AWS": "*"})), "should not specify a principal"),
        (_document(allow("GetApplication")), "must be '*' or service:action"),
        (_document(allow("codedeploy:")), "must be '*' or service:action"),
        (_document(allow([])), "Action must not be an empty list"),
        (_document(allow(5)), "non-empty string or a list of them"),
        (_document(allow("*", "my-bucket")), "Resource 'my-bucket' must be '*' or an ARN"),
        (_document(allow("*", Actions="x")), "unknown element(s) Actions"),
        (_document(allow("*", Sid="my-sid")), "Sid must contain only letters"),
        (
            _document(allow("*", Sid="A"), allow("*", Sid="A")),
            "Statement IDs (SID) in a single policy must be unique: A",
        ),
        (_document(allow("*", Condition=["StringEquals"])), "Condition must be a JSON object"),
        (
            _document(allow("*", Condition={"StringEqualz": {"k": "v"}})),
            "Unknown condition operator 'StringEqualz'",
        ),
        (
            _document(allow("*", Condition={"ForSomeValues:StringEquals": {"k": "v"}})),
            "Unknown condition set operator",
        ),
        (_document(allow("*", Condition={"StringEquals": "v"})), "must map condition keys to values"),
        (_document(allow("*", Condition={"StringEquals": {"k": []}})), "empty list of values"),
        (
            _document(allow("*", Condition={"StringEquals": {"k": {"a": 1}}})),
            "is not a string, number or bool",
        ),
        (_document(allow("*", Condition={"StringEquals": {"k": None}})), "is not a string, number or bool"),
        (
            _document(allow("*", Condition={"NumericLessThan": {"s3:max-keys": "ten"}})),
            "'ten' is not a valid number",
        ),
        (
            _document(allow("*", Condition={"DateLessThan": {"aws:CurrentTime": "tomorrow"}})),
            "is not a valid date",
        ),
        (
            _document(allow("*", Condition={"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}})),
            "is not an IP address",
        ),
        (_document(allow("*", Condition={"Bool": {"aws:SecureTransport": "yes"}})), "is not true or false"),
        (
            _document(allow("*", Condition={"Null": {"k": "maybe"}})),
            "Null: the value of 'k' must be true or false",
        ),
        (_document(allow("*", Condition={"NullIfExists": {"k": "true"}})), "Null takes neither IfExists"),
        (_document(allow("*", Condition={"BinaryEquals": {"k": "***"}})), "is not base64"),
        (_document(allow("*", Condition={"StringEquals": {"k": "${}"}})), "names no key"),
        (_document(allow("*", Sid="Bad", Condition={"Bool": {"k": "yes"}})), "Statement 0 (Bad): Bool"),
    ],
)
def test_malformed_documents_are_refused_with_a_clear_message(document: Any, message: str) -> None:
    with pytest.raises(MalformedPolicy) as raised:
        parse_policy(document)
    assert message in str(raised.value)


def test_malformed_policy_is_a_value_error() -> None:
    assert issubclass(MalformedPolicy, ValueError)


@pytest.mark.parametrize(
    ("condition", "reads_resource_tags"),
    [
        ({"StringEquals": {"aws:ResourceTag/team": "web"}}, True),
        ({"StringEqualsIfExists": {"AWS:RESOURCETAG/Team": "web"}}, True),  # keys are case-insensitive
        ({"Null": {"aws:ResourceTag/team": "false"}}, True),
        ({"StringEquals": {"aws:RequestTag/team": "web"}}, False),
        ({"StringEquals": {"aws:PrincipalTag/team": "web"}}, False),
        (None, False),
    ],
)
def test_the_server_looks_up_resource_tags_only_for_policies_that_read_them(
    condition: dict[str, Any] | None, reads_resource_tags: bool
) -> None:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": "codedeploy:Get*", "Resource": "*"}
    if condition is not None:
        statement["Condition"] = condition
    plain = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    )
    policies = [plain, parse_policy({"Version": "2012-10-17", "Statement": [statement]})]
    assert uses_resource_tags(policies) is reads_resource_tags


@pytest.mark.parametrize(
    ("statements", "everything"),
    [
        ([{"Effect": "Allow", "Action": "*", "Resource": "*"}], True),  # AdministratorAccess
        ([{"Effect": "Allow", "Action": ["codedeploy:*", "*"], "Resource": ["*"]}], True),
        (
            [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
            ],
            False,
        ),
        ([{"Effect": "Allow", "Action": "codedeploy:*", "Resource": "*"}], False),
        ([{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:codedeploy:*"}], False),
        ([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], False),
        ([{"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::secret/*"}], False),
        (
            [
                {
                    "Effect": "Allow",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "true"}},
                }
            ],
            False,
        ),
        ([], False),
    ],
)
def test_a_caller_whose_policies_allow_everything_is_known_without_looking_at_requests(
    statements: list[dict[str, Any]], everything: bool
) -> None:
    policies = [parse_policy({"Version": "2012-10-17", "Statement": statements})] if statements else []
    assert allows_everything(policies) is everything


# --- remembering decisions ------------------------------------------------------------------------------

OWNER_IS_CALLER = policy(
    allow(
        "codedeploy:GetApplication", Condition={"StringEquals": {"aws:PrincipalTag/owner": "${aws:username}"}}
    )
)
TAGGED_REQUESTS = policy(
    allow("codedeploy:CreateApplication", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}})
)
BEFORE_2030 = policy(
    allow(
        "codedeploy:GetApplication", Condition={"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}
    )
)
HTTPS_ONLY = policy(allow("codedeploy:*"), deny("*", Condition={"Bool": {"aws:SecureTransport": "false"}}))
WRITES_OVER_HTTPS = policy(
    allow("*"),
    {
        "Effect": "Deny",
        "NotAction": ["codedeploy:Get*", "codedeploy:List*"],
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    },
)


@pytest.mark.parametrize(
    ("example", "action", "resource", "contexts"),
    [
        # A policy variable in a resource (the guide's "view your own user").
        (VIEW_OWN_USER, "iam:GetUser", MARY, [{"aws:username": "marymajor"}, {"aws:username": "johndoe"}]),
        # A policy variable only in a condition's value.
        (
            OWNER_IS_CALLER,
            "codedeploy:GetApplication",
            cd("application:web"),
            [
                {"aws:PrincipalTag/owner": "bob", "aws:username": "bob"},
                {"aws:PrincipalTag/owner": "bob", "aws:username": "ann"},
                {"aws:PrincipalTag/owner": "ann", "aws:username": "ann"},
            ],
        ),
        # A multi-valued key, given as lists.
        (
            TAGGED_REQUESTS,
            "codedeploy:CreateApplication",
            cd("application:web"),
            [{"aws:TagKeys": ["team"]}, {"aws:TagKeys": ["team", "cost"]}, {"aws:TagKeys": ["team"]}],
        ),
        # A key whose value changes every second, and one the server sets on every request.
        (
            BEFORE_2030,
            "codedeploy:GetApplication",
            cd("application:web"),
            [{"aws:CurrentTime": "2029-12-31T23:59:59Z"}, {"aws:CurrentTime": "2030-01-01T00:00:00Z"}],
        ),
        (
            HTTPS_ONLY,
            "codedeploy:GetApplication",
            cd("application:web"),
            [{"aws:SecureTransport": True}, {"aws:SecureTransport": False}, {"aws:SecureTransport": True}],
        ),
        # NotAction: which statements can match an action is worked out once per action.
        (
            WRITES_OVER_HTTPS,
            "codedeploy:CreateDeployment",
            cd("deploymentgroup:web/prod"),
            [{"aws:SecureTransport": True}, {"aws:SecureTransport": False}],
        ),
        (
            WRITES_OVER_HTTPS,
            "codedeploy:GetDeployment",
            cd("deploymentgroup:web/prod"),
            [{"aws:SecureTransport": True}, {"aws:SecureTransport": False}],
        ),
        # Values Python holds equal but a condition does not: True is "true" as text, 1 is "1".
        (
            policy(
                allow(
                    "codedeploy:GetApplication", Condition={"StringEquals": {"aws:MultiFactorAuthAge": "1"}}
                )
            ),
            "codedeploy:GetApplication",
            cd("application:web"),
            [{"aws:MultiFactorAuthAge": True}, {"aws:MultiFactorAuthAge": 1}],
        ),
        # Key names are case-insensitive: the memo sees them lower-cased, as conditions do.
        (TEST_WEST_GROUPS, "codedeploy:GetDeploymentGroup", cd("deploymentgroup:Test1/West1"), [{}, {}]),
    ],
)
def test_a_remembered_decision_is_the_decision_for_the_context_at_hand(
    example: Policy, action: str, resource: str, contexts: list[dict[str, Any]]
) -> None:
    memo = DecisionMemo([example])
    outcomes = []
    for context in contexts:
        expected = evaluate([example], Request(action, resource, context))
        remembered = memo.decide(action, resource, normalize_context(context))
        assert remembered == expected
        outcomes.append(remembered.outcome)
    if action != "codedeploy:GetDeployment" and example is not TEST_WEST_GROUPS:
        assert len(set(outcomes)) > 1  # the case tells contexts apart: a stale memo would fail it


GUARDED_GROUPS = policy(
    allow(
        "codedeploy:Get*",
        cd("deploymentgroup:web/*"),
        Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    ),
    deny(
        "codedeploy:*", cd("deploymentgroup:web/prod"), Condition={"Bool": {"aws:SecureTransport": "false"}}
    ),
    allow("codedeploy:GetDeployment", cd("deploymentgroup:api/*")),
)
# (context, {deployment group: outcome of GetDeployment}), asked in turn of one memo.
GUARDED_GROUPS_DECISIONS = [
    # Every condition holds: the resource alone decides, the Deny only on web/prod.
    (
        {"aws:SourceIp": "10.1.2.3", "aws:SecureTransport": False},
        {"web/test": ALLOW, "web/prod": DENY, "api/prod": ALLOW, "db/prod": IMPLICIT},
    ),
    # The Deny's condition fails: web/prod is allowed like any web group.
    (
        {"aws:SourceIp": "10.1.2.3", "aws:SecureTransport": True},
        {"web/test": ALLOW, "web/prod": ALLOW, "api/prod": ALLOW, "db/prod": IMPLICIT},
    ),
    # The web Allow's condition fails: only the unconditional api Allow is left.
    (
        {"aws:SourceIp": "192.0.2.1", "aws:SecureTransport": True},
        {"web/test": IMPLICIT, "web/prod": IMPLICIT, "api/prod": ALLOW, "db/prod": IMPLICIT},
    ),
]


def test_in_one_context_each_new_resource_is_still_matched_against_every_statement() -> None:
    # The memo tests conditions once per context and action, then matches only resources: one memo
    # asked in three contexts must still follow each context's conditions.
    memo = DecisionMemo([GUARDED_GROUPS])
    for context, expected in GUARDED_GROUPS_DECISIONS:
        for group, outcome in expected.items():
            request = Request("codedeploy:GetDeployment", cd(f"deploymentgroup:{group}"), context)
            assert evaluate([GUARDED_GROUPS], request).outcome is outcome, (context, group)
            decided = memo.decide(request.action, request.resource, normalize_context(context))
            assert decided.outcome is outcome, (context, group)


def test_context_keys_are_what_conditions_test_and_policy_variables_name() -> None:
    assert context_keys([OWNER_IS_CALLER, VIEW_OWN_USER, HTTPS_ONLY]) == (
        "aws:principaltag/owner",
        "aws:securetransport",
        "aws:username",
    )
    assert context_keys([TEST_WEST_GROUPS]) == ()


def test_the_memo_starts_over_when_full() -> None:
    memo = DecisionMemo([TEST_WEST_GROUPS], max_entries=2)
    for name in ("a", "b", "c"):
        memo.decide("codedeploy:GetDeploymentGroup", cd(f"deploymentgroup:Test{name}/West"), {})
    assert len(memo._decisions) == 1
    assert (
        memo.decide("codedeploy:GetDeploymentGroup", cd("deploymentgroup:Prod/West"), {}).outcome is IMPLICIT
    )

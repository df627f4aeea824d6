"""IAM policies decide CodeDeploy and IAM requests, as AWS would, through boto3 and the aws CLI: users
with the guide's example policies and the AWS managed policies get exactly the answers their policies
give; denials name the action and the resource; an explicit Deny wins; a user with no policy can do
nothing."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from botocore.exceptions import ClientError
from iam_helpers import key_client

from support.names import unique
from support.server import AWS_CLI, ServerProcess

READ_ONLY = "arn:aws:iam::aws:policy/AWSCodeDeployReadOnlyAccess"
DEPLOYER = "arn:aws:iam::aws:policy/AWSCodeDeployDeployerAccess"
FULL_ACCESS = "arn:aws:iam::aws:policy/AWSCodeDeployFullAccess"
ROLE = "arn:aws:iam::111122223333:role/CodeDeployServiceRole"


class User:
    """An IAM user with a key, and clients signed with it."""

    def __init__(self, server: ServerProcess, iam: Any) -> None:
        self.server = server
        self.name = unique("user")
        self.arn = iam.create_user(UserName=self.name)["User"]["Arn"]
        key = iam.create_access_key(UserName=self.name)["AccessKey"]
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]

    def client(self, service: str) -> Any:
        return key_client(self.server, service, self.key_id, self.secret)

    def aws(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = self.server.env | {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret}
        return subprocess.run(
            [str(AWS_CLI), "--output", "json", *args], env=env, capture_output=True, text=True, timeout=120
        )


def denied(call: Any) -> str:
    """The message of the AccessDenied(Exception) ``call`` must raise."""
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    assert error["Code"] in ("AccessDeniedException", "AccessDenied"), error
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
    return str(error["Message"])


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def apps(iam_server: ServerProcess) -> dict[str, str]:
    """Applications and groups made by the administrator: TestApp/West1, TestApp/East1, ProdApp/West1."""
    codedeploy = iam_server.client("codedeploy")
    names = {"test": unique("TestApp"), "prod": unique("ProdApp")}
    for application, groups in ((names["test"], ("West1", "East1")), (names["prod"], ("West1",))):
        codedeploy.create_application(applicationName=application)
        for group in groups:
            codedeploy.create_deployment_group(
                applicationName=application, deploymentGroupName=group, serviceRoleArn=ROLE
            )
    return names


def arn(server: ServerProcess, resource: str) -> str:
    return f"arn:aws:codedeploy:{server.region}:{server.account_id}:{resource}"


def test_a_user_with_no_policy_can_do_nothing(iam_server: ServerProcess, iam: Any) -> None:
    user = User(iam_server, iam)
    message = denied(user.client("codedeploy").list_applications)
    assert message == (
        f"User: {user.arn} is not authorized to perform: codedeploy:ListApplications on resource: "
        f"{arn(iam_server, 'application:*')}"
    )
    assert "iam:ListUsers" in denied(user.client("iam").list_users)
    result = user.aws("deploy", "list-applications")
    assert result.returncode != 0
    assert "AccessDeniedException" in result.stderr and "codedeploy:ListApplications" in result.stderr


def test_read_only_access_reads_and_changes_nothing(
    iam_server: ServerProcess, iam: Any, apps: dict[str, str]
) -> None:
    user = User(iam_server, iam)
    iam.attach_user_policy(UserName=user.name, PolicyArn=READ_ONLY)
    codedeploy = user.client("codedeploy")
    assert apps["test"] in codedeploy.list_applications()["applications"]
    group = codedeploy.get_deployment_group(applicationName=apps["test"], deploymentGroupName="West1")
    assert group["deploymentGroupInfo"]["deploymentGroupName"] == "West1"
    listed = json.loads(
        user.aws("deploy", "list-deployment-groups", "--application-name", apps["test"]).stdout
    )
    assert sorted(listed["deploymentGroups"]) == ["East1", "West1"]
    message = denied(lambda: codedeploy.create_application(applicationName=unique("new")))
    assert "codedeploy:CreateApplication on resource: " + arn(iam_server, "application:") in message
    assert "explicit deny" not in message
    denied(lambda: codedeploy.delete_application(applicationName=apps["test"]))
    assert apps["test"] in iam_server.client("codedeploy").list_applications()["applications"]


def test_deployer_access_deploys_but_deletes_nothing(
    iam_server: ServerProcess, iam: Any, apps: dict[str, str]
) -> None:
    user = User(iam_server, iam)
    iam.attach_user_policy(UserName=user.name, PolicyArn=DEPLOYER)
    codedeploy = user.client("codedeploy")
    revision = {
        "revisionType": "GitHub",
        "gitHubLocation": {"repository": "example/app", "commitId": "a" * 40},
    }
    deployment = codedeploy.create_deployment(
        applicationName=apps["test"], deploymentGroupName="West1", revision=revision
    )
    assert deployment["deploymentId"].startswith("d-")
    info = codedeploy.get_deployment(deploymentId=deployment["deploymentId"])["deploymentInfo"]
    assert info["applicationName"] == apps["test"]
    message = denied(
        lambda: codedeploy.delete_deployment_group(applicationName=apps["test"], deploymentGroupName="East1")
    )
    assert arn(iam_server, f"deploymentgroup:{apps['test']}/East1") in message
    denied(lambda: codedeploy.create_deployment_config(deploymentConfigName=unique("cfg")))


def test_one_deployment_group_by_wildcards_test_star_slash_west_star(
    iam_server: ServerProcess, iam: Any, apps: dict[str, str]
) -> None:
    """The permissions reference's example resource ``deploymentgroup:Test*/West*`` (guide L22481)."""
    user = User(iam_server, iam)
    resource = arn(iam_server, "deploymentgroup:TestApp*/West*")
    iam.put_user_policy(
        UserName=user.name,
        PolicyName="west",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": "codedeploy:GetDeploymentGroup", "Resource": resource}
        ),
    )
    codedeploy = user.client("codedeploy")
    got = codedeploy.get_deployment_group(applicationName=apps["test"], deploymentGroupName="West1")
    assert got["deploymentGroupInfo"]["applicationName"] == apps["test"]
    denied(lambda: codedeploy.get_deployment_group(applicationName=apps["test"], deploymentGroupName="East1"))
    denied(lambda: codedeploy.get_deployment_group(applicationName=apps["prod"], deploymentGroupName="West1"))
    # Operations on the deployment are authorized on its deployment group.
    admin = iam_server.client("codedeploy")
    revision = {
        "revisionType": "GitHub",
        "gitHubLocation": {"repository": "example/app", "commitId": "b" * 40},
    }
    east = admin.create_deployment(
        applicationName=apps["test"], deploymentGroupName="East1", revision=revision
    )
    iam.put_user_policy(
        UserName=user.name,
        PolicyName="west-deployments",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": "codedeploy:GetDeployment", "Resource": resource}
        ),
    )
    message = denied(lambda: codedeploy.get_deployment(deploymentId=east["deploymentId"]))
    assert arn(iam_server, f"deploymentgroup:{apps['test']}/East1") in message


def test_a_deployment_is_authorized_under_its_group_s_name_of_the_moment(
    iam_server: ServerProcess, iam: Any
) -> None:
    """A deployment's permissions are asked on its deployment group's ARN; the server remembers which
    group a deployment belongs to, yet a renamed group or application takes effect on the next request."""
    user = User(iam_server, iam)
    iam.put_user_policy(
        UserName=user.name,
        PolicyName="west-deployments",
        PolicyDocument=policy(
            {
                "Effect": "Allow",
                "Action": "codedeploy:GetDeployment",
                "Resource": arn(iam_server, "deploymentgroup:TestApp*/West*"),
            }
        ),
    )
    admin = iam_server.client("codedeploy")
    application = unique("TestApp")
    admin.create_application(applicationName=application)
    admin.create_deployment_group(
        applicationName=application, deploymentGroupName="West1", serviceRoleArn=ROLE
    )
    revision = {
        "revisionType": "GitHub",
        "gitHubLocation": {"repository": "example/app", "commitId": "c" * 40},
    }
    deployment = admin.create_deployment(
        applicationName=application, deploymentGroupName="West1", revision=revision
    )["deploymentId"]
    codedeploy = user.client("codedeploy")
    for _ in range(2):  # the second answer comes from what the server remembers
        assert (
            codedeploy.get_deployment(deploymentId=deployment)["deploymentInfo"]["deploymentGroupName"]
            == "West1"
        )

    admin.update_deployment_group(
        applicationName=application, currentDeploymentGroupName="West1", newDeploymentGroupName="East1"
    )
    message = denied(lambda: codedeploy.get_deployment(deploymentId=deployment))
    assert arn(iam_server, f"deploymentgroup:{application}/East1") in message

    admin.update_deployment_group(
        applicationName=application, currentDeploymentGroupName="East1", newDeploymentGroupName="West2"
    )
    assert (
        codedeploy.get_deployment(deploymentId=deployment)["deploymentInfo"]["deploymentGroupName"] == "West2"
    )
    renamed = unique("ProdApp")
    admin.update_application(applicationName=application, newApplicationName=renamed)
    message = denied(lambda: codedeploy.get_deployment(deploymentId=deployment))
    assert arn(iam_server, f"deploymentgroup:{renamed}/West2") in message


def test_an_explicit_deny_wins_over_any_allow(
    iam_server: ServerProcess, iam: Any, apps: dict[str, str]
) -> None:
    user = User(iam_server, iam)
    iam.attach_user_policy(UserName=user.name, PolicyArn=FULL_ACCESS)
    iam.put_user_policy(
        UserName=user.name,
        PolicyName="no-deletes",
        PolicyDocument=policy(
            {"Sid": "NoDeletes", "Effect": "Deny", "Action": "codedeploy:delete*", "Resource": "*"}
        ),
    )
    codedeploy = user.client("codedeploy")
    name = unique("mine")
    codedeploy.create_application(applicationName=name)
    message = denied(lambda: codedeploy.delete_application(applicationName=name))
    assert message.endswith("with an explicit deny")
    assert name in iam_server.client("codedeploy").list_applications()["applications"]


def test_policies_come_through_groups_and_policy_variables_name_the_caller(
    iam_server: ServerProcess, iam: Any
) -> None:
    user, other = User(iam_server, iam), User(iam_server, iam)
    group = unique("self-viewers")
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=user.name)
    # The guide's "view your own permissions" policy (L22353-L22395), in part.
    iam.put_group_policy(
        GroupName=group,
        PolicyName="view-own",
        PolicyDocument=policy(
            {
                "Sid": "ViewOwnUserInfo",
                "Effect": "Allow",
                "Action": ["iam:GetUser", "iam:ListAttachedUserPolicies", "iam:ListUserPolicies"],
                "Resource": ["arn:aws:iam::*:user/${aws:username}"],
            }
        ),
    )
    own = user.client("iam")
    assert own.get_user(UserName=user.name)["User"]["Arn"] == user.arn
    assert own.list_user_policies(UserName=user.name)["PolicyNames"] == []
    message = denied(lambda: own.get_user(UserName=other.name))
    assert f"iam:GetUser on resource: {other.arn}" in message
    iam.remove_user_from_group(GroupName=group, UserName=user.name)
    denied(lambda: own.get_user(UserName=user.name))


def test_the_tags_a_request_sets_are_condition_keys(iam_server: ServerProcess, iam: Any) -> None:
    user = User(iam_server, iam)
    iam.put_user_policy(
        UserName=user.name,
        PolicyName="web-team-applications",
        PolicyDocument=policy(
            {
                "Effect": "Allow",
                "Action": "codedeploy:CreateApplication",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:RequestTag/team": "web"},
                    "ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost-centre"]},
                },
            }
        ),
    )
    codedeploy = user.client("codedeploy")
    codedeploy.create_application(applicationName=unique("web"), tags=[{"Key": "team", "Value": "web"}])
    denied(
        lambda: codedeploy.create_application(
            applicationName=unique("db"), tags=[{"Key": "team", "Value": "db"}]
        )
    )
    denied(lambda: codedeploy.create_application(applicationName=unique("untagged")))
    denied(
        lambda: codedeploy.create_application(
            applicationName=unique("extra"),
            tags=[{"Key": "team", "Value": "web"}, {"Key": "owner", "Value": "me"}],
        )
    )


def test_the_tags_of_the_resource_a_request_names_are_condition_keys(
    iam_server: ServerProcess, iam: Any
) -> None:
    """``aws:ResourceTag/team``: a team reaches the applications and deployment groups tagged for it,
    and a retagged resource is decided by its new tags at once."""
    codedeploy = iam_server.client("codedeploy")
    ours, theirs = unique("TeamApp"), unique("OtherApp")
    codedeploy.create_application(applicationName=ours, tags=[{"Key": "team", "Value": "web"}])
    codedeploy.create_application(applicationName=theirs, tags=[{"Key": "team", "Value": "db"}])
    codedeploy.create_deployment_group(
        applicationName=ours,
        deploymentGroupName="Fleet",
        serviceRoleArn=ROLE,
        tags=[{"Key": "team", "Value": "web"}],
    )
    codedeploy.create_deployment_group(
        applicationName=ours, deploymentGroupName="Untagged", serviceRoleArn=ROLE
    )
    user = User(iam_server, iam)
    iam.put_user_policy(
        UserName=user.name,
        PolicyName="web-team-resources",
        PolicyDocument=policy(
            {
                "Effect": "Allow",
                "Action": ["codedeploy:GetApplication", "codedeploy:GetDeploymentGroup"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/team": "web"}},
            }
        ),
    )
    client = user.client("codedeploy")
    assert client.get_application(applicationName=ours)["application"]["applicationName"] == ours
    assert client.get_deployment_group(applicationName=ours, deploymentGroupName="Fleet")
    assert denied(lambda: client.get_application(applicationName=theirs)).endswith(f"application:{theirs}")
    denied(lambda: client.get_deployment_group(applicationName=ours, deploymentGroupName="Untagged"))
    denied(lambda: client.get_application(applicationName=unique("Missing")))  # no resource, no tags

    codedeploy.tag_resource(
        ResourceArn=arn(iam_server, f"application:{theirs}"), Tags=[{"Key": "team", "Value": "web"}]
    )
    assert client.get_application(applicationName=theirs)["application"]["applicationName"] == theirs

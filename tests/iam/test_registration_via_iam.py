"""Registering on-premises instances through the server's IAM API, with the real tools: ``opendeploy
register`` / ``deregister`` (SQLite and PostgreSQL) and ``aws deploy register`` / ``deregister`` (awscli
from PyPI, the ``opendeploy`` profile). The identity they create is an IAM user with a key and the
read-bundles policy; an agent signing with that key is the instance to the command service; after
deregistering, the user and its keys are gone and the old key is refused."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from iam_helpers import KEY_FORGOTTEN_WITHIN, agent_client, run_aws, run_opendeploy, start_server

from opendeploy.agent.onpremises_config import load_onpremises_config
from support.names import unique
from support.server import ServerProcess, wait_for

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
READ_BUNDLES = {"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}


@pytest.fixture(scope="module", params=BACKENDS)
def registration_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    database_url = None
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres_databases").create()
    server = start_server(tmp_path_factory.mktemp(f"register-{request.param}"), database_url)
    yield server
    server.stop()


def poll_error(server: ServerProcess, key_id: str, secret: str, host: str) -> str | None:
    """The error an agent's PollHostCommand with this key gets, or ``None`` if it is answered."""
    try:
        answer = agent_client(server, key_id, secret).poll_host_command(HostIdentifier=host)
    except ClientError as error:
        return error.response["Error"]["Code"]
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    return None


def registered(codedeploy: Any, name: str, tag: dict[str, str]) -> bool:
    listed = codedeploy.list_on_premises_instances(
        registrationStatus="Registered", tagFilters=[{**tag, "Type": "KEY_AND_VALUE"}]
    )
    return name in listed["instanceNames"]


def assert_identity_gone(iam: Any, name: str, key_gone: Callable[[], bool]) -> None:
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName=name)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.list_access_keys(UserName=name)
    wait_for(key_gone, timeout=KEY_FORGOTTEN_WITHIN, interval=0.5, message="the old key to be refused")


def test_opendeploy_register_and_deregister(registration_server: ServerProcess, tmp_path: Path) -> None:
    server = registration_server
    iam, codedeploy = server.client("iam"), server.client("codedeploy")
    name = unique("onprem")
    conf = tmp_path / "conf"
    result = run_opendeploy(
        server, "register", "--instance-name", name, "--tags", "Key=Name,Value=CodeDeployDemo-OnPrem",
        "--config-dir", str(conf), "--root-dir", str(tmp_path / "root"),
        "--log-dir", str(tmp_path / "log"), "--pid-dir", str(tmp_path / "pid"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    # The identity: an IAM user with one key (the one written for the agent) and the agent's policy.
    identity = load_onpremises_config(conf / "codedeploy.onpremises.yml")
    user = iam.get_user(UserName=name)["User"]
    assert user["Path"] == "/AWS/CodeDeploy/"
    assert user["Arn"] == f"arn:aws:iam::{server.account_id}:user/AWS/CodeDeploy/{name}"
    assert identity.host_identifier == user["Arn"]
    keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in keys] == [(identity.access_key_id, "Active")]
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["codedeploy-agent"]
    policy = iam.get_user_policy(UserName=name, PolicyName="codedeploy-agent")["PolicyDocument"]
    assert policy["Statement"] == [READ_BUNDLES]

    # The instance, with its tags, is what deployment groups can select.
    info = codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert info["iamUserArn"] == user["Arn"]
    assert info["tags"] == [{"Key": "Name", "Value": "CodeDeployDemo-OnPrem"}]
    assert registered(codedeploy, name, {"Key": "Name", "Value": "CodeDeployDemo-OnPrem"})

    # The agent's view: its key is the instance's.
    credentials = (identity.access_key_id, identity.secret_access_key)
    assert poll_error(server, *credentials, user["Arn"]) is None

    result = run_opendeploy(server, "deregister", "--instance-name", name, "--config-dir", str(conf))
    assert result.returncode == 0, result.stderr
    assert f"Deleted the IAM user {user['Arn']}." in result.stdout
    assert "deregisterTime" in codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert not registered(codedeploy, name, {"Key": "Name", "Value": "CodeDeployDemo-OnPrem"})
    assert poll_error(server, *credentials, user["Arn"]) is not None  # at once: no instance any more
    assert_identity_gone(
        iam, name, lambda: poll_error(server, *credentials, user["Arn"]) == "UnrecognizedClientException"
    )
    assert not list(conf.iterdir())


def test_a_failed_opendeploy_register_deletes_the_user_it_created(
    registration_server: ServerProcess, tmp_path: Path
) -> None:
    server = registration_server
    taken = unique("onprem")
    server.client("codedeploy").register_on_premises_instance(
        instanceName=taken, iamUserArn=f"arn:aws:iam::{server.account_id}:user/elsewhere/{taken}"
    )
    result = run_opendeploy(server, "register", "--instance-name", taken, "--config-dir", str(tmp_path / "c"))
    assert result.returncode != 0
    assert "InstanceNameAlreadyRegisteredException" in result.stderr
    # The user it made for the instance (with its key and policy) was deleted again.
    with pytest.raises(ClientError) as raised:
        server.client("iam").get_user(UserName=taken)
    assert raised.value.response["Error"]["Code"] == "NoSuchEntity"


def test_aws_deploy_register_and_deregister(iam_server: ServerProcess, tmp_path: Path) -> None:
    server = iam_server
    iam, codedeploy = server.client("iam"), server.client("codedeploy")
    name = unique("onprem")
    result = run_aws(
        server, "deploy", "register", "--instance-name", name,
        "--tags", "Key=Name,Value=CodeDeployDemo-OnPrem", "Key=Stage,Value=Beta",
        "--region", server.region, cwd=tmp_path,
    )  # fmt: skip
    # The command reports failures on stderr but exits 0: check both.
    assert result.returncode == 0 and "ERROR" not in result.stderr, result.stderr
    assert "Registering the on-premises instance... DONE" in result.stdout
    assert "Adding tags to the on-premises instance... DONE" in result.stdout

    user = iam.get_user(UserName=name)["User"]
    assert user["Arn"] == f"arn:aws:iam::{server.account_id}:user/AWS/CodeDeploy/{name}"
    config_file = tmp_path / "codedeploy.onpremises.yml"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    text = config_file.read_text()
    assert text.startswith("---\n")
    config = yaml.safe_load(text)
    assert set(config) == {"region", "iam_user_arn", "aws_access_key_id", "aws_secret_access_key"}
    assert (config["region"], config["iam_user_arn"]) == (server.region, user["Arn"])
    keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [config["aws_access_key_id"]]
    policy = iam.get_user_policy(UserName=name, PolicyName="codedeploy-agent")["PolicyDocument"]
    assert policy == {"Version": "2012-10-17", "Statement": [READ_BUNDLES]}

    info = codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert info["iamUserArn"] == user["Arn"]
    assert sorted((t["Key"], t["Value"]) for t in info["tags"]) == [
        ("Name", "CodeDeployDemo-OnPrem"),
        ("Stage", "Beta"),
    ]
    # The file is all an agent needs: its key is the instance's to the command service.
    credentials = (config["aws_access_key_id"], config["aws_secret_access_key"])
    assert poll_error(server, *credentials, config["iam_user_arn"]) is None

    result = run_aws(
        server, "deploy", "deregister", "--instance-name", name, "--region", server.region, cwd=tmp_path
    )
    assert result.returncode == 0 and "ERROR" not in result.stderr, result.stderr
    assert f"Deleting the IAM user ({name})... DONE" in result.stdout
    info = codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert "deregisterTime" in info and info["tags"] == []
    assert_identity_gone(
        iam,
        name,
        lambda: poll_error(server, *credentials, config["iam_user_arn"]) == "UnrecognizedClientException",
    )


def test_aws_deploy_register_with_an_existing_user(iam_server: ServerProcess, tmp_path: Path) -> None:
    # With --iam-user-arn the command creates nothing in IAM and writes no file: only the instance.
    iam = iam_server.client("iam")
    name = unique("onprem")
    user = iam.create_user(UserName=unique("existing"), Path="/hosts/")["User"]
    result = run_aws(
        iam_server, "deploy", "register", "--instance-name", name, "--iam-user-arn", user["Arn"],
        "--region", iam_server.region, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0 and "ERROR" not in result.stderr, result.stderr
    assert not (tmp_path / "codedeploy.onpremises.yml").exists()
    info = iam_server.client("codedeploy").get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert info["iamUserArn"] == user["Arn"]
    assert iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"] == []

    # deregister --no-delete-iam-user keeps the user.
    result = run_aws(
        iam_server, "deploy", "deregister", "--instance-name", name, "--no-delete-iam-user",
        "--region", iam_server.region, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0 and "ERROR" not in result.stderr, result.stderr
    assert iam.get_user(UserName=user["UserName"])["User"] == user

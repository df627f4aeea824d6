"""Simulated agents: registered on-premises instances that speak the command protocol through botocore.

``register_instance(server, name, tags)`` does what ``aws deploy register`` does — an access key for an
IAM user first (created straight in the server's store, as the IAM API will), then
RegisterOnPremisesInstance with that user's ARN and the tags — and returns an ``Agent`` whose
``client`` is a botocore ``codedeploy-commands`` client signed with the instance's own key: exactly
the agent's view of the server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.config
import botocore.session

from opendeploy.data import BOTOCORE_DATA
from opendeploy.store.db import Database
from support.names import unique
from support.server import ServerProcess

# Short enough that a test waiting them out stays quick, long enough for a loaded 2-core machine.
POLL_HOLD = 1.0
REDELIVERY_AFTER = 1.0
FAST_ENGINE = [
    "--poll-hold",
    str(POLL_HOLD),
    "--engine-sweep-interval",
    "0.5",
    "--redelivery-after",
    str(REDELIVERY_AFTER),
]
SUCCESS_DIAGNOSTICS = {"error_code": 0, "script_name": "", "message": "Succeeded: ", "log": ""}
IN_PLACE_EVENTS = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]


def server_database(server: ServerProcess) -> Database:
    return Database(server.database_url or f"sqlite:///{server.data_dir / 'opendeploy.db'}")


def create_key(server: ServerProcess, principal_arn: str) -> tuple[str, str]:
    """An access key for ``principal_arn`` in the server's store: (access key id, secret)."""
    return server.store_access_key(principal_arn)


def commands_client(server: ServerProcess, access_key: str, secret_key: str, **config: Any) -> Any:
    session = botocore.session.Session()
    session.get_component("data_loader").search_paths.insert(0, str(BOTOCORE_DATA))
    settings = {"retries": {"max_attempts": 1, "mode": "standard"}, "read_timeout": 90, "connect_timeout": 5}
    settings.update(config)
    return session.create_client(
        "codedeploy-commands",
        region_name=server.region,
        endpoint_url=server.endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=botocore.config.Config(**settings),
    )


def diagnostics(**payload: Any) -> dict[str, str]:
    return {"Format": "JSON", "Payload": json.dumps({**SUCCESS_DIAGNOSTICS, **payload})}


@dataclass
class Agent:
    """One registered instance and its command-service client."""

    server: ServerProcess
    name: str
    user_arn: str
    access_key: str
    secret_key: str
    client: Any = field(repr=False)

    @property
    def instance_arn(self) -> str:
        return f"arn:aws:codedeploy:{self.server.region}:{self.server.account_id}:instance/{self.name}"

    def poll(self) -> dict[str, Any] | None:
        return self.client.poll_host_command(HostIdentifier=self.user_arn).get("HostCommand")

    def poll_until_command(self, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            command = self.poll()
            if command:
                return command
        raise AssertionError(f"{self.name}: no host command within {timeout}s")

    def specification(self, command: dict[str, Any]) -> dict[str, Any]:
        return self.client.get_deployment_specification(
            DeploymentExecutionId=command["DeploymentExecutionId"], HostIdentifier=self.user_arn
        )

    def acknowledge(self, command: dict[str, Any], noop: bool = False) -> str:
        return self.client.put_host_command_acknowledgement(
            HostCommandIdentifier=command["HostCommandIdentifier"],
            Diagnostics={"Format": "JSON", "Payload": json.dumps({"IsCommandNoop": noop})},
        )["CommandStatus"]

    def complete(self, command: dict[str, Any], status: str = "Succeeded", **payload: Any) -> None:
        self.client.put_host_command_complete(
            HostCommandIdentifier=command["HostCommandIdentifier"],
            CommandStatus=status,
            Diagnostics=diagnostics(**payload),
        )

    def run(self, command: dict[str, Any], status: str = "Succeeded", **payload: Any) -> None:
        """What the agent does with a command: specification, acknowledgement, completion."""
        self.specification(command)
        assert self.acknowledge(command) == "InProgress"
        self.complete(command, status, **payload)


def register_instance(
    server: ServerProcess, tags: dict[str, str], name: str | None = None, **client_config: Any
) -> Agent:
    name = name or unique("host")
    user_arn = f"arn:aws:iam::{server.account_id}:user/{name}"
    access_key, secret_key = create_key(server, user_arn)  # before registration, as `aws deploy register`
    codedeploy = server.client("codedeploy")
    codedeploy.register_on_premises_instance(instanceName=name, iamUserArn=user_arn)
    if tags:
        codedeploy.add_tags_to_on_premises_instances(
            instanceNames=[name], tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
    client = commands_client(server, access_key, secret_key, **client_config)
    return Agent(server, name, user_arn, access_key, secret_key, client)


@dataclass
class Fleet:
    """An application and deployment group whose tag selects the instances registered with it."""

    server: ServerProcess
    application: str
    group: str
    tag: dict[str, str]

    def add_instance(self, name: str | None = None, **client_config: Any) -> Agent:
        return register_instance(self.server, self.tag, name, **client_config)

    def deploy(self, **params: Any) -> str:
        codedeploy = self.server.client("codedeploy")
        request = {
            "applicationName": self.application,
            "deploymentGroupName": self.group,
            "revision": {
                "revisionType": "S3",
                "s3Location": {"bucket": "bundles", "key": "app.zip", "bundleType": "zip", "eTag": "abc123"},
            },
        }
        request.update(params)
        return codedeploy.create_deployment(**request)["deploymentId"]


def create_fleet(server: ServerProcess, config: str = "CodeDeployDefault.AllAtOnce") -> Fleet:
    codedeploy = server.client("codedeploy")
    application, group = unique("app"), unique("group")
    tag = {"fleet": unique("f")}
    codedeploy.create_application(applicationName=application, computePlatform="Server")
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=group,
        deploymentConfigName=config,
        serviceRoleArn=f"arn:aws:iam::{server.account_id}:role/CodeDeployServiceRole",
        onPremisesInstanceTagFilters=[{"Key": "fleet", "Value": tag["fleet"], "Type": "KEY_AND_VALUE"}],
    )
    return Fleet(server, application, group, tag)


def wait_for_status(
    server: ServerProcess, deployment_id: str, statuses: set[str], timeout: float = 15
) -> dict:
    codedeploy = server.client("codedeploy")
    deadline = time.monotonic() + timeout
    while True:
        info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        if info["status"] in statuses:
            return info
        if time.monotonic() > deadline:
            raise AssertionError(f"{deployment_id} is {info['status']} after {timeout}s, not {statuses}")
        time.sleep(0.02)


def openssl_verify(payload: str, certificate_pem: bytes, workdir: Path) -> bytes:
    """Verify a PEM PKCS#7 SignedData against ``certificate_pem`` with the openssl CLI; its content."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to check PKCS#7 signatures independently"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "signed.pem").write_text(payload)
    (workdir / "signer.crt").write_bytes(certificate_pem)
    result = subprocess.run(
        [
            openssl,
            "smime",
            "-verify",
            "-inform",
            "PEM",
            "-in",
            str(workdir / "signed.pem"),
            "-CAfile",
            str(workdir / "signer.crt"),
            "-binary",
        ],
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout

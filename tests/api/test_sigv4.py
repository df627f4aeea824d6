"""SigV4 authentication of every request, against a real server: what is refused, with which AWS code."""

from __future__ import annotations

import datetime as dt
import subprocess
import time

import boto3
import botocore.config
import pytest

from opendeploy.store.access_keys import create_access_key
from opendeploy.store.db import Database
from opendeploy.store.secrets import SecretBox
from support.names import unique
from support.server import AWS_CLI
from support.signing import send_json


def error_type(response) -> str:
    assert response.status_code == 400, response.text
    return response.json()["__type"]


def test_signed_request_accepted(server):
    response = send_json(server, "ListApplications")
    assert response.status_code == 200
    assert "applications" in response.json()


def test_missing_authentication(server):
    response = send_json(server, "ListApplications", signed=False)
    assert error_type(response) == "MissingAuthenticationTokenException"


def test_unknown_access_key(server):
    response = send_json(server, "ListApplications", access_key="AKIAUNKNOWNUNKNOWN00")
    assert error_type(response) == "UnrecognizedClientException"


def test_wrong_secret(server):
    response = send_json(server, "ListApplications", secret_key="not-the-secret")
    assert error_type(response) == "InvalidSignatureException"
    assert "signature we calculated does not match" in response.json()["message"]


def test_body_changed_after_signing(server):
    name = unique("tamper")
    response = send_json(
        server,
        "CreateApplication",
        {"applicationName": name},
        tamper_body=f'{{"applicationName": "{name}x"}}'.encode(),
    )
    assert error_type(response) == "InvalidSignatureException"
    assert server.client().list_applications()["applications"].count(name + "x") == 0


def test_stale_and_future_requests(server):
    now = dt.datetime.now(dt.UTC)
    stale = send_json(server, "ListApplications", at=now - dt.timedelta(minutes=16))
    assert error_type(stale) == "InvalidSignatureException"
    assert stale.json()["message"].startswith("Signature expired")
    future = send_json(server, "ListApplications", at=now + dt.timedelta(minutes=16))
    assert error_type(future) == "InvalidSignatureException"
    assert "not yet current" in future.json()["message"]
    # Within the 15 minutes either way the request is fine (clocks are never exactly in step).
    assert send_json(server, "ListApplications", at=now - dt.timedelta(minutes=14)).status_code == 200
    assert send_json(server, "ListApplications", at=now + dt.timedelta(minutes=14)).status_code == 200


def test_wrong_scope(server):
    wrong_service = send_json(server, "ListApplications", service="s3")
    assert error_type(wrong_service) == "IncompleteSignatureException"
    assert "codedeploy" in wrong_service.json()["message"]
    wrong_region = send_json(server, "ListApplications", region="ap-south-2")
    assert error_type(wrong_region) == "InvalidSignatureException"
    assert "region" in wrong_region.json()["message"]


def test_boto3_with_bad_credentials(server):
    session = boto3.Session(
        aws_access_key_id=server.credentials()[0], aws_secret_access_key="wrong", region_name=server.region
    )
    client = session.client(
        "codedeploy", endpoint_url=server.endpoint, config=botocore.config.Config(retries={"max_attempts": 1})
    )
    with pytest.raises(client.exceptions.ClientError) as raised:
        client.list_applications()
    assert raised.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_aws_cli_with_unknown_key(server):
    env_override = {"AWS_ACCESS_KEY_ID": "AKIAUNKNOWNUNKNOWN00", "AWS_SECRET_ACCESS_KEY": "x"}
    env = {k: v for k, v in server.env.items() if k != "AWS_PROFILE"} | env_override
    env["AWS_DEFAULT_REGION"] = server.region
    result = subprocess.run(
        [str(AWS_CLI), "--endpoint-url", server.endpoint, "deploy", "list-applications"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "UnrecognizedClientException" in result.stderr


def test_instance_key_cannot_use_the_control_plane_api(server_factory):
    """An on-premises instance's own key (used by agents) is not an administrator key."""
    server = server_factory("sqlite")
    database = Database(f"sqlite:///{server.data_dir / 'opendeploy.db'}")
    with database.transaction() as session:
        key = create_access_key(
            session,
            SecretBox.load_or_create(server.data_dir),
            principal_arn="arn:aws:iam::111122223333:user/host-1",
            instance_name="host-1",
            now=time.time(),
        )
    database.dispose()
    response = send_json(
        server, "ListApplications", access_key=key.access_key_id, secret_key=key.secret_access_key
    )
    assert error_type(response) == "AccessDeniedException"
    assert "host-1" in response.json()["message"]

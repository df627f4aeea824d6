"""Every CodeDeploy and IAM request is on record: ``aws cloudtrail lookup-events`` finds the
CreateDeployment a user made, with its parameters and who made it, and the AccessDenied another user
got; a change and its event are committed together, so both survive a kill -9 of the server."""

from __future__ import annotations

import json
import time
from typing import Any

from iam_helpers import key_client, start_server

from support.server import ServerProcess, wait_for

DEPLOYER = "arn:aws:iam::aws:policy/AWSCodeDeployDeployerAccess"
ROLE = "arn:aws:iam::111122223333:role/CodeDeployServiceRole"
REVISION = {"revisionType": "GitHub", "gitHubLocation": {"repository": "example/app", "commitId": "c" * 40}}


def user_with_key(iam: Any, name: str) -> tuple[str, str]:
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def events_of(server: ServerProcess, *attribute: str) -> list[dict[str, Any]]:
    """``aws cloudtrail lookup-events`` for one lookup attribute, each event's CloudTrail record."""
    key, value = attribute
    answer = server.aws_json(
        "cloudtrail", "lookup-events", "--lookup-attributes", f"AttributeKey={key},AttributeValue={value}"
    )
    return [json.loads(event["CloudTrailEvent"]) for event in answer["Events"]]


def test_who_did_what_and_who_was_refused_survives_a_kill_9(tmp_path: Any) -> None:
    server = start_server(tmp_path / "server")
    try:
        admin, iam = server.client("codedeploy"), server.client("iam")
        admin.create_application(applicationName="Audited")
        admin.create_deployment_group(
            applicationName="Audited", deploymentGroupName="Fleet", serviceRoleArn=ROLE
        )
        alice_key = user_with_key(iam, "alice")
        iam.attach_user_policy(UserName="alice", PolicyArn=DEPLOYER)
        bob_key = user_with_key(iam, "bob")

        alice = key_client(server, "codedeploy", *alice_key)
        deployment_id = alice.create_deployment(
            applicationName="Audited", deploymentGroupName="Fleet", revision=REVISION, description="audited"
        )["deploymentId"]
        bob = key_client(server, "codedeploy", *bob_key)
        try:
            bob.delete_application(applicationName="Audited")
        except bob.exceptions.ClientError as error:
            assert error.response["Error"]["Code"] == "AccessDeniedException"
        else:
            raise AssertionError("bob may not delete the application")

        # The bundle store is on record too: an upload, and a read refused to a user without S3 policies.
        server.client("s3").create_bucket(Bucket="audited-bundles")
        server.client("s3").put_object(Bucket="audited-bundles", Key="app.zip", Body=b"bundle")
        try:
            key_client(server, "s3", *bob_key).get_object(Bucket="audited-bundles", Key="app.zip")
        except bob.exceptions.ClientError as error:
            assert error.response["Error"]["Code"] == "AccessDenied"
        else:
            raise AssertionError("bob may not read bundles")

        # A read is on record too, committed with the next batch rather than before its answer.
        alice.get_deployment(deploymentId=deployment_id)
        reads = wait_for(
            lambda: [e for e in events_of(server, "Username", "alice") if e["eventName"] == "GetDeployment"],
            timeout=20,
        )
        assert reads[0]["readOnly"] is True and reads[0]["responseElements"] is None

        server.restart(kill=True)  # a kill -9: every change and refusal answered is on record

        created = [e for e in events_of(server, "Username", "alice") if e["eventName"] == "CreateDeployment"]
        assert len(created) == 1
        event = created[0]
        assert event["eventSource"] == "codedeploy.amazonaws.com"
        assert event["userIdentity"]["arn"] == f"arn:aws:iam::{server.account_id}:user/alice"
        assert event["userIdentity"]["accessKeyId"] == alice_key[0]
        assert event["requestParameters"]["applicationName"] == "Audited"
        assert event["requestParameters"]["description"] == "audited"
        assert event["responseElements"] == {"deploymentId": deployment_id}
        assert event["readOnly"] is False and "errorCode" not in event

        refused = events_of(server, "Username", "bob")
        assert sorted((e["eventName"], e["errorCode"]) for e in refused) == [
            ("DeleteApplication", "AccessDeniedException"),
            ("GetObject", "AccessDenied"),
        ]
        refused = [e for e in refused if e["eventName"] == "DeleteApplication"]
        upload = events_of(server, "EventName", "PutObject")[0]
        assert (upload["eventSource"], upload["eventCategory"]) == ("s3.amazonaws.com", "Data")
        assert upload["requestParameters"] == {"bucketName": "audited-bundles", "key": "app.zip"}
        assert "codedeploy:DeleteApplication" in refused[0]["errorMessage"]
        by_name = events_of(server, "EventName", "DeleteApplication")
        assert [e["userIdentity"].get("userName") for e in by_name] == ["bob"]
        assert all(e["eventTime"] <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) for e in refused)

        # IAM is on record too, and a new key's secret never is.
        keys = events_of(server, "EventName", "CreateAccessKey")
        assert {e["requestParameters"]["UserName"] for e in keys} == {"alice", "bob"}
        assert all(e["eventSource"] == "iam.amazonaws.com" for e in keys)
        text = json.dumps(keys)
        assert alice_key[1] not in text and bob_key[1] not in text
        assert "HIDDEN_DUE_TO_SECURITY_REASONS" in text
    finally:
        server.stop()

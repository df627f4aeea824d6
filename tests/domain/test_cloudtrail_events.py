"""``domain.cloudtrail_events``: CloudTrail records from API calls — identities, read/write, data vs
management events, redaction of secrets, the fields CloudTrail always carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from opendeploy.domain.cloudtrail_events import (
    HIDDEN,
    MAX_ELEMENT_CHARS,
    ApiCall,
    Caller,
    Resource,
    TlsDetails,
    redact,
    trail_event,
    user_identity,
)

ACCOUNT = "111122223333"
KEY = "AKIAEXAMPLEEXAMPLE01"
ALICE = Caller(f"arn:aws:iam::{ACCOUNT}:user/team/alice", KEY, "AIDAEXAMPLEALICE0001")


def call(**changes: Any) -> ApiCall:
    fields: dict[str, Any] = {
        "service": "codedeploy",
        "operation": "CreateDeploymentGroup",
        "time": 1417060656.25,  # 2014-11-27T03:57:36Z
        "region": "us-west-2",
        "account_id": ACCOUNT,
        "request_id": "86168559-75e9-11e4-8cf8-75d18EXAMPLE",
        "caller": ALICE,
        "source_ip": "203.0.113.11",
        "user_agent": "aws-cli/1.32",
        "request_parameters": {"applicationName": "App", "deploymentGroupName": "Group"},
        "response_elements": {"deploymentGroupId": "7d64e680-e6f4-4c07-b10a-9e117EXAMPLE"},
    }
    fields.update(changes)
    return ApiCall(**fields)


def test_a_write_is_recorded_as_the_guide_shows_it() -> None:
    event = trail_event(call(event_id="832b82d5-d474-44e8-a51d-093ccEXAMPLE"))
    record = event.record
    assert record == {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEALICE0001",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/team/alice",
            "accountId": ACCOUNT,
            "accessKeyId": KEY,
            "userName": "alice",
        },
        "eventTime": "2014-11-27T03:57:36Z",
        "eventSource": "codedeploy.amazonaws.com",
        "eventName": "CreateDeploymentGroup",
        "awsRegion": "us-west-2",
        "sourceIPAddress": "203.0.113.11",
        "userAgent": "aws-cli/1.32",
        "requestParameters": {"applicationName": "App", "deploymentGroupName": "Group"},
        "responseElements": {"deploymentGroupId": "7d64e680-e6f4-4c07-b10a-9e117EXAMPLE"},
        "requestID": "86168559-75e9-11e4-8cf8-75d18EXAMPLE",
        "eventID": "832b82d5-d474-44e8-a51d-093ccEXAMPLE",
        "readOnly": False,
        "resources": [
            {
                "accountId": ACCOUNT,
                "type": "AWS::CodeDeploy::Application",
                "ARN": f"arn:aws:codedeploy:us-west-2:{ACCOUNT}:application:App",
            },
            {
                "accountId": ACCOUNT,
                "type": "AWS::CodeDeploy::DeploymentGroup",
                "ARN": f"arn:aws:codedeploy:us-west-2:{ACCOUNT}:deploymentgroup:App/Group",
            },
        ],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    assert json.loads(event.json) == record
    assert (event.username, event.access_key_id, event.read_only, event.category) == (
        "alice",
        KEY,
        False,
        "Management",
    )
    assert [(r.type, r.name) for r in event.resources] == [
        ("AWS::CodeDeploy::Application", "App"),
        ("AWS::CodeDeploy::DeploymentGroup", "Group"),
    ]


@pytest.mark.parametrize(
    ("caller", "identity", "username"),
    [
        (
            Caller(f"arn:aws:iam::{ACCOUNT}:root", KEY),
            {
                "type": "Root",
                "principalId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:root",
                "accountId": ACCOUNT,
                "accessKeyId": KEY,
            },
            "root",
        ),
        (
            # An on-premises instance's identity: a user in another account, id unknown to the server.
            Caller("arn:aws:iam::444455556666:user/h1", KEY),
            {
                "type": "IAMUser",
                "arn": "arn:aws:iam::444455556666:user/h1",
                "accountId": "444455556666",
                "accessKeyId": KEY,
                "userName": "h1",
            },
            "h1",
        ),
        (
            Caller(
                f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/ci-run-7",
                "ASIAEXAMPLE",
                "AROAEXAMPLE:ci-run-7",
            ),
            {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLE:ci-run-7",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/ci-run-7",
                "accountId": ACCOUNT,
                "accessKeyId": "ASIAEXAMPLE",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": "AROAEXAMPLE",
                        "arn": f"arn:aws:iam::{ACCOUNT}:role/Deployer",
                        "accountId": ACCOUNT,
                        "userName": "Deployer",
                    }
                },
            },
            "ci-run-7",
        ),
        (Caller(None, KEY), {"type": "Unknown", "principalId": "", "accessKeyId": KEY}, None),
        (Caller(None), {"type": "AWSAccount", "principalId": "", "accountId": "anonymous"}, None),
    ],
    ids=["root", "iam-user", "assumed-role", "unknown-key", "anonymous"],
)
def test_user_identity_shapes(caller: Caller, identity: dict[str, Any], username: str | None) -> None:
    assert user_identity(caller) == (identity, username)
    assert trail_event(call(caller=caller)).username == username


@pytest.mark.parametrize(
    ("service", "operation", "read_only", "category"),
    [
        ("codedeploy", "GetDeployment", True, "Management"),
        ("codedeploy", "ListApplications", True, "Management"),
        ("codedeploy", "BatchGetDeployments", True, "Management"),
        ("codedeploy", "CreateDeployment", False, "Management"),
        ("codedeploy", "StopDeployment", False, "Management"),
        ("s3", "ListBuckets", True, "Management"),
        ("s3", "CreateBucket", False, "Management"),
        ("s3", "GetObject", True, "Data"),
        ("s3", "HeadObject", True, "Data"),
        ("s3", "ListObjectsV2", True, "Data"),
        ("s3", "PutObject", False, "Data"),
        ("s3", "CompleteMultipartUpload", False, "Data"),
        ("iam", "GetUser", True, "Management"),
        ("iam", "CreateAccessKey", False, "Management"),
        ("sts", "GetCallerIdentity", True, "Management"),
        ("cloudtrail", "LookupEvents", True, "Management"),
    ],
)
def test_read_only_and_event_category(service: str, operation: str, read_only: bool, category: str) -> None:
    event = trail_event(call(service=service, operation=operation))
    assert (event.read_only, event.category) == (read_only, category)
    assert event.record["readOnly"] is read_only
    assert event.record["eventCategory"] == category
    assert event.record["managementEvent"] is (category == "Management")
    assert event.record["eventSource"] == f"{service}.amazonaws.com"


def test_the_caller_may_say_whether_a_call_reads_and_whether_it_is_a_data_event() -> None:
    event = trail_event(call(service="codedeploy-commands", operation="PollHostCommand", read_only=True))
    assert event.read_only and event.record["responseElements"] is None
    assert trail_event(call(service="s3", operation="GetObject", data_event=False)).category == "Management"


@pytest.mark.parametrize(
    ("parameters", "recorded"),
    [
        # CreateAccessKey's answer: the secret never reaches the trail, the key id does.
        (
            {"AccessKey": {"AccessKeyId": KEY, "SecretAccessKey": "wJalr/K7MDENG", "Status": "Active"}},
            {"AccessKey": {"AccessKeyId": KEY, "SecretAccessKey": HIDDEN, "Status": "Active"}},
        ),
        ({"secretAccessKey": "x", "sessionToken": "y"}, {"secretAccessKey": HIDDEN, "sessionToken": HIDDEN}),
        ({"githubToken": "ghp_abc", "tokenName": "mine"}, {"githubToken": HIDDEN, "tokenName": "mine"}),
        ({"token": "ghp_abc", "nextToken": "page-2"}, {"token": HIDDEN, "nextToken": "page-2"}),
        ({"Password": "p", "NewPassword": "q"}, {"Password": HIDDEN, "NewPassword": HIDDEN}),
        (
            {"x-amz-security-token": "t", "X-Amz-Signature": "s"},
            {"x-amz-security-token": HIDDEN, "X-Amz-Signature": HIDDEN},
        ),
        ({"items": [{"privateKey": "k"}, {"name": "n"}]}, {"items": [{"privateKey": HIDDEN}, {"name": "n"}]}),
        # Policy documents are what an auditor wants to read: kept.
        (
            {"PolicyName": "p", "PolicyDocument": '{"Statement":[{"Effect":"Allow"}]}'},
            {"PolicyName": "p", "PolicyDocument": '{"Statement":[{"Effect":"Allow"}]}'},
        ),
        # Object bodies are never recorded; other binary values only by size.
        ({"bucketName": "b", "key": "k", "Body": b"secret bundle"}, {"bucketName": "b", "key": "k"}),
        ({"blob": b"\x00\x01\x02"}, {"blob": "(3 bytes omitted)"}),
        ({"password": None}, {"password": None}),
    ],
)
def test_secrets_are_hidden_in_parameters_and_answers(parameters: dict[str, Any], recorded: Any) -> None:
    assert redact(parameters) == recorded
    write = trail_event(
        call(
            service="iam",
            operation="CreateAccessKey",
            request_parameters=parameters,
            response_elements=parameters,
        )
    )
    assert write.record["requestParameters"] == recorded
    assert write.record["responseElements"] == recorded
    assert "wJalr" not in write.json and "ghp_abc" not in write.json and "secret bundle" not in write.json


def test_redaction_leaves_the_callers_objects_alone() -> None:
    parameters = {"SecretAccessKey": "s", "nested": {"password": "p"}}
    trail_event(call(request_parameters=parameters))
    assert parameters == {"SecretAccessKey": "s", "nested": {"password": "p"}}


def test_reads_and_failures_have_no_response_elements() -> None:
    read = trail_event(call(operation="GetDeployment", response_elements={"deploymentInfo": {"status": "x"}}))
    assert read.record["responseElements"] is None
    denied = trail_event(
        call(
            error_code="AccessDeniedException",
            error_message=f"User: {ALICE.arn} is not authorized to perform: codedeploy:CreateDeploymentGroup",
        )
    )
    assert denied.record["errorCode"] == "AccessDeniedException"
    assert denied.record["errorMessage"].startswith("User: ")
    assert denied.record["responseElements"] is None
    assert denied.error_code == "AccessDeniedException"
    assert "errorCode" not in trail_event(call()).record


def test_every_event_gets_its_own_id_unless_given_one() -> None:
    first, second = trail_event(call()), trail_event(call())
    assert first.event_id != second.event_id
    assert first.record["eventID"] == first.event_id


def test_oversized_members_are_replaced_by_their_size() -> None:
    huge = {"description": "x" * (MAX_ELEMENT_CHARS + 10)}
    event = trail_event(call(request_parameters=huge))
    assert event.record["requestParameters"] == {
        "omitted": True,
        "originalSize": len(json.dumps(huge, separators=(",", ":"))),
    }
    assert len(event.json) < 2000


@pytest.mark.parametrize(
    ("service", "parameters", "resources"),
    [
        (
            "s3",
            {"bucketName": "bundles", "key": "app/v1.zip"},
            [
                Resource("AWS::S3::Bucket", "bundles", "arn:aws:s3:::bundles"),
                Resource("AWS::S3::Object", "bundles/app/v1.zip", "arn:aws:s3:::bundles/app/v1.zip"),
            ],
        ),
        ("iam", {"UserName": "h1"}, [Resource("AWS::IAM::User", "h1")]),
        (
            "codedeploy",
            {"deploymentConfigName": "CodeDeployDefault.OneAtATime"},
            [
                Resource(
                    "AWS::CodeDeploy::DeploymentConfig",
                    "CodeDeployDefault.OneAtATime",
                    f"arn:aws:codedeploy:us-west-2:{ACCOUNT}:deploymentconfig:CodeDeployDefault.OneAtATime",
                )
            ],
        ),
        ("codedeploy", {"deploymentId": "d-ABCDEF123"}, []),
    ],
)
def test_resources_from_parameters(
    service: str, parameters: dict[str, Any], resources: list[Resource]
) -> None:
    event = trail_event(call(service=service, operation="Something", request_parameters=parameters))
    assert list(event.resources) == resources
    assert trail_event(call(resources=[Resource("AWS::X::Y", "given")])).resources == (
        Resource("AWS::X::Y", "given"),
    )


def test_tls_details_and_additional_event_data() -> None:
    event = trail_event(
        call(
            service="s3",
            operation="GetObject",
            tls=TlsDetails("TLSv1.3", "TLS_AES_128_GCM_SHA256", "opendeploy.example:8480"),
            additional_event_data={"bytesTransferredOut": 1024, "x-amz-security-token": "t"},
        )
    )
    assert event.record["tlsDetails"] == {
        "tlsVersion": "TLSv1.3",
        "cipherSuite": "TLS_AES_128_GCM_SHA256",
        "clientProvidedHostHeader": "opendeploy.example:8480",
    }
    assert event.record["additionalEventData"] == {
        "bytesTransferredOut": 1024,
        "x-amz-security-token": HIDDEN,
    }


def test_values_json_cannot_hold_natively_are_written_as_text_or_in_full() -> None:
    event = trail_event(
        call(
            request_parameters={
                "when": datetime(2014, 11, 27, 3, 57, 36, tzinfo=UTC),
                "ratio": Decimal("0.5"),
                "name": "café",
            }
        )
    )
    recorded = json.loads(event.json)["requestParameters"]
    assert recorded == {"when": "2014-11-27T03:57:36Z", "ratio": 0.5, "name": "café"}
    huge = trail_event(call(request_parameters={"count": 2**70}))  # beyond 64 bits: written in full
    assert json.loads(huge.json)["requestParameters"] == {"count": 2**70}

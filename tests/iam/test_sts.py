"""STS GetCallerIdentity on the server's one port: ``aws sts get-caller-identity`` and boto3 with the
``opendeploy`` profile alone, for the administrator and for IAM users (whatever their policies say),
STS's XML documents and errors, and requests told apart from IAM's by their signature's scope."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

import botocore.exceptions
import httpx
import pytest
from botocore.awsrequest import AWSRequest
from iam_helpers import key_client, policy_document

from support.names import unique
from support.server import ServerProcess
from support.signing import sign

STS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
IAM = "{https://iam.amazonaws.com/doc/2010-05-08/}"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
IDENTITY = "Action=GetCallerIdentity&Version=2011-06-15"


def send(
    server: ServerProcess,
    body: str,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    service: str = "sts",
    region: str | None = None,
) -> httpx.Response:
    key, secret = server.credentials()
    request = AWSRequest(method="POST", url=f"{server.endpoint}/", data=body, headers={"Content-Type": FORM})
    sign(
        request,
        access_key=access_key or key,
        secret_key=secret_key or secret,
        service=service,
        region=region or server.region,
    )
    return httpx.post(
        f"{server.endpoint}/", content=body.encode(), headers=dict(request.headers.items()), timeout=30
    )


def error_of(response: httpx.Response, namespace: str = STS) -> dict[str, str]:
    """The XML error document (in ``namespace``): ``{"Type", "Code", "Message", "RequestId"}``."""
    assert response.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{namespace}ErrorResponse"
    error = root.find(f"{namespace}Error")
    assert error is not None
    fields = {child.tag.removeprefix(namespace): child.text or "" for child in error}
    fields["RequestId"] = root.findtext(f"{namespace}RequestId") or ""
    assert fields["RequestId"] == response.headers["x-amzn-requestid"]
    return fields


def identity_without_metadata(answer: dict[str, Any]) -> dict[str, str]:
    return {name: answer[name] for name in ("UserId", "Account", "Arn")}


def test_the_administrator_is_answered_through_boto3_with_the_profile_alone(
    iam_server: ServerProcess, iam: Any
) -> None:
    sts = iam_server.client("sts")
    assert sts.meta.endpoint_url == iam_server.endpoint  # the profile's sts endpoint
    identity = sts.get_caller_identity()
    me = iam.get_user()["User"]  # the administrator, as IAM describes it
    assert identity_without_metadata(identity) == {
        "UserId": me["UserId"],
        "Account": me["Arn"].split(":")[4],
        "Arn": me["Arn"],
    }
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", identity["UserId"])
    assert re.fullmatch(r"\d{12}", identity["Account"])
    assert identity["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sts.get_caller_identity()["UserId"] == identity["UserId"]  # stable


def test_the_aws_cli_answers_as_boto3_does(iam_server: ServerProcess) -> None:
    answer = iam_server.aws_json("sts", "get-caller-identity")
    assert answer == identity_without_metadata(iam_server.client("sts").get_caller_identity())


def test_an_iam_user_is_answered_even_when_its_policy_denies_everything(
    iam_server: ServerProcess, iam: Any
) -> None:
    user = iam.create_user(UserName=unique("denied"))["User"]
    iam.put_user_policy(
        UserName=user["UserName"],
        PolicyName="DenyAll",
        PolicyDocument=policy_document("DenyAll", action="*", effect="Deny"),
    )
    key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]

    sts = key_client(iam_server, "sts", key["AccessKeyId"], key["SecretAccessKey"])
    identity = sts.get_caller_identity()
    assert identity_without_metadata(identity) == {
        "UserId": user["UserId"],
        "Account": iam_server.client("sts").get_caller_identity()["Account"],
        "Arn": user["Arn"],
    }
    # The same key is refused everything else.
    user_iam = key_client(iam_server, "iam", key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        user_iam.get_user(UserName=user["UserName"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_the_response_is_sts_s_xml_document(iam_server: ServerProcess) -> None:
    # Signed for the global endpoint's region, as SDKs sign sts.amazonaws.com.
    response = send(iam_server, IDENTITY, region="us-east-1")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{STS}GetCallerIdentityResponse"
    result = root.find(f"{STS}GetCallerIdentityResult")
    assert result is not None
    assert sorted(child.tag.removeprefix(STS) for child in result) == ["Account", "Arn", "UserId"]
    assert root.findtext(f"{STS}ResponseMetadata/{STS}RequestId") == response.headers["x-amzn-requestid"]


def test_an_unknown_key_is_an_invalid_client_token(iam_server: ServerProcess) -> None:
    stranger = key_client(iam_server, "sts", "AKIAUNKNOWNKEY000000", "not-a-secret")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        stranger.get_caller_identity()
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    response = send(iam_server, IDENTITY, access_key="AKIAUNKNOWNKEY000000", secret_key="x")
    assert response.status_code == 403
    error = error_of(response)
    assert (error["Type"], error["Code"]) == ("Sender", "InvalidClientTokenId")


def test_a_wrong_secret_is_a_signature_mismatch(iam_server: ServerProcess) -> None:
    key, _ = iam_server.credentials()
    response = send(iam_server, IDENTITY, access_key=key, secret_key="wrong")
    assert response.status_code == 403
    assert error_of(response)["Code"] == "SignatureDoesNotMatch"


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ("Action=GetSessionToken&Version=2011-06-15", "InvalidAction", "GetSessionToken"),
        ("Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::1:role/r", "InvalidAction", "AssumeRole"),
        ("Action=Explode&Version=2011-06-15", "InvalidAction", "Explode"),
        ("Version=2011-06-15", "MissingAction", "Action"),
        ("Action=GetCallerIdentity&Version=2010-05-08", "NoSuchVersion", "2011-06-15"),
        ("Action=GetCallerIdentity&Version=2011-06-15&Colour=red", "ValidationError", "'Colour'"),
    ],
)
def test_other_sts_requests_get_clear_sts_errors(
    iam_server: ServerProcess, body: str, code: str, says: str
) -> None:
    response = send(iam_server, body)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["Type"], error["Code"]) == ("Sender", code)
    assert says in error["Message"]
    if code == "InvalidAction":
        assert "GetCallerIdentity" in error["Message"]  # what is offered instead


def test_the_signature_s_scope_decides_between_iam_and_sts(iam_server: ServerProcess) -> None:
    # STS's action signed for IAM is IAM's request (and not a version IAM has).
    response = send(iam_server, IDENTITY, service="iam")
    assert response.status_code == 400
    assert error_of(response, IAM)["Code"] == "NoSuchVersion"
    # IAM's action signed for STS is not an STS action.
    response = send(iam_server, "Action=ListUsers&Version=2011-06-15", service="sts")
    assert error_of(response)["Code"] == "InvalidAction"

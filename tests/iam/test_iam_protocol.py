"""IAM's Query protocol on the wire, with hand-made requests: signatures, the administrator-only
rule, the action and version, malformed forms and parameters, and IAM's XML error document."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from botocore.awsrequest import AWSRequest
from iam_helpers import key_client

from support.names import unique
from support.server import ServerProcess
from support.signing import sign

NAMESPACE = "{https://iam.amazonaws.com/doc/2010-05-08/}"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def send(
    server: ServerProcess,
    body: str | bytes,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    service: str = "iam",
    region: str | None = None,
    signed: bool = True,
) -> httpx.Response:
    key, secret = server.credentials()
    data = body.encode() if isinstance(body, str) else body
    request = AWSRequest(method="POST", url=f"{server.endpoint}/", data=data, headers={"Content-Type": FORM})
    if signed:
        sign(
            request,
            access_key=access_key or key,
            secret_key=secret_key or secret,
            service=service,
            region=region or server.region,
        )
    return httpx.post(f"{server.endpoint}/", content=data, headers=dict(request.headers.items()), timeout=30)


def error_of(response: httpx.Response) -> dict[str, str]:
    """IAM's error document, checked for its shape: ``{"Type", "Code", "Message", "RequestId"}``."""
    assert response.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{NAMESPACE}ErrorResponse"
    error = root.find(f"{NAMESPACE}Error")
    assert error is not None
    fields = {child.tag.removeprefix(NAMESPACE): child.text or "" for child in error}
    fields["RequestId"] = root.findtext(f"{NAMESPACE}RequestId") or ""
    assert fields["RequestId"] == response.headers["x-amzn-requestid"]
    return fields


def test_a_successful_response_is_iam_s_document(iam_server: ServerProcess) -> None:
    response = send(iam_server, "Action=GetUser&Version=2010-05-08")
    assert response.status_code == 200
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{NAMESPACE}GetUserResponse"
    assert (
        root.findtext(f"{NAMESPACE}GetUserResult/{NAMESPACE}User/{NAMESPACE}UserName") == "opendeploy-admin"
    )
    assert (
        root.findtext(f"{NAMESPACE}ResponseMetadata/{NAMESPACE}RequestId")
        == response.headers["x-amzn-requestid"]
    )


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"signed": False}, "MissingAuthenticationToken"),
        ({"secret_key": "not-the-secret"}, "SignatureDoesNotMatch"),
        ({"access_key": "AKIAUNKNOWNUNKNOWN00"}, "InvalidClientTokenId"),
        ({"service": "codedeploy"}, "IncompleteSignature"),
        ({"region": "ap-southeast-2"}, "SignatureDoesNotMatch"),
    ],
)
def test_requests_not_signed_by_a_known_key_for_iam_are_refused(
    iam_server: ServerProcess, options: dict[str, Any], code: str
) -> None:
    name = unique("never")
    response = send(iam_server, f"Action=CreateUser&Version=2010-05-08&UserName={name}", **options)
    assert response.status_code == 403
    error = error_of(response)
    assert (error["Type"], error["Code"]) == ("Sender", code)
    assert error["Message"]
    with pytest.raises(iam_server.client("iam").exceptions.NoSuchEntityException):
        iam_server.client("iam").get_user(UserName=name)


def test_only_the_administrator_may_call_iam(iam_server: ServerProcess) -> None:
    iam = iam_server.client("iam")
    user = iam.create_user(UserName=unique("host"))["User"]
    key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
    response = send(
        iam_server,
        "Action=DeleteUser&Version=2010-05-08&UserName=" + user["UserName"],
        access_key=key["AccessKeyId"],
        secret_key=key["SecretAccessKey"],
    )
    assert response.status_code == 403
    error = error_of(response)
    assert error["Code"] == "AccessDenied"
    assert f"User: {user['Arn']} is not authorized to perform: iam:DeleteUser" in error["Message"]
    assert iam.get_user(UserName=user["UserName"])["User"] == user


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ("Version=2010-05-08", "MissingAction", "Action"),
        ("Action=CreateUser&UserName=x", "MissingParameter", "Version"),
        ("Action=CreateUser&Version=2006-01-01&UserName=x", "NoSuchVersion", "2006-01-01"),
        ("Action=Explode&Version=2010-05-08", "InvalidAction", "CreateUser"),
        ("Action=CreateRole&Version=2010-05-08&RoleName=r", "InvalidAction", "CreateRole"),
        ("Action=CreateUser&Version=2010-05-08", "ValidationError", "UserName"),
        ("Action=CreateUser&Version=2010-05-08&UserName=x&Colour=red", "ValidationError", "'Colour'"),
        ("Action=CreateUser&Version=2010-05-08&UserName=x&UserName=y", "MalformedQueryString", "UserName"),
        ("Action=CreateUser&Version=2010-05-08&UserName=%ff", "MalformedQueryString", "form"),
        ("Action=ListUsers&Version=2010-05-08&MaxItems=ten", "ValidationError", "MaxItems"),
        ("Action=ListUsers&Version=2010-05-08&MaxItems=0", "ValidationError", "MaxItems"),
        ("Action=ListUsers&Version=2010-05-08&Odd%01Name=1", "ValidationError", "Odd\\x01Name"),
        ("Action=TagUser&Version=2010-05-08&UserName=x&Tags.member.1.Key=k", "ValidationError", "Value"),
    ],
)
def test_bad_requests_get_clear_iam_errors(
    iam_server: ServerProcess, body: str, code: str, says: str
) -> None:
    response = send(iam_server, body)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["Type"], error["Code"]) == ("Sender", code)
    assert says in error["Message"]


def test_lists_and_structures_are_read_as_botocore_writes_them(iam_server: ServerProcess) -> None:
    name = unique("wire")
    body = (
        f"Action=CreateUser&Version=2010-05-08&UserName={name}&Path=%2Fa%2Fb%2F"
        "&Tags.member.1.Key=Stage&Tags.member.1.Value=Beta&Tags.member.2.Key=Team&Tags.member.2.Value="
    )
    assert send(iam_server, body).status_code == 200
    user = iam_server.client("iam").get_user(UserName=name)["User"]
    assert user["Path"] == "/a/b/"
    assert user["Tags"] == [{"Key": "Stage", "Value": "Beta"}, {"Key": "Team", "Value": ""}]
    # An empty list is written "TagKeys=" by the Query protocol.
    assert (
        send(iam_server, f"Action=UntagUser&Version=2010-05-08&UserName={name}&TagKeys=").status_code == 200
    )
    assert len(iam_server.client("iam").get_user(UserName=name)["User"]["Tags"]) == 2


def test_an_oversized_body_is_refused(iam_server: ServerProcess) -> None:
    response = send(iam_server, "Action=GetUser&Version=2010-05-08&Pad=" + "x" * (1024 * 1024))
    assert response.status_code == 413
    assert error_of(response)["Code"] == "RequestEntityTooLarge"


def test_iam_is_signed_for_the_server_s_region_or_us_east_1(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server", region="eu-west-1").start()
    try:
        key, secret = server.credentials()
        # The profile's region (eu-west-1), as the aws CLI signs with it.
        assert server.aws_json("iam", "get-user")["User"]["UserName"] == "opendeploy-admin"
        # us-east-1, where SDKs sign IAM, a global service.
        global_iam = key_client(server, "iam", key, secret, region_name="us-east-1")
        assert global_iam.get_user()["User"]["UserName"] == "opendeploy-admin"
        response = send(server, "Action=GetUser&Version=2010-05-08", region="eu-west-2")
        assert error_of(response)["Code"] == "SignatureDoesNotMatch"
    finally:
        server.stop()


def test_requests_with_a_target_are_not_iam_s(iam_server: ServerProcess) -> None:
    # The IAM route takes only form-encoded requests without X-Amz-Target: a form sent to CodeDeploy's
    # target is CodeDeploy's (JSON) problem, answered in CodeDeploy's error format.
    key, secret = iam_server.credentials()
    body = b"Action=GetUser&Version=2010-05-08"
    request = AWSRequest(
        method="POST",
        url=f"{iam_server.endpoint}/",
        data=body,
        headers={"Content-Type": FORM, "X-Amz-Target": "CodeDeploy_20141006.ListApplications"},
    )
    sign(request, access_key=key, secret_key=secret, service="codedeploy", region=iam_server.region)
    response = httpx.post(f"{iam_server.endpoint}/", content=body, headers=dict(request.headers.items()))
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"

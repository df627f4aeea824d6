"""Inline user policies: recorded exactly as given, returned as IAM returns them (boto3 decodes the
URL-encoded document), replaced, listed, deleted; malformed documents and IAM's size quota refused."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

import httpx
import pytest
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError
from iam_helpers import policy_document

from support.names import unique
from support.server import ServerProcess
from support.signing import sign

# What ``aws deploy register`` puts on an instance's user, byte for byte (with its newlines).
AGENT_POLICY = (
    "{\n"
    '    "Version": "2012-10-17",\n'
    '    "Statement": [ {\n'
    '        "Action": [ "s3:Get*", "s3:List*" ],\n'
    '        "Effect": "Allow",\n'
    '        "Resource": "*"\n'
    "    } ]\n"
    "}"
)


def user(iam: Any) -> str:
    return iam.create_user(UserName=unique("user"))["User"]["UserName"]


def test_put_get_list_and_delete(iam_server: ServerProcess, iam: Any) -> None:
    name = user(iam)
    iam.put_user_policy(UserName=name, PolicyName="codedeploy-agent", PolicyDocument=AGENT_POLICY)
    got = iam.get_user_policy(UserName=name, PolicyName="codedeploy-agent")
    assert (got["UserName"], got["PolicyName"]) == (name, "codedeploy-agent")
    assert got["PolicyDocument"] == json.loads(AGENT_POLICY)

    # The aws CLI decodes it too; on the wire it is the text as given, URL-encoded.
    shown = iam_server.aws_json(
        "iam", "get-user-policy", "--user-name", name, "--policy-name", "codedeploy-agent"
    )
    assert shown["PolicyDocument"] == json.loads(AGENT_POLICY)
    assert _undecoded_document(iam_server, name, "codedeploy-agent") == AGENT_POLICY

    replacement = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName="codedeploy-agent", PolicyDocument=json.dumps(replacement))
    iam.put_user_policy(UserName=name, PolicyName="another", PolicyDocument=policy_document())
    assert iam.get_user_policy(UserName=name, PolicyName="codedeploy-agent")["PolicyDocument"] == replacement
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["another", "codedeploy-agent"]
    pages = list(
        iam.get_paginator("list_user_policies").paginate(UserName=name, PaginationConfig={"PageSize": 1})
    )
    assert [page["PolicyNames"] for page in pages] == [["another"], ["codedeploy-agent"]]

    iam.delete_user_policy(UserName=name, PolicyName="another")
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["codedeploy-agent"]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user_policy(UserName=name, PolicyName="another")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.delete_user_policy(UserName=name, PolicyName="another")


def _undecoded_document(server: ServerProcess, name: str, policy: str) -> str:
    """The document as the server sends it, URL-decoded but not parsed (boto3 would parse it)."""
    key, secret = server.credentials()
    body = f"Action=GetUserPolicy&Version=2010-05-08&UserName={name}&PolicyName={policy}"
    request = AWSRequest(
        method="POST",
        url=f"{server.endpoint}/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    sign(request, access_key=key, secret_key=secret, service="iam", region=server.region)
    response = httpx.post(f"{server.endpoint}/", content=body, headers=dict(request.headers.items()))
    assert response.status_code == 200, response.text
    namespace = {"iam": "https://iam.amazonaws.com/doc/2010-05-08/"}
    found = ElementTree.fromstring(response.content).find(".//iam:PolicyDocument", namespace)
    assert found is not None and found.text is not None
    return unquote(found.text)


def test_malformed_documents_are_refused(iam: Any) -> None:
    name = user(iam)
    for document in ("{not json", '["a list"]', "null", "{}", '{"Statement": [{"Effect": "Allow"}]}'):
        with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
            iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=document)
    with pytest.raises(ClientError) as raised:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument='{"Resource": "\u2603"}')
    assert raised.value.response["Error"]["Code"] == "ValidationError"  # outside IAM's character set
    with pytest.raises(ClientError) as raised:
        iam.put_user_policy(UserName=name, PolicyName="bad name", PolicyDocument="{}")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == []
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.put_user_policy(UserName=unique("missing"), PolicyName="p", PolicyDocument="{}")


def test_a_user_s_inline_policies_hold_at_most_2048_characters(iam: Any) -> None:
    name = user(iam)
    # Whitespace does not count: 2000 spaces plus a 1000-character document fits.
    padded = policy_document("x" * 990) + " " * 2000
    iam.put_user_policy(UserName=name, PolicyName="first", PolicyDocument=padded)
    with pytest.raises(iam.exceptions.LimitExceededException) as raised:
        iam.put_user_policy(UserName=name, PolicyName="second", PolicyDocument=policy_document("y" * 1100))
    assert "2048" in raised.value.response["Error"]["Message"]
    # Replacing a policy counts its new size instead of its old one.
    iam.put_user_policy(UserName=name, PolicyName="first", PolicyDocument=policy_document())
    iam.put_user_policy(UserName=name, PolicyName="second", PolicyDocument=policy_document("y" * 1100))
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["first", "second"]

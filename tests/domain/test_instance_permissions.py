"""An instance's least privilege: the register commands' policy recognised, the grant on exactly the
bundles deployed to it (wildcard characters in a key match only themselves)."""

from __future__ import annotations

import json

import pytest

from opendeploy.domain.iam_policy import Request, evaluate, parse_policy
from opendeploy.domain.instance_permissions import (
    REGISTRATION_POLICY,
    instance_grant,
    is_registration_policy,
    literal_resource,
)


@pytest.mark.parametrize(
    ("name", "document", "expected"),
    [
        ("codedeploy-agent", json.dumps(REGISTRATION_POLICY), True),
        # aws deploy register's own text: indented, its own key order.
        (
            "codedeploy-agent",
            '{\n "Version": "2012-10-17",\n "Statement": [ {\n  "Action": [ "s3:Get*", "s3:List*" ],\n'
            '  "Effect": "Allow",\n  "Resource": "*"\n } ]\n}',
            True,
        ),
        (
            "codedeploy-agent",
            '{"Statement": {"Effect": "Allow", "Action": ["S3:LIST*", "s3:get*"], "Resource": "*"}}',
            True,
        ),
        ("another-name", json.dumps(REGISTRATION_POLICY), False),
        (
            "codedeploy-agent",
            '{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}',
            False,
        ),
        (
            "codedeploy-agent",
            '{"Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"},'
            ' {"Effect": "Allow", "Action": "codedeploy:*", "Resource": "*"}]}',
            False,
        ),
        (
            "codedeploy-agent",
            '{"Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*",'
            ' "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}',
            False,
        ),
        ("codedeploy-agent", "{not json", False),
    ],
)
def test_the_register_commands_policy_is_recognised_and_nothing_else(
    name: str, document: str, expected: bool
) -> None:
    assert is_registration_policy(name, document) is expected


def allowed(grant: dict, action: str, resource: str) -> bool:
    return evaluate([parse_policy(grant)], Request(action, resource)).allowed


def test_the_grant_reads_exactly_the_bundles_deployed() -> None:
    grant = instance_grant(
        [("bundles", "shop/v1.zip"), ("bundles", "shop/v2.zip"), ("bundles", "shop/v1.zip")]
    )
    assert grant is not None
    assert allowed(grant, "s3:GetObject", "arn:aws:s3:::bundles/shop/v1.zip")
    assert allowed(grant, "s3:GetObjectVersion", "arn:aws:s3:::bundles/shop/v2.zip")
    assert not allowed(grant, "s3:GetObject", "arn:aws:s3:::bundles/billing/v1.zip")
    assert not allowed(grant, "s3:PutObject", "arn:aws:s3:::bundles/shop/v1.zip")
    assert not allowed(grant, "s3:ListBucket", "arn:aws:s3:::bundles")
    assert not allowed(grant, "s3:ListAllMyBuckets", "*")
    assert instance_grant([]) is None


@pytest.mark.parametrize("key", ["app*.zip", "app?.zip", "a$b.zip", "${aws:username}.zip"])
def test_wildcard_characters_in_a_bundle_key_match_only_themselves(key: str) -> None:
    grant = instance_grant([("b", key)])
    assert grant is not None
    assert allowed(grant, "s3:GetObject", f"arn:aws:s3:::b/{key}")
    assert not allowed(grant, "s3:GetObject", "arn:aws:s3:::b/app-other.zip")
    assert not allowed(grant, "s3:GetObject", "arn:aws:s3:::b/appX.zip")


def test_literal_resource_escapes_what_iam_would_read() -> None:
    assert literal_resource("a*b?c$d") == "a${*}b${?}c${$}d"

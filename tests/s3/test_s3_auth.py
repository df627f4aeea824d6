"""Who may use the S3 API: signatures (wrong, unknown, missing, expired) and read-only keys."""

from __future__ import annotations

import time
from typing import Any

import boto3
import botocore.config
import httpx
import pytest
from botocore.exceptions import ClientError
from s3_requests import signed_headers

from support.names import unique
from support.server import ServerProcess


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def _client(server: ServerProcess, key_id: str, secret: str, **config: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=botocore.config.Config(
            s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}, **config
        ),
    )


def _stored_key(server: ServerProcess, principal_arn: str) -> tuple[str, str]:
    """A non-administrator key stored the way instance keys are (as the IAM user of an instance)."""
    return server.store_access_key(principal_arn, description="S3 test instance key")


def test_wrong_secret_is_signature_does_not_match(s3_server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="secret", Body=b"x")
    key_id, _ = s3_server.credentials()
    intruder = _client(s3_server, key_id, "not-the-secret-key-at-all-0000000000000000")
    for call in (
        lambda: intruder.get_object(Bucket=bucket, Key="secret"),
        lambda: intruder.put_object(Bucket=bucket, Key="planted", Body=b"evil"),
        lambda: intruder.list_objects_v2(Bucket=bucket),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert _code(error) == "SignatureDoesNotMatch"
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="planted")


def test_unknown_key_is_invalid_access_key_id(s3_server, bucket):
    stranger = _client(s3_server, "AKIAUNKNOWNUNKNOWN00", "whatever-secret")
    with pytest.raises(ClientError) as error:
        stranger.list_objects_v2(Bucket=bucket)
    assert _code(error) == "InvalidAccessKeyId"


def test_unsigned_requests_are_refused(s3_server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"x")
    for method, path in (("GET", f"/{bucket}/private"), ("PUT", f"/{bucket}/anon"), ("GET", "/")):
        response = httpx.request(
            method, f"{s3_server.endpoint}{path}", content=b"data" if method == "PUT" else None
        )
        assert response.status_code == 403
        assert "<Code>AccessDenied</Code>" in response.text
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="anon")


def test_tampered_payload_is_refused(s3_server, s3, bucket):
    # The body differs from the one whose SHA-256 was signed: refused, and nothing is stored.
    headers, _ = signed_headers(s3_server, "PUT", f"/{bucket}/tampered", b"original")
    response = httpx.put(f"{s3_server.endpoint}/{bucket}/tampered", headers=headers, content=b"tampered")
    assert response.status_code == 400 and "<Code>XAmzContentSHA256Mismatch</Code>" in response.text
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="tampered")
    honest = httpx.put(f"{s3_server.endpoint}/{bucket}/tampered", headers=headers, content=b"original")
    assert honest.status_code == 200


def test_expired_presigned_url(s3_server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="soon-gone", Body=b"x")
    for version in ("s3v4", "s3"):
        client = s3_server.client("s3", signature_version=version)
        url = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "soon-gone"}, ExpiresIn=1
        )
        deadline = time.monotonic() + 5
        while httpx.get(url).status_code == 200:
            assert time.monotonic() < deadline, "presigned URL never expired"
            time.sleep(0.2)
        response = httpx.get(url)
        assert response.status_code == 403 and "expired" in response.text


def test_a_key_with_no_policy_can_do_nothing_in_the_bundle_store(s3_server, s3, bucket):
    # A valid key whose principal has no policy (not an IAM user, not an instance) gets the implicit
    # deny, reads included: bundles often carry configuration and secrets.
    s3.put_object(Bucket=bucket, Key="bundle.zip", Body=b"bundle")
    arn = f"arn:aws:iam::{s3_server.account_id}:user/{unique('host')}"
    stranger = _client(s3_server, *_stored_key(s3_server, arn))
    for call in (
        lambda: stranger.get_object(Bucket=bucket, Key="bundle.zip"),
        lambda: stranger.list_objects_v2(Bucket=bucket),
        lambda: stranger.list_buckets(),
        lambda: stranger.put_object(Bucket=bucket, Key="bundle.zip", Body=b"replaced"),
        lambda: stranger.delete_object(Bucket=bucket, Key="bundle.zip"),
        lambda: stranger.create_bucket(Bucket=unique("nope")),
        lambda: stranger.delete_bucket(Bucket=bucket),
        lambda: stranger.create_multipart_upload(Bucket=bucket, Key="mp"),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert _code(error) == "AccessDenied"
        assert f"User: {arn} is not authorized to perform: s3:" in error.value.response["Error"]["Message"]
    assert s3.get_object(Bucket=bucket, Key="bundle.zip")["Body"].read() == b"bundle"

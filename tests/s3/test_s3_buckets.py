"""Buckets through boto3 and the aws CLI: create, head, list, delete, and the names S3 refuses."""

from __future__ import annotations

import httpx
import pytest
from botocore.exceptions import ClientError

from support.names import unique


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def test_create_head_list_delete(s3, s3_server):
    name = unique("life")
    created = s3.create_bucket(Bucket=name)
    assert created["Location"] == f"/{name}"
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == s3_server.region
    listed = {b["Name"]: b for b in s3.list_buckets()["Buckets"]}
    assert name in listed and listed[name]["CreationDate"].year >= 2024
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None  # us-east-1, as S3 reports it
    assert "Status" not in s3.get_bucket_versioning(Bucket=name)  # versioning never enabled

    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as error:
        s3.head_bucket(Bucket=name)
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert name not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_create_twice_is_bucket_already_owned_by_you(s3, bucket):
    # Decision: the one account owns every bucket, so a second create is always BucketAlreadyOwnedByYou
    # (S3's answer outside us-east-1), never a silent success.
    with pytest.raises(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)


def test_delete_refuses_a_bucket_with_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    with pytest.raises(ClientError) as error:
        s3.delete_bucket(Bucket=bucket)
    assert _code(error) == "BucketNotEmpty"
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"x"
    s3.delete_object(Bucket=bucket, Key="keep")
    s3.delete_bucket(Bucket=bucket)


def test_delete_discards_unfinished_multipart_uploads(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="half")["UploadId"]
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as error:
        s3.list_parts(Bucket=bucket, Key="half", UploadId=upload)
    assert _code(error) == "NoSuchUpload"


def test_missing_bucket(s3):
    missing = unique("missing")
    for call in (
        lambda: s3.list_objects_v2(Bucket=missing),
        lambda: s3.put_object(Bucket=missing, Key="k", Body=b"x"),
        lambda: s3.get_object(Bucket=missing, Key="k"),
        lambda: s3.delete_bucket(Bucket=missing),
        lambda: s3.create_multipart_upload(Bucket=missing, Key="k"),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert _code(error) == "NoSuchBucket"
        assert error.value.response["Error"]["BucketName"] == missing


@pytest.mark.parametrize(
    "name",
    ["ab", "a" * 64, "Upper-case", "under_score", "-starts-with-hyphen", "ends.", "two..dots", "192.168.1.1"],
)
def test_invalid_bucket_names(s3, name):
    with pytest.raises(ClientError) as error:
        s3.create_bucket(Bucket=name)
    assert _code(error) == "InvalidBucketName"


@pytest.mark.parametrize("reserved", ["health", "metrics", "console", "agent"])
def test_server_route_names_cannot_be_buckets(s3, s3_server, reserved):
    # Decision (the routing rule): /health, /metrics, /console and /agent/... are the server's own
    # routes, so those names are never buckets and the routes keep working. (Where one of the server's
    # routes answers the path itself, the refusal is its 405 rather than S3's InvalidBucketName.)
    with pytest.raises(ClientError) as error:
        s3.create_bucket(Bucket=reserved)
    assert _code(error) in ("InvalidBucketName", "405")
    assert reserved not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert httpx.get(f"{s3_server.endpoint}/health").json()["status"] == "ok"


def test_location_constraint_must_be_the_server_region(s3):
    name = unique("loc")
    with pytest.raises(ClientError) as error:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert _code(error) == "IllegalLocationConstraintException"
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)


def test_aws_cli_mb_ls_rb(s3_server):
    name = unique("cli")
    made = s3_server.aws("s3", "mb", f"s3://{name}")
    assert made.returncode == 0, made.stderr
    assert f"make_bucket: {name}" in made.stdout
    listed = s3_server.aws("s3", "ls")
    assert listed.returncode == 0 and name in listed.stdout.split()
    again = s3_server.aws("s3", "mb", f"s3://{name}")
    assert again.returncode != 0 and "BucketAlreadyOwnedByYou" in again.stderr
    removed = s3_server.aws("s3", "rb", f"s3://{name}")
    assert removed.returncode == 0, removed.stderr
    assert name not in s3_server.aws("s3", "ls").stdout.split()

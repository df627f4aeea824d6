"""Server-side copies: CopyObject and UploadPartCopy through boto3, and aws s3 cp / mv between locations."""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from support.names import unique

MIB = 1024 * 1024


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def test_copy_object_keeps_or_replaces_metadata(s3, bucket):
    other = unique("copy-to")
    s3.create_bucket(Bucket=other)
    data = b"revision bytes" * 1000
    s3.put_object(
        Bucket=bucket, Key="src.zip", Body=data, ContentType="application/zip", Metadata={"rev": "1"}
    )

    copied = s3.copy_object(Bucket=other, Key="dst.zip", CopySource={"Bucket": bucket, "Key": "src.zip"})
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=other, Key="dst.zip")
    assert got["Body"].read() == data
    assert (got["ContentType"], got["Metadata"]) == ("application/zip", {"rev": "1"})

    s3.copy_object(
        Bucket=bucket,
        Key="src.zip",
        CopySource=f"{bucket}/src.zip",
        MetadataDirective="REPLACE",
        ContentType="application/octet-stream",
        Metadata={"rev": "2"},
    )
    head = s3.head_object(Bucket=bucket, Key="src.zip")
    assert (head["ContentType"], head["Metadata"]) == ("application/octet-stream", {"rev": "2"})
    with pytest.raises(ClientError) as error:  # onto itself without changing anything
        s3.copy_object(Bucket=bucket, Key="src.zip", CopySource={"Bucket": bucket, "Key": "src.zip"})
    assert _code(error) == "InvalidRequest"


def test_copy_source_conditions_and_missing_source(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="cond-src", Body=b"x")["ETag"]
    source = {"Bucket": bucket, "Key": "cond-src"}
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=source, CopySourceIfMatch=etag)
    with pytest.raises(ClientError) as error:
        s3.copy_object(Bucket=bucket, Key="not-ok", CopySource=source, CopySourceIfNoneMatch=etag)
    assert _code(error) == "PreconditionFailed"
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "absent"})
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="not-ok")


def test_upload_part_copy_with_ranges(s3, bucket):
    data = os.urandom(6 * MIB)
    s3.put_object(Bucket=bucket, Key="source.bin", Body=data)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="assembled.bin")["UploadId"]
    parts = []
    for number, byte_range in ((1, f"bytes=0-{5 * MIB - 1}"), (2, f"bytes={5 * MIB}-{6 * MIB - 1}")):
        copied = s3.upload_part_copy(
            Bucket=bucket,
            Key="assembled.bin",
            UploadId=upload_id,
            PartNumber=number,
            CopySource={"Bucket": bucket, "Key": "source.bin"},
            CopySourceRange=byte_range,
        )
        parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="assembled.bin", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert s3.get_object(Bucket=bucket, Key="assembled.bin")["Body"].read() == data


def test_aws_s3_cp_and_mv_between_locations(s3_server, s3, bucket, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * MIB))  # over the CLI's threshold: copied with UploadPartCopy
    assert s3_server.aws("s3", "cp", str(big), f"s3://{bucket}/a/big.bin").returncode == 0
    copied = s3_server.aws("s3", "cp", f"s3://{bucket}/a/big.bin", f"s3://{bucket}/b/big.bin")
    assert copied.returncode == 0, copied.stderr
    moved = s3_server.aws("s3", "mv", f"s3://{bucket}/a/big.bin", f"s3://{bucket}/c/big.bin")
    assert moved.returncode == 0, moved.stderr
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["b/big.bin", "c/big.bin"]
    for key in keys:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == big.read_bytes()

"""Objects through boto3: put, get (ranges, parts, conditions), head, delete, ETags, checksums, metadata."""

from __future__ import annotations

import base64
import hashlib
import zlib

import httpx
import pytest
from botocore.exceptions import ClientError
from s3_requests import signed_headers


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_put_get_head_delete(s3, bucket):
    data = b"hello, bundle store\n" * 100
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/file.txt",
        Body=data,
        ContentType="text/plain",
        Metadata={"revision": "42", "owner": "team-a"},
        CacheControl="no-cache",
        ContentDisposition='attachment; filename="file.txt"',
    )
    assert put["ETag"] == f'"{_md5(data)}"'  # S3's ETag: the MD5 of the bytes, in quotes

    got = s3.get_object(Bucket=bucket, Key="dir/file.txt")
    assert got["Body"].read() == data
    assert got["ETag"] == put["ETag"]
    assert got["ContentLength"] == len(data)
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"revision": "42", "owner": "team-a"}
    assert got["CacheControl"] == "no-cache"
    assert got["ContentDisposition"] == 'attachment; filename="file.txt"'
    assert got["AcceptRanges"] == "bytes"

    head = s3.head_object(Bucket=bucket, Key="dir/file.txt")
    assert (head["ETag"], head["ContentLength"], head["ContentType"]) == (
        put["ETag"],
        len(data),
        "text/plain",
    )
    assert head["LastModified"] == got["LastModified"]

    s3.delete_object(Bucket=bucket, Key="dir/file.txt")
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="dir/file.txt")
    with pytest.raises(ClientError) as error:
        s3.head_object(Bucket=bucket, Key="dir/file.txt")
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    s3.delete_object(Bucket=bucket, Key="dir/file.txt")  # deleting what is not there succeeds, as in S3


def test_no_such_key_names_the_key(s3, bucket):
    with pytest.raises(s3.exceptions.NoSuchKey) as error:
        s3.get_object(Bucket=bucket, Key="nothing/here")
    assert error.value.response["Error"]["Key"] == "nothing/here"


def test_overwrite_replaces_and_default_content_type(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first")
    s3.put_object(Bucket=bucket, Key="k", Body=b"second version")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"second version"
    assert got["ContentType"] == "binary/octet-stream"  # S3's default


def test_empty_object(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert put["ETag"] == f'"{_md5(b"")}"'
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b"" and got["ContentLength"] == 0


@pytest.mark.parametrize(
    ("header", "expected", "content_range"),
    [
        ("bytes=0-9", b"0123456789", "bytes 0-9/36"),
        ("bytes=10-", b"abcdefghijklmnopqrstuvwxyz", "bytes 10-35/36"),
        ("bytes=-5", b"vwxyz", "bytes 31-35/36"),
        ("bytes=30-1000", b"uvwxyz", "bytes 30-35/36"),  # an end past the object is cut to its size
        ("bytes=-100", b"0123456789abcdefghijklmnopqrstuvwxyz", "bytes 0-35/36"),
    ],
)
def test_ranges(s3, bucket, header, expected, content_range):
    s3.put_object(Bucket=bucket, Key="alphabet", Body=b"0123456789abcdefghijklmnopqrstuvwxyz")
    got = s3.get_object(Bucket=bucket, Key="alphabet", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["Body"].read() == expected
    assert got["ContentRange"] == content_range
    assert got["ContentLength"] == len(expected)


def test_unsatisfiable_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key="short", Body=b"abc")
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=bucket, Key="short", Range="bytes=3-10")
    assert _code(error) == "InvalidRange"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    assert error.value.response["Error"]["ActualObjectSize"] == "3"


def test_malformed_range_is_ignored_like_s3(s3, bucket):
    s3.put_object(Bucket=bucket, Key="whole", Body=b"abcdef")
    got = s3.get_object(Bucket=bucket, Key="whole", Range="bytes=4-2")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200 and got["Body"].read() == b"abcdef"


def test_conditional_get(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="cond", Body=b"v1")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="cond", IfMatch=etag)["Body"].read() == b"v1"
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=bucket, Key="cond", IfMatch='"0123"')
    assert _code(error) == "PreconditionFailed"
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=bucket, Key="cond", IfNoneMatch=etag)
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304


def test_conditional_put_if_none_match(s3, bucket):
    s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as error:
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert _code(error) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"


def test_versions_other_than_null_do_not_exist(s3, bucket):
    # Decision: no versioning. The current object is version "null" (S3's id for unversioned objects);
    # any other version id is NoSuchVersion, and deleting one is a no-op.
    s3.put_object(Bucket=bucket, Key="v", Body=b"current")
    assert s3.get_object(Bucket=bucket, Key="v", VersionId="null")["Body"].read() == b"current"
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=bucket, Key="v", VersionId="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
    assert _code(error) == "NoSuchVersion"
    s3.delete_object(Bucket=bucket, Key="v", VersionId="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"current"


def test_content_md5_is_checked(s3, bucket):
    data = b"checked bytes"
    good = base64.b64encode(hashlib.md5(data).digest()).decode()
    s3.put_object(Bucket=bucket, Key="md5-ok", Body=data, ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as error:
        s3.put_object(Bucket=bucket, Key="md5-bad", Body=data, ContentMD5=bad)
    assert _code(error) == "BadDigest"
    with pytest.raises(ClientError) as error:
        s3.put_object(Bucket=bucket, Key="md5-bad", Body=data, ContentMD5="not base64!")
    assert _code(error) == "InvalidDigest"
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="md5-bad")


def test_checksums_are_verified_stored_and_returned(s3, bucket):
    data = b"with a checksum"
    crc32 = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    put = s3.put_object(Bucket=bucket, Key="crc", Body=data)  # botocore adds CRC32 by default
    assert put["ChecksumCRC32"] == crc32
    got = s3.get_object(Bucket=bucket, Key="crc", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc32 and got["Body"].read() == data  # botocore validated it
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    put = s3.put_object(Bucket=bucket, Key="sha", Body=data, ChecksumSHA256=sha)
    assert s3.head_object(Bucket=bucket, Key="sha", ChecksumMode="ENABLED")["ChecksumSHA256"] == sha

    wrong = base64.b64encode(zlib.crc32(b"else").to_bytes(4, "big")).decode()
    with pytest.raises(ClientError) as error:
        s3.put_object(Bucket=bucket, Key="crc-bad", Body=data, ChecksumCRC32=wrong)
    assert _code(error) == "BadDigest"
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="crc-bad")


def test_range_reads_carry_no_whole_object_checksum(s3, bucket):
    s3.put_object(Bucket=bucket, Key="crc-range", Body=b"0123456789")
    got = s3.get_object(Bucket=bucket, Key="crc-range", Range="bytes=2-3", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"23" and "ChecksumCRC32" not in got


def test_part_number_of_a_single_part_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="one-part", Body=b"abc")
    got = s3.get_object(Bucket=bucket, Key="one-part", PartNumber=1)
    assert got["Body"].read() == b"abc" and got["PartsCount"] == 1
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=bucket, Key="one-part", PartNumber=2)
    assert _code(error) == "InvalidPartNumber"


def test_delete_objects(s3, bucket):
    for key in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "zz"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["a", "b", "zz"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["c"]


def test_presigned_urls(s3_server, bucket):
    for signature_version in ("s3v4", None):  # None: the profile's default, SigV2 query auth in us-east-1
        config = {"signature_version": signature_version} if signature_version else {}
        client = s3_server.client("s3", **config)
        client.put_object(Bucket=bucket, Key="shared.txt", Body=b"for sharing")
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared.txt"})
        response = httpx.get(url)
        assert response.status_code == 200 and response.content == b"for sharing", url
        tampered = url.replace("shared.txt", "other.txt")
        assert httpx.get(tampered).status_code == 403
        put_url = client.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": "uploaded.txt"}, ExpiresIn=60
        )
        assert httpx.put(put_url, content=b"via presigned PUT").status_code == 200
        assert client.get_object(Bucket=bucket, Key="uploaded.txt")["Body"].read() == b"via presigned PUT"


def test_aws_s3_presign(s3_server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="presign-me", Body=b"cli presigned")
    result = s3_server.aws("s3", "presign", f"s3://{bucket}/presign-me", "--expires-in", "60")
    assert result.returncode == 0, result.stderr
    assert httpx.get(result.stdout.strip()).content == b"cli presigned"


def test_delete_objects_body_must_match_its_checksum(s3_server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep-me", Body=b"x")
    body = b"<Delete><Object><Key>keep-me</Key></Object></Delete>"
    wrong = base64.b64encode(hashlib.md5(b"another body").digest()).decode()
    headers, _ = signed_headers(s3_server, "POST", f"/{bucket}?delete", body, headers={"Content-MD5": wrong})
    response = httpx.post(f"{s3_server.endpoint}/{bucket}?delete", headers=headers, content=body)
    assert response.status_code == 400 and "<Code>BadDigest</Code>" in response.text
    assert s3.get_object(Bucket=bucket, Key="keep-me")["Body"].read() == b"x"

"""Multipart uploads through boto3 and the aws CLI: ETags, part rules, checksums, abort, list."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import pytest
from botocore.exceptions import ClientError

MIB = 1024 * 1024


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def _multipart_etag(parts: list[bytes]) -> str:
    """S3's multipart ETag: MD5 of the parts' binary MD5s, then '-' and the number of parts."""
    joined = b"".join(hashlib.md5(part).digest() for part in parts)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(parts)}"'


def test_upload_complete_and_read_back(s3, bucket):
    parts_data = [os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail of the object"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big/object.bin", ContentType="application/zip")
    upload_id = upload["UploadId"]
    assert upload["Key"] == "big/object.bin"
    parts = []
    for number, data in enumerate(parts_data, start=1):
        sent = s3.upload_part(
            Bucket=bucket, Key="big/object.bin", UploadId=upload_id, PartNumber=number, Body=data
        )
        assert sent["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    listed = s3.list_parts(Bucket=bucket, Key="big/object.bin", UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed["Parts"]] == [
        (n, len(d), parts[n - 1]["ETag"]) for n, d in enumerate(parts_data, start=1)
    ]
    in_progress = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in in_progress] == [("big/object.bin", upload_id)]
    with pytest.raises(s3.exceptions.NoSuchKey):  # not visible before it is completed
        s3.get_object(Bucket=bucket, Key="big/object.bin")

    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="big/object.bin", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    expected_etag = _multipart_etag(parts_data)
    assert done["ETag"] == expected_etag
    got = s3.get_object(Bucket=bucket, Key="big/object.bin")
    assert got["Body"].read() == b"".join(parts_data)
    assert got["ETag"] == expected_etag and got["ContentType"] == "application/zip"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    # Ranges across a part boundary, and a part by number.
    boundary = s3.get_object(Bucket=bucket, Key="big/object.bin", Range=f"bytes={5 * MIB - 3}-{5 * MIB + 2}")
    assert boundary["Body"].read() == parts_data[0][-3:] + parts_data[1][:3]
    second = s3.get_object(Bucket=bucket, Key="big/object.bin", PartNumber=2)
    assert second["Body"].read() == parts_data[1] and second["PartsCount"] == 3

    with pytest.raises(ClientError) as error:  # the upload is over
        s3.list_parts(Bucket=bucket, Key="big/object.bin", UploadId=upload_id)
    assert _code(error) == "NoSuchUpload"


def test_reuploading_a_part_replaces_it_and_a_subset_may_be_completed(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="subset")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="subset", UploadId=upload_id, PartNumber=1, Body=b"old")
    first = s3.upload_part(Bucket=bucket, Key="subset", UploadId=upload_id, PartNumber=1, Body=b"new")
    s3.upload_part(Bucket=bucket, Key="subset", UploadId=upload_id, PartNumber=7, Body=b"unused")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="subset",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": first["ETag"]}]},
    )
    assert s3.get_object(Bucket=bucket, Key="subset")["Body"].read() == b"new"


def test_part_rules(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="rules")["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key="rules", UploadId=upload_id, PartNumber=1, Body=b"too small")
    last = s3.upload_part(Bucket=bucket, Key="rules", UploadId=upload_id, PartNumber=2, Body=b"last")

    def complete(parts: list[dict[str, object]]) -> None:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="rules", UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    with pytest.raises(ClientError) as error:  # every part but the last must be at least 5 MiB
        complete([{"PartNumber": 1, "ETag": small["ETag"]}, {"PartNumber": 2, "ETag": last["ETag"]}])
    assert _code(error) == "EntityTooSmall"
    with pytest.raises(ClientError) as error:
        complete([{"PartNumber": 2, "ETag": last["ETag"]}, {"PartNumber": 1, "ETag": small["ETag"]}])
    assert _code(error) == "InvalidPartOrder"
    with pytest.raises(ClientError) as error:
        complete([{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}])
    assert _code(error) == "InvalidPart"
    with pytest.raises(ClientError) as error:
        complete([{"PartNumber": 3, "ETag": last["ETag"]}])
    assert _code(error) == "InvalidPart"
    with pytest.raises(ClientError) as error:
        s3.upload_part(Bucket=bucket, Key="rules", UploadId=upload_id, PartNumber=10001, Body=b"x")
    assert _code(error) == "InvalidArgument"
    with pytest.raises(ClientError) as error:
        s3.upload_part(Bucket=bucket, Key="other-key", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert _code(error) == "NoSuchUpload"
    # None of the failures ended the upload or made an object.
    assert len(s3.list_parts(Bucket=bucket, Key="rules", UploadId=upload_id)["Parts"]) == 2
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="rules")


def test_abort(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="aborted", UploadId=upload_id, PartNumber=1, Body=b"data")
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=upload_id)
    for call in (
        lambda: s3.list_parts(Bucket=bucket, Key="aborted", UploadId=upload_id),
        lambda: s3.upload_part(Bucket=bucket, Key="aborted", UploadId=upload_id, PartNumber=2, Body=b"x"),
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=upload_id),
        lambda: s3.complete_multipart_upload(
            Bucket=bucket,
            Key="aborted",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]},
        ),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert _code(error) == "NoSuchUpload"
    with pytest.raises(ClientError) as error:
        s3.list_parts(Bucket=bucket, Key="aborted", UploadId="../../../etc")
    assert _code(error) == "NoSuchUpload"


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_composite_checksum(s3, bucket):
    parts_data = [os.urandom(5 * MIB), b"end"]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="crc", ChecksumAlgorithm="CRC32")["UploadId"]
    parts = []
    for number, data in enumerate(parts_data, start=1):
        sent = s3.upload_part(
            Bucket=bucket,
            Key="crc",
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="CRC32",
        )
        crc = _b64(zlib.crc32(data).to_bytes(4, "big"))
        assert sent["ChecksumCRC32"] == crc
        parts.append({"PartNumber": number, "ETag": sent["ETag"], "ChecksumCRC32": crc})
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="crc", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    # COMPOSITE: the CRC32 of the parts' CRC32s, then -N (botocore does not validate these on GET).
    joined = b"".join(base64.b64decode(p["ChecksumCRC32"]) for p in parts)
    assert done["ChecksumCRC32"] == f"{_b64(zlib.crc32(joined).to_bytes(4, 'big'))}-2"
    assert done["ChecksumType"] == "COMPOSITE"
    head = s3.head_object(Bucket=bucket, Key="crc", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == done["ChecksumCRC32"]


def test_full_object_checksum_is_checked_before_the_object_appears(s3, bucket):
    data = [os.urandom(5 * MIB), b"rest"]
    whole = _b64(zlib.crc32(b"".join(data)).to_bytes(4, "big"))
    for expected, succeeds in ((_b64(b"\0\0\0\0"), False), (whole, True)):
        upload_id = s3.create_multipart_upload(
            Bucket=bucket, Key="full", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
        )["UploadId"]
        parts = [
            {
                "PartNumber": n,
                "ETag": s3.upload_part(Bucket=bucket, Key="full", UploadId=upload_id, PartNumber=n, Body=d)[
                    "ETag"
                ],
            }
            for n, d in enumerate(data, start=1)
        ]
        complete = {
            "Bucket": bucket,
            "Key": "full",
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": parts},
            "ChecksumCRC32": expected,
            "ChecksumType": "FULL_OBJECT",
        }
        if succeeds:
            assert s3.complete_multipart_upload(**complete)["ChecksumCRC32"] == whole
            got = s3.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
            assert got["Body"].read() == b"".join(data)  # botocore validated the full-object CRC32
        else:
            with pytest.raises(ClientError) as error:
                s3.complete_multipart_upload(**complete)
            assert _code(error) == "BadDigest"
            with pytest.raises(s3.exceptions.NoSuchKey):
                s3.get_object(Bucket=bucket, Key="full")
            s3.abort_multipart_upload(Bucket=bucket, Key="full", UploadId=upload_id)


def test_aws_s3_cp_up_and_down_multipart(s3_server, s3, bucket, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(9 * MIB))  # over the CLI's 8 MiB multipart threshold
    up = s3_server.aws("s3", "cp", str(source), f"s3://{bucket}/cli/big.bin")
    assert up.returncode == 0, up.stderr
    head = s3.head_object(Bucket=bucket, Key="cli/big.bin")
    assert head["ContentLength"] == 9 * MIB and head["ETag"].endswith('-2"')  # 8 MiB + 1 MiB parts
    target = tmp_path / "down.bin"
    down = s3_server.aws("s3", "cp", f"s3://{bucket}/cli/big.bin", str(target))
    assert down.returncode == 0, down.stderr
    assert target.read_bytes() == source.read_bytes()

    small = tmp_path / "small.txt"
    small.write_text("small file\n")
    assert s3_server.aws("s3", "cp", str(small), f"s3://{bucket}/cli/small.txt").returncode == 0
    assert s3.get_object(Bucket=bucket, Key="cli/small.txt")["Body"].read() == b"small file\n"

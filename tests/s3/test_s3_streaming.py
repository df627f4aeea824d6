"""Streaming (aws-chunked) uploads as SDKs send them: botocore's unsigned payload with a trailing
checksum (what it sends over TLS), and signed chunks with and without a signed trailer."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from typing import Any

import pytest
from s3_requests import aws_chunked_put

MIB = 1024 * 1024


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _trailer_client(s3_server: Any, seen: list[dict[str, str]]) -> Any:
    """A boto3 client that sends checksums in a trailer, as botocore does over https.

    botocore chooses the trailer only for https endpoints; this moves the decision it has already
    made to "trailer", so the request is exactly what it sends over TLS, and records its headers.
    """
    client = s3_server.client("s3", signature_version="s3v4")

    def use_trailer(params: dict[str, Any], **_: Any) -> None:
        algorithm = params["context"].get("checksum", {}).get("request_algorithm")
        if isinstance(algorithm, dict):
            algorithm["in"] = "trailer"

    def record(request: Any, **_: Any) -> None:
        seen.append({k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})

    client.meta.events.register("before-call.s3.PutObject", use_trailer)
    client.meta.events.register("before-call.s3.UploadPart", use_trailer)
    client.meta.events.register("before-send.s3", record)
    return client


def test_botocore_unsigned_payload_with_trailing_checksum(s3_server, s3, bucket):
    seen: list[dict[str, str]] = []
    client = _trailer_client(s3_server, seen)
    data = os.urandom(3 * MIB + 17)  # several 1 MiB chunks and a short one
    put = client.put_object(Bucket=bucket, Key="trailer", Body=data)
    assert seen[-1]["X-Amz-Content-SHA256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert seen[-1]["X-Amz-Trailer"] == "x-amz-checksum-crc32"
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"' and put["ChecksumCRC32"] == _crc32(data)
    got = s3.get_object(Bucket=bucket, Key="trailer", ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got["ChecksumCRC32"] == _crc32(data)
    assert "aws-chunked" not in got.get("ContentEncoding", "")  # it described the transfer, not the object


def test_botocore_upload_part_with_trailing_checksum(s3_server, s3, bucket):
    client = _trailer_client(s3_server, [])
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="mp-trailer")["UploadId"]
    data = [os.urandom(5 * MIB), b"last"]
    parts = [
        {
            "PartNumber": n,
            "ETag": client.upload_part(
                Bucket=bucket, Key="mp-trailer", UploadId=upload_id, PartNumber=n, Body=d
            )["ETag"],
        }
        for n, d in enumerate(data, start=1)
    ]
    client.complete_multipart_upload(
        Bucket=bucket, Key="mp-trailer", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert s3.get_object(Bucket=bucket, Key="mp-trailer")["Body"].read() == b"".join(data)


def test_signed_chunks(s3_server, s3, bucket):
    chunks = [os.urandom(64 * 1024), os.urandom(64 * 1024), b"short end"]
    response = aws_chunked_put(s3_server, f"/{bucket}/signed-chunks", chunks)
    assert response.status_code == 200, response.text
    data = b"".join(chunks)
    assert response.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="signed-chunks")["Body"].read() == data


def test_signed_chunks_with_signed_trailer(s3_server, s3, bucket):
    chunks = [os.urandom(100_000), b"end"]
    data = b"".join(chunks)
    response = aws_chunked_put(
        s3_server, f"/{bucket}/signed-trailer", chunks, trailer=("x-amz-checksum-crc32", _crc32(data))
    )
    assert response.status_code == 200, response.text
    assert s3.head_object(Bucket=bucket, Key="signed-trailer", ChecksumMode="ENABLED")[
        "ChecksumCRC32"
    ] == _crc32(data)


@pytest.mark.parametrize("corrupt", [0, 2])  # a data chunk, and the final empty chunk
def test_a_wrong_chunk_signature_stores_nothing(s3_server, s3, bucket, corrupt):
    response = aws_chunked_put(
        s3_server, f"/{bucket}/forged", [b"a" * 1000, b"b" * 10], corrupt_chunk=corrupt
    )
    assert response.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in response.text
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="forged")


def test_a_wrong_trailing_checksum_stores_nothing(s3_server, s3, bucket):
    response = aws_chunked_put(
        s3_server, f"/{bucket}/bad-trailer", [b"payload"], trailer=("x-amz-checksum-crc32", _crc32(b"other"))
    )
    assert response.status_code == 400 and "<Code>BadDigest</Code>" in response.text
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="bad-trailer")

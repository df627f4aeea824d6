"""Keys S3 allows are stored faithfully; hostile keys cannot reach outside the bundle store."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError
from s3_requests import signed_headers

HOSTILE_KEYS = [
    "../../escape.txt",
    "../../../../../../tmp/escape.txt",
    "/absolute/etc/passwd",
    "a/../../b",
    "..",
    ".",
    "..\\..\\windows.txt",
    "//double//slashes//",
    "trailing/",
    " leading and trailing spaces ",
    "x" * 1024,  # the longest key S3 allows
    "é" * 512,  # 1024 bytes of UTF-8
]


def _files(root: Path) -> set[Path]:
    return {Path(dirpath, name) for dirpath, _, names in os.walk(root) for name in names}


def test_hostile_keys_stay_inside_the_store(s3_server, s3, bucket):
    outside_before = {p for p in _files(s3_server.workdir) if "bundle-store" not in p.parts}
    for key in HOSTILE_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    for key in HOSTILE_KEYS:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode(), key
    listed = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    assert sorted(listed) == sorted(HOSTILE_KEYS)

    # Nothing appeared anywhere but the store (the database and log may have grown, not multiplied),
    # and inside it every object file is named by a hash, never by the key.
    outside_after = {p for p in _files(s3_server.workdir) if "bundle-store" not in p.parts}
    assert {p.name for p in outside_after - outside_before} <= {"opendeploy.db-journal"}
    assert not Path("/tmp/escape.txt").exists()
    objects = s3_server.data_dir / "bundle-store" / "buckets" / bucket / "objects"
    names = [p.name for p in _files(objects)]
    assert len(names) == len(HOSTILE_KEYS)
    assert all(len(name) == 64 and set(name) <= set("0123456789abcdef") for name in names)
    for key in HOSTILE_KEYS:
        s3.delete_object(Bucket=bucket, Key=key)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("nul\x00byte", "InvalidArgument"),  # XML 1.0 cannot carry it: no S3 listing could name it
        ("bell\x07", "InvalidArgument"),
        ("y" * 1025, "KeyTooLongError"),
        ("é" * 513, "KeyTooLongError"),
    ],
)
def test_keys_s3_cannot_hold_are_refused(s3, bucket, key, code):
    with pytest.raises(ClientError) as error:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert error.value.response["Error"]["Code"] == code
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


@pytest.mark.parametrize("raw_bucket", ["..%2F..%2Fetc", "%2E%2E", "%2Fetc", "bucket%00"])
def test_hostile_bucket_names_are_refused(s3_server, raw_bucket):
    # Bucket names become directory names only after S3's naming rules have accepted them.
    path = f"/{raw_bucket}/passwd"
    headers, _ = signed_headers(s3_server, "GET", path)
    response = httpx.get(f"{s3_server.endpoint}{path}", headers=headers)
    assert response.status_code == 400, response.text
    assert "<Code>InvalidBucketName</Code>" in response.text

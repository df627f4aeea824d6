"""ListObjectsV2 and ListObjects: prefixes, delimiters, paging, max-keys, encoded keys; aws s3 ls."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

KEYS = [
    "README",
    "app/appspec.yml",
    "app/scripts/start.sh",
    "app/scripts/stop.sh",
    "app/web/index.html",
    "bundles/v1.zip",
    "bundles/v2.zip",
    "bundles/v10.zip",
    "logs/2024/01/a.log",
]


@pytest.fixture
def filled(s3, bucket):
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return bucket


def test_lists_everything_in_utf8_order(s3, filled):
    listed = s3.list_objects_v2(Bucket=filled)
    assert [o["Key"] for o in listed["Contents"]] == sorted(KEYS)
    assert listed["KeyCount"] == len(KEYS) and listed["IsTruncated"] is False
    sizes = {o["Key"]: o["Size"] for o in listed["Contents"]}
    assert sizes["README"] == len("README")
    assert all(o["StorageClass"] == "STANDARD" and o["ETag"].startswith('"') for o in listed["Contents"])


def test_prefix_and_delimiter(s3, filled):
    top = s3.list_objects_v2(Bucket=filled, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["README"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["app/", "bundles/", "logs/"]
    assert top["KeyCount"] == 4

    app = s3.list_objects_v2(Bucket=filled, Prefix="app/", Delimiter="/")
    assert [o["Key"] for o in app["Contents"]] == ["app/appspec.yml"]
    assert [p["Prefix"] for p in app["CommonPrefixes"]] == ["app/scripts/", "app/web/"]

    bundles = s3.list_objects_v2(Bucket=filled, Prefix="bundles/v1")
    assert [o["Key"] for o in bundles["Contents"]] == ["bundles/v1.zip", "bundles/v10.zip"]
    assert "Contents" not in s3.list_objects_v2(Bucket=filled, Prefix="nothing/")


def test_pages_with_continuation_tokens(s3, filled):
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(Bucket=filled, PaginationConfig={"PageSize": 2})
    )
    assert len(pages) == 5
    assert all(page["MaxKeys"] == 2 for page in pages)
    assert [page["IsTruncated"] for page in pages] == [True] * 4 + [False]
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == sorted(KEYS)


def test_pages_count_common_prefixes(s3, filled):
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=filled, Delimiter="/", PaginationConfig={"PageSize": 2}
        )
    )
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
    assert keys == ["README"] and prefixes == ["app/", "bundles/", "logs/"]
    assert len(pages) == 2


def test_start_after_and_max_keys(s3, filled):
    listed = s3.list_objects_v2(Bucket=filled, StartAfter="app/web/index.html", MaxKeys=3)
    assert [o["Key"] for o in listed["Contents"]] == ["bundles/v1.zip", "bundles/v10.zip", "bundles/v2.zip"]
    assert listed["IsTruncated"] is True and listed["StartAfter"] == "app/web/index.html"
    none = s3.list_objects_v2(Bucket=filled, MaxKeys=0)
    assert "Contents" not in none and none["IsTruncated"] is False


def test_bad_continuation_token_and_max_keys(s3, bucket):
    with pytest.raises(ClientError) as error:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="***")
    assert error.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(ClientError) as error:
        s3.list_objects_v2(Bucket=bucket, MaxKeys=-1)
    assert error.value.response["Error"]["Code"] == "InvalidArgument"


def test_list_objects_v1_marker_and_next_marker(s3, filled):
    pages = list(s3.get_paginator("list_objects").paginate(Bucket=filled, PaginationConfig={"PageSize": 4}))
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == sorted(KEYS)
    first = s3.list_objects(Bucket=filled, Delimiter="/", MaxKeys=2)
    assert first["IsTruncated"] is True and first["NextMarker"] == "app/"
    rest = s3.list_objects(Bucket=filled, Delimiter="/", Marker=first["NextMarker"])
    assert [p["Prefix"] for p in rest["CommonPrefixes"]] == ["bundles/", "logs/"]
    assert all("Owner" in o for o in first.get("Contents", []) + rest.get("Contents", []))


def test_keys_needing_url_encoding_round_trip(s3, bucket):
    odd = [
        "a b/c+d.txt",
        "percent%20literal",
        "ümlaut/日本語.zip",
        "question?mark",
        "hash#tag",
        "amp&eq=",
        "tilde~",
    ]
    for key in odd:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    # botocore asks for encoding-type=url and decodes; the keys must come back exactly.
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed, key=lambda k: k.encode()) == listed
    assert set(listed) == set(odd)
    for key in odd:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()


def test_aws_s3_ls(s3_server, filled):
    result = s3_server.aws("s3", "ls", f"s3://{filled}/")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.strip() == "PRE app/" for line in lines)
    assert any(line.endswith(" README") for line in lines)
    recursive = s3_server.aws("s3", "ls", "--recursive", f"s3://{filled}/app/")
    assert [line.split()[-1] for line in recursive.stdout.splitlines()] == [
        k for k in KEYS if k.startswith("app/")
    ]

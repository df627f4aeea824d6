"""``opendeploy push``: aws deploy push's flags, zip/tar/tgz bundles, multipart, and early, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from push_helpers import bundle_names, get_revision

from opendeploy.cli.push import S3Location, parse_s3_location
from support.server import ServerProcess


def opendeploy_push(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opendeploy", "push", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _hint_location(stdout: str) -> dict[str, str]:
    line = next(line for line in stdout.splitlines() if line.startswith("aws deploy create-deployment"))
    value = line.split("--s3-location ", 1)[1].split(" ", 1)[0]
    return dict(item.split("=", 1) for item in value.split(","))


@pytest.mark.parametrize(
    ("key", "bundle_type"),
    [("app.zip", "zip"), ("app.tar", "tar"), ("app.tgz", "tgz"), ("app.tar.gz", "tgz")],
)
def test_push_registers_each_bundle_type(push_server, application, bucket, source, key, bundle_type):
    (source / "scripts" / "link-to-start.sh").symlink_to("application-start.sh")
    result = opendeploy_push(
        push_server,
        "--application-name",
        application,
        "--s3-location",
        f"s3://{bucket}/{key}",
        "--source",
        str(source),
        "--description",
        f"{bundle_type} bundle",
    )
    assert result.returncode == 0, result.stderr
    location = _hint_location(result.stdout)
    s3 = push_server.client("s3")
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    assert location == {"bucket": bucket, "key": key, "bundleType": bundle_type, "eTag": etag}
    assert f"--application-name {application} " in result.stdout

    shown = get_revision(push_server, application, location)
    assert shown["revision"]["s3Location"] == location
    assert shown["revisionInfo"]["description"] == f"{bundle_type} bundle"

    names = bundle_names(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), bundle_type)
    assert {"appspec.yml", "install.txt", "scripts/application-start.sh", ".git-note"} <= names
    assert "scripts/link-to-start.sh" in names  # zip: the target's content; tar: the link itself


def test_ignore_hidden_files_and_default_description(push_server, application, bucket, source):
    result = opendeploy_push(
        push_server,
        "--application-name",
        application,
        "--s3-location",
        f"s3://{bucket}/visible.zip",
        "--source",
        str(source),
        "--ignore-hidden-files",
    )
    assert result.returncode == 0, result.stderr
    location = _hint_location(result.stdout)
    names = bundle_names(
        push_server.client("s3").get_object(Bucket=bucket, Key="visible.zip")["Body"].read(), "zip"
    )
    assert "appspec.yml" in names and not any(part.startswith(".") for n in names for part in n.split("/"))
    description = get_revision(push_server, application, location)["revisionInfo"]["description"]
    assert description.startswith("Uploaded by opendeploy push ")


def test_large_bundles_are_uploaded_in_parts(push_server, application, bucket, source):
    (source / "payload.bin").write_bytes(os.urandom(9 * 1024 * 1024))
    result = opendeploy_push(
        push_server,
        "--application-name",
        application,
        "--s3-location",
        f"s3://{bucket}/big.tgz",
        "--source",
        str(source),
    )
    assert result.returncode == 0, result.stderr
    location = _hint_location(result.stdout)
    assert location["eTag"].endswith("-2") and location["bundleType"] == "tgz"
    assert (
        get_revision(push_server, application, location)["revision"]["s3Location"]["eTag"] == location["eTag"]
    )
    assert push_server.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def _nothing_uploaded(server: ServerProcess, bucket: str) -> bool:
    return "Contents" not in server.client("s3").list_objects_v2(Bucket=bucket)


def test_refuses_early_and_uploads_nothing(push_server, application, bucket, source, tmp_path):
    cases: list[tuple[list[str], str]] = []
    empty = tmp_path / "empty"
    empty.mkdir()
    cases.append((["--source", str(empty)], "appspec.yml was not found"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "appspec.yml").write_text("version: 0.0\nos: plan9\n")
    cases.append((["--source", str(broken)], "is not a valid AppSpec file"))
    cases.append(
        (
            ["--source", str(source), "--application-name", "no-such-application"],
            "ApplicationDoesNotExistException",
        )
    )
    for extra, message in cases:
        args = ["--application-name", application, "--s3-location", f"s3://{bucket}/x.zip", *extra]
        result = opendeploy_push(push_server, *args)
        assert result.returncode != 0
        assert message in result.stderr, result.stderr
        assert _nothing_uploaded(push_server, bucket)


def test_usage_errors(push_server, application, source):
    result = opendeploy_push(
        push_server, "--application-name", application, "--s3-location", "bucket/key.zip"
    )
    assert result.returncode == 2 and "s3://<bucket>/<key>" in result.stderr
    missing_bucket = opendeploy_push(
        push_server,
        "--application-name",
        application,
        "--s3-location",
        "s3://no-such-bucket-here/app.zip",
        "--source",
        str(source),
    )
    assert missing_bucket.returncode == 1 and "NoSuchBucket" in missing_bucket.stderr


@pytest.mark.parametrize("value", ["bucket/key.zip", "s3://bucket-only", "s3:///key.zip", "s3://bucket/"])
def test_s3_location_must_name_bucket_and_key(value):
    with pytest.raises(click.BadParameter, match="s3://<bucket>/<key>"):
        parse_s3_location(value)


@pytest.mark.parametrize(
    ("key", "bundle_type"),
    [
        ("a.zip", "zip"),
        ("a", "zip"),
        ("a.TAR", "tar"),
        ("a.tgz", "tgz"),
        ("dir/a.tar.gz", "tgz"),
        ("a.gz", "zip"),
    ],
)
def test_bundle_type_follows_the_key(key, bundle_type):
    assert S3Location("b", key).bundle_type == bundle_type


def test_profile_must_exist(push_server, application, source, tmp_path: Path):
    result = opendeploy_push(
        push_server,
        "--profile",
        "not-a-profile",
        "--application-name",
        application,
        "--s3-location",
        "s3://b/k.zip",
        "--source",
        str(source),
    )
    assert result.returncode == 1 and "opendeploy init" in result.stderr


def test_default_profile_is_the_one_init_writes():
    from opendeploy.cli import init, push

    assert push.DEFAULT_PROFILE == init.DEFAULT_PROFILE

"""``aws deploy push`` (the AWS CLI, unchanged) against the server: upload, register, the hint."""

from __future__ import annotations

import os
import re

from push_helpers import bundle_names, get_revision


def test_aws_deploy_push_uploads_and_registers(push_server, application, bucket, source):
    result = push_server.aws(
        "deploy",
        "push",
        "--application-name",
        application,
        "--s3-location",
        f"s3://{bucket}/sample/app.zip",
        "--source",
        str(source),
        "--description",
        "pushed by the aws CLI",
    )
    assert result.returncode == 0, result.stderr
    head = push_server.client("s3").head_object(Bucket=bucket, Key="sample/app.zip")
    etag = head["ETag"].strip('"')
    assert re.search(
        rf"aws deploy create-deployment --application-name {application} "
        rf"--s3-location bucket={bucket},key=sample/app.zip,bundleType=zip,eTag={etag} ",
        result.stdout,
    ), result.stdout

    shown = push_server.aws_json(
        "deploy",
        "get-application-revision",
        "--application-name",
        application,
        "--s3-location",
        f"bucket={bucket},key=sample/app.zip,bundleType=zip,eTag={etag}",
    )
    assert shown["revision"]["s3Location"]["eTag"] == etag
    assert shown["revisionInfo"]["description"] == "pushed by the aws CLI"
    listed = push_server.aws_json("deploy", "list-application-revisions", "--application-name", application)
    assert [r["s3Location"]["key"] for r in listed["revisions"]] == ["sample/app.zip"]

    body = push_server.client("s3").get_object(Bucket=bucket, Key="sample/app.zip")["Body"].read()
    assert {"appspec.yml", "install.txt", "scripts/before-install.sh", ".git-note"} <= bundle_names(
        body, "zip"
    )


def test_aws_deploy_push_of_a_multipart_sized_bundle(push_server, application, bucket, source):
    (source / "large.bin").write_bytes(os.urandom(7 * 1024 * 1024))  # over the CLI's 6 MiB part limit
    result = push_server.aws(
        "deploy",
        "push",
        "--application-name",
        application,
        "--s3-location",
        f"s3://{bucket}/large.zip",
        "--source",
        str(source),
        "--ignore-hidden-files",
    )
    assert result.returncode == 0, result.stderr
    etag = push_server.client("s3").head_object(Bucket=bucket, Key="large.zip")["ETag"].strip('"')
    assert etag.endswith("-2")
    revision = get_revision(
        push_server, application, {"bucket": bucket, "key": "large.zip", "bundleType": "zip", "eTag": etag}
    )
    assert revision["revision"]["s3Location"]["eTag"] == etag
    body = push_server.client("s3").get_object(Bucket=bucket, Key="large.zip")["Body"].read()
    names = bundle_names(body, "zip")
    assert "large.bin" in names and not any(name.startswith(".") for name in names)

"""DownloadBundle of ``s3Location`` revisions from the server's own bundle store, through its S3 API,
signed with an instance's own key: tgz, tar and zip bundles unpack; the revision's ETag and version are
honoured with AWS's messages; a missing object and a hostile archive fail cleanly, leaving no archive.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opendeploy.agent.agent_config import AgentConfig
from opendeploy.agent.bundle import register_fetcher
from opendeploy.agent.command_executor import execute_command
from opendeploy.agent.deployment_specification import RevisionType, parse_deployment_specification
from opendeploy.agent.onpremises_config import InstanceIdentity
from opendeploy.agent.s3_bundle_source import S3BundleSource, create_s3_client
from support.names import unique
from support.server import ServerProcess

APPSPEC = b"version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /tmp/unused\n"


def tar_bundle(compression: str = "", extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as archive:
        for name, data in {
            "appspec.yml": APPSPEC,
            "app/index.html": b"<h1>hi</h1>\n",
            **(extra or {}),
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_bundle() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", APPSPEC)
        archive.writestr("app/index.html", b"<h1>hi</h1>\n")
    return buffer.getvalue()


@pytest.fixture
def store(
    module_server: ServerProcess, bucket_reader: Callable[..., tuple[str, str, str]]
) -> tuple[ServerProcess, Any, str]:
    """A server, its admin S3 client with a bucket, and S3 downloads signed with an instance's key."""
    server = module_server
    s3 = server.client("s3")
    bucket = unique("bundles").lower()
    s3.create_bucket(Bucket=bucket)
    name = unique("instance")
    user_arn, key_id, secret = bucket_reader(server, name, bucket)
    server.client("codedeploy").register_on_premises_instance(instanceName=name, iamUserArn=user_arn)
    identity = InstanceIdentity(user_arn, server.region, key_id, secret)
    register_fetcher(RevisionType.S3, S3BundleSource(create_s3_client(identity, server.endpoint)).fetch)
    return server, s3, bucket


def s3_spec(deployment_id: str, bucket: str, key: str, bundle_type: str, **revision: str) -> Any:
    return parse_deployment_specification(
        {
            "DeploymentId": deployment_id,
            "DeploymentGroupId": "dg-s3",
            "DeploymentGroupName": "S3Group",
            "ApplicationName": "S3App",
            "Revision": {
                "RevisionType": "S3",
                "S3Revision": {"Bucket": bucket, "Key": key, "BundleType": bundle_type, **revision},
            },
        }
    )


def archive_of(tmp_path: Path, deployment_id: str) -> Path:
    return tmp_path / "root" / "dg-s3" / deployment_id / "deployment-archive"


@pytest.mark.parametrize(
    ("bundle_type", "make"), [("tgz", lambda: tar_bundle("gz")), ("tar", tar_bundle), ("zip", zip_bundle)]
)
def test_bundles_of_each_type_download_with_their_etag(
    tmp_path: Path, store: tuple[ServerProcess, Any, str], bundle_type: str, make: Callable[[], bytes]
) -> None:
    _, s3, bucket = store
    body = make()
    etag = s3.put_object(Bucket=bucket, Key=f"app.{bundle_type}", Body=body)["ETag"]
    spec = s3_spec("d-S3OK0001", bucket, f"app.{bundle_type}", bundle_type, ETag=etag)

    diagnostics = execute_command("DownloadBundle", spec, AgentConfig(root_dir=tmp_path / "root"))

    assert diagnostics.succeeded, diagnostics
    archive = archive_of(tmp_path, "d-S3OK0001")
    assert (archive / "app" / "index.html").read_bytes() == b"<h1>hi</h1>\n"
    assert (archive.parent / "bundle.tar").read_bytes() == body  # always named bundle.tar, as on AWS


def test_an_etag_that_does_not_match_the_object_is_refused(
    tmp_path: Path, store: tuple[ServerProcess, Any, str]
) -> None:
    _, s3, bucket = store
    actual = s3.put_object(Bucket=bucket, Key="app.tgz", Body=tar_bundle("gz"))["ETag"].strip('"')
    spec = s3_spec("d-S3ETAG01", bucket, "app.tgz", "tgz", ETag="0123456789abcdef0123456789abcdef")

    diagnostics = execute_command("DownloadBundle", spec, AgentConfig(root_dir=tmp_path / "root"))

    assert not diagnostics.succeeded
    assert diagnostics.message == (
        f"Expected deployment artifact bundle etag 0123456789abcdef0123456789abcdef but was actually {actual}"
    )
    assert not archive_of(tmp_path, "d-S3ETAG01").exists()


def test_missing_objects_and_versions_fail_with_the_store_s_error(
    tmp_path: Path, store: tuple[ServerProcess, Any, str]
) -> None:
    _, s3, bucket = store
    s3.put_object(Bucket=bucket, Key="app.tgz", Body=tar_bundle("gz"))
    config = AgentConfig(root_dir=tmp_path / "root")

    missing = execute_command("DownloadBundle", s3_spec("d-S3MISS01", bucket, "nope.tgz", "tgz"), config)
    assert missing.message.startswith(f"cannot download the bundle s3://{bucket}/nope.tgz: NoSuchKey")

    versioned = execute_command(
        "DownloadBundle", s3_spec("d-S3VERS01", bucket, "app.tgz", "tgz", Version="v-123"), config
    )
    assert versioned.message.startswith(
        f"cannot download the bundle s3://{bucket}/app.tgz (version v-123): NoSuchVersion"
    )
    # The store's one version of an object is "null": asking for it by that id works.
    assert execute_command(
        "DownloadBundle", s3_spec("d-S3VERS02", bucket, "app.tgz", "tgz", Version="null"), config
    ).succeeded


def test_a_hostile_bundle_is_refused_and_leaves_no_archive(
    tmp_path: Path, store: tuple[ServerProcess, Any, str]
) -> None:
    _, s3, bucket = store
    s3.put_object(Bucket=bucket, Key="evil.tar", Body=tar_bundle(extra={"../../escaped.txt": b"gotcha"}))

    diagnostics = execute_command(
        "DownloadBundle",
        s3_spec("d-S3EVIL01", bucket, "evil.tar", "tar"),
        AgentConfig(root_dir=tmp_path / "root"),
    )

    assert not diagnostics.succeeded
    assert "../../escaped.txt" in diagnostics.message
    assert not archive_of(tmp_path, "d-S3EVIL01").exists()
    assert not (tmp_path / "root" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()

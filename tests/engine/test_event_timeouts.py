"""Events' allowed run times from the AppSpec of a bundle in the server's own store."""

from __future__ import annotations

import io
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from command_agents import create_fleet, wait_for_status

from opendeploy.engine.event_timeouts import bundle_appspec, for_revision
from opendeploy.engine.strategies.server_in_place import lifecycle_events
from opendeploy.store.blob_store import FilesystemBlobStore
from support.server import ServerProcess

APPSPEC = b"""version: 0.0
os: linux
hooks:
  BeforeInstall:
    - location: scripts/one.sh
      timeout: 30
    - location: scripts/two.sh
      timeout: 45
  ApplicationStop:
    - location: scripts/stop.sh
      timeout: 5
  ValidateService:
    - location: scripts/check.sh
"""


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar(files: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    store = FilesystemBlobStore(tmp_path / "store")
    store.create_bucket("bundles", now=time.time())
    return store


@pytest.mark.parametrize(
    ("bundle_type", "content"),
    [
        ("zip", _zip({"appspec.yml": APPSPEC, "scripts/one.sh": b"#!/bin/sh\n"})),
        ("zip", _zip({"app/appspec.yaml": APPSPEC, "app/scripts/one.sh": b"#!/bin/sh\n"})),
        ("tar", _tar({"scripts/one.sh": b"#!/bin/sh\n", "appspec.yml": APPSPEC})),
        ("tgz", _tar({"release-1/appspec.yml": APPSPEC}, "w:gz")),
    ],
)
def test_run_times_come_from_the_new_revisions_scripts(
    store: FilesystemBlobStore, bundle_type: str, content: bytes
) -> None:
    store.put_object("bundles", "app", content, now=time.time())
    location = {"s3Location": {"bucket": "bundles", "key": "app", "bundleType": bundle_type}}
    times = for_revision(store, location, lifecycle_events(), grace=10)
    assert times == {
        "BeforeInstall": 85.0,  # 30 + 45 + grace
        "AfterInstall": 10.0,  # no scripts: the agent only has to say so
        "ApplicationStart": 10.0,
        "ValidateService": 3610.0,  # a script without a timeout may run the agent's default hour
    }
    # ApplicationStop runs what each instance last installed; DownloadBundle and Install run no
    # scripts but move the bundle: all three keep the default.
    assert not {"ApplicationStop", "DownloadBundle", "Install"} & set(times)


@pytest.mark.parametrize(
    "content",
    [
        b"not an archive",
        _zip({"readme.txt": b"no appspec here"}),
        _zip({"appspec.yml": b"version: 0.0\nos: plan9\n"}),  # invalid AppSpec
        _zip({"a/appspec.yml": APPSPEC, "b/other.txt": b""}),  # not one top-level directory
    ],
)
def test_bundles_without_a_readable_appspec_keep_the_default(
    store: FilesystemBlobStore, content: bytes
) -> None:
    store.put_object("bundles", "bad", content, now=time.time())
    assert bundle_appspec(store, "bundles", "bad", "zip") is None
    location = {"s3Location": {"bucket": "bundles", "key": "bad", "bundleType": "zip"}}
    assert for_revision(store, location, lifecycle_events(), grace=10) == {}


def test_bundles_elsewhere_keep_the_default(store: FilesystemBlobStore) -> None:
    missing = {"s3Location": {"bucket": "other-bucket", "key": "app.zip", "bundleType": "zip"}}
    assert for_revision(store, missing, lifecycle_events(), grace=10) == {}
    github = {"gitHubLocation": {"repository": "o/r", "commitId": "a" * 40}}
    assert for_revision(store, github, lifecycle_events(), grace=10) == {}


def test_a_hung_script_event_fails_after_its_scripts_timeouts(server_factory: Any, tmp_path: Path) -> None:
    """With the bundle in the server's store, BeforeInstall (timeout 1 s + 1 s grace) fails long before
    the default event timeout of 10 minutes."""
    server: ServerProcess = server_factory(
        "sqlite", extra_args=["--poll-hold", "0.5", "--event-timeout", "600", "--event-timeout-grace", "1"]
    )
    s3 = server.client("s3")
    s3.create_bucket(Bucket="bundles")
    appspec = (
        b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: hang.sh\n      timeout: 1\n"
    )
    s3.put_object(Bucket="bundles", Key="hang.zip", Body=_zip({"appspec.yml": appspec}))
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy(
        revision={
            "revisionType": "S3",
            "s3Location": {"bucket": "bundles", "key": "hang.zip", "bundleType": "zip"},
        }
    )
    for _ in range(2):
        agent.run(agent.poll_until_command())
    hung = agent.poll_until_command()
    assert hung["CommandName"] == "BeforeInstall"
    agent.acknowledge(hung)
    started = time.monotonic()
    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"}, timeout=20)
    assert info["status"] == "Failed" and info["errorInformation"]["code"] == "TIMEOUT"
    assert time.monotonic() - started < 15
    target = server.client("codedeploy").get_deployment_target(
        deploymentId=deployment_id, targetId=agent.name
    )
    event = target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"][2]
    assert "did not complete within 2 seconds" in event["diagnostics"]["message"]

"""The host side's entry point, ``execute_command``, as the agent daemon calls it: one lifecycle event per
call, with a deployment specification as the server sends it (S3 revision and all)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bundle_factory import file, write_tar

from opendeploy.agent.agent_config import AgentConfig
from opendeploy.agent.bundle import register_fetcher
from opendeploy.agent.command_executor import execute_command, is_command_noop
from opendeploy.agent.deployment_specification import (
    DeploymentSpecification,
    RevisionType,
    parse_deployment_specification,
)
from opendeploy.agent.diagnostics import ErrorCode

APPSPEC = """\
version: 0.0
os: linux
hooks:
  AfterInstall:
    - location: record.sh
  ApplicationStop:
    - location: record.sh
"""


def _spec(deployment_id: str, bucket: str = "releases") -> DeploymentSpecification:
    return parse_deployment_specification(
        {
            "DeploymentId": f"arn:aws:codedeploy:us-east-1:111122223333:deployment/{deployment_id}",
            "DeploymentGroupId": "6a8f1d3c-0000-4000-8000-000000000001",
            "DeploymentGroupName": "Staging",
            "ApplicationName": "WebApp",
            "Revision": {
                "RevisionType": "S3",
                "S3Revision": {"Bucket": bucket, "Key": "web.tgz", "BundleType": "tgz", "ETag": '"e1"'},
            },
        }
    )


@pytest.fixture
def s3_bundles() -> Iterator[dict[str, Path]]:
    """Bundles by bucket name, served through the fetcher seam the agent's S3 download plugs into
    (the real S3 fetcher, if one is installed, is put back afterwards)."""
    bundles: dict[str, Path] = {}

    def fetch(spec: DeploymentSpecification, destination: Path) -> None:
        shutil.copyfile(bundles[spec.revision.bucket], destination)  # type: ignore[union-attr]

    saved = register_fetcher(RevisionType.S3, fetch)
    try:
        yield bundles
    finally:
        register_fetcher(RevisionType.S3, saved)


def _record_script(trail: Path) -> str:
    return (
        "#!/bin/sh\n"
        'echo "$LIFECYCLE_EVENT $DEPLOYMENT_ID $DEPLOYMENT_GROUP_NAME'
        f' $BUNDLE_BUCKET $BUNDLE_KEY $BUNDLE_ETAG" >> {trail}\n'
    )


def test_each_event_is_one_call_with_the_server_specification(
    tmp_path: Path, s3_bundles: dict[str, Any]
) -> None:
    trail = tmp_path / "trail"
    s3_bundles["releases"] = write_tar(
        tmp_path / "web.tgz",
        [file("appspec.yml", APPSPEC), file("record.sh", _record_script(trail), 0o755)],
        gzip=True,
    )
    config = AgentConfig(root_dir=tmp_path / "root", log_dir=tmp_path / "log")
    spec = _spec("d-AAAAAAAA1")
    assert is_command_noop("ApplicationStop", spec, config), "first deployment: no previous revision"
    outcomes = {
        event: execute_command(event, spec, config) for event in ("ApplicationStop", "DownloadBundle")
    }
    assert is_command_noop("BeforeInstall", spec, config)
    assert not is_command_noop("AfterInstall", spec, config)
    for event in ("Install", "AfterInstall"):
        outcomes[event] = execute_command(event, spec, config)
    assert {e: json.loads(d.to_json())["error_code"] for e, d in outcomes.items()} == dict.fromkeys(
        outcomes, 0
    )
    assert outcomes["ApplicationStop"].message == "Succeeded: CompletedNoopCommand"
    assert trail.read_text() == "AfterInstall d-AAAAAAAA1 Staging releases web.tgz e1\n"
    archive = tmp_path / "root/6a8f1d3c-0000-4000-8000-000000000001/d-AAAAAAAA1/deployment-archive"
    assert (archive / "record.sh").exists(), "the ARN's deployment id names the directory"
    assert (archive.parent / "bundle.tar").is_file(), "downloaded bundles are kept as bundle.tar"

    # The next deployment's ApplicationStop runs the previous revision's script.
    second = _spec("d-AAAAAAAA2")
    assert not is_command_noop("ApplicationStop", second, config)
    assert execute_command("ApplicationStop", second, config).succeeded
    assert trail.read_text().splitlines()[-1] == "ApplicationStop d-AAAAAAAA2 Staging releases web.tgz e1"


def test_unknown_and_out_of_order_commands_fail_with_unknown_error(tmp_path: Path) -> None:
    config = AgentConfig(root_dir=tmp_path / "root", log_dir=tmp_path / "log")
    spec = _spec("d-AAAAAAAA3")
    unknown = execute_command("Reboot", spec, config)
    assert (unknown.error_code, unknown.message) == (
        ErrorCode.UNKNOWN_ERROR,
        "Unsupported command type: Reboot.",
    )
    assert is_command_noop("Reboot", spec, config)
    early = execute_command("Install", spec, config)
    assert early.error_code == ErrorCode.UNKNOWN_ERROR
    assert "DownloadBundle has not run" in early.message


def test_revision_source_without_a_fetcher_fails_clearly(tmp_path: Path) -> None:
    config = AgentConfig(root_dir=tmp_path / "root", log_dir=tmp_path / "log")
    github = parse_deployment_specification(
        {
            "DeploymentId": "d-AAAAAAAA4",
            "DeploymentGroupId": "g",
            "DeploymentGroupName": "G",
            "ApplicationName": "A",
            "Revision": {
                "RevisionType": "GitHub",
                "GitHubRevision": {"Account": "o", "Repository": "r", "CommitId": "c" * 40},
            },
        }
    )
    saved = register_fetcher(RevisionType.GITHUB, None)
    try:
        result = execute_command("DownloadBundle", github, config)
    finally:
        register_fetcher(RevisionType.GITHUB, saved)
    assert result.error_code == ErrorCode.UNKNOWN_ERROR
    assert "revisions of type GitHub cannot be fetched by this host" in result.message

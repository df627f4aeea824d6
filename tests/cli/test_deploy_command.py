"""``opendeploy deploy``: its flags become the CreateDeployment request ``aws deploy create-deployment``
would send (checked through GetDeployment), bad flags are refused before anything is created, API
errors are named, and a followed deployment's outcome is the exit status.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import BackgroundRun, opendeploy
from command_agents import Fleet, create_fleet

from support.server import ServerProcess, wait_for

COMMIT = "9b2c4c4a6c0f9d3c4d9a3d6b0e8f1a2b3c4d5e6f"


def _deploy(server: ServerProcess, fleet: Fleet, *args: str) -> Any:
    return opendeploy(
        server, "deploy", "--application-name", fleet.application,
        "--deployment-group-name", fleet.group, *args,
    )  # fmt: skip


def _s3(bucket: str, key: str, bundle_type: str) -> dict[str, str]:
    return {"bucket": bucket, "key": key, "bundleType": bundle_type}


def _deployment(server: ServerProcess, deployment_id: str) -> dict[str, Any]:
    return server.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]


def _stop(server: ServerProcess, deployment_id: str) -> None:
    codedeploy = server.client("codedeploy")
    # A group without instances fails at once (NO_INSTANCES); otherwise the deployment waits for agents.
    with contextlib.suppress(codedeploy.exceptions.DeploymentAlreadyCompletedException):
        codedeploy.stop_deployment(deploymentId=deployment_id)


def test_every_flag_reaches_the_deployment(cli_server: ServerProcess) -> None:
    fleet = create_fleet(cli_server)
    result = _deploy(
        cli_server, fleet, "--no-follow",
        "--s3-location", "bucket=bundles,key=app/release-1.tar.gz,version=v3,eTag=0123abcd",
        "--deployment-config-name", "CodeDeployDefault.OneAtATime",
        "--description", "release 1, from the CLI",
        "--file-exists-behavior", "RETAIN",
        "--ignore-application-stop-failures",
        "--update-outdated-instances-only",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    deployment_id = result.stdout.strip()  # --no-follow prints the id alone, for scripts
    assert deployment_id.startswith("d-") and "\n" not in deployment_id
    try:
        info = _deployment(cli_server, deployment_id)
        assert info["revision"] == {
            "revisionType": "S3",
            "s3Location": {
                "bucket": "bundles",
                "key": "app/release-1.tar.gz",
                "bundleType": "tgz",  # not given: from the key, as opendeploy push names bundles
                "version": "v3",
                "eTag": "0123abcd",
            },
        }
        assert info["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"
        assert info["description"] == "release 1, from the CLI"
        assert info["fileExistsBehavior"] == "RETAIN"
        assert info["ignoreApplicationStopFailures"] is True
        assert info["updateOutdatedInstancesOnly"] is True
        assert info["creator"] == "user"
    finally:
        _stop(cli_server, deployment_id)


@pytest.mark.parametrize(
    ("flags", "revision"),
    [
        (
            ["--s3-location", "s3://bundles/app/release-2.tar"],
            {"revisionType": "S3", "s3Location": _s3("bundles", "app/release-2.tar", "tar")},
        ),
        (
            ["--s3-location", "bucket=bundles,key=release-3.zip,bundleType=zip"],
            {"revisionType": "S3", "s3Location": _s3("bundles", "release-3.zip", "zip")},
        ),
        (
            ["--github-location", f"repository=example/app,commitId={COMMIT}"],
            {"revisionType": "GitHub", "gitHubLocation": {"repository": "example/app", "commitId": COMMIT}},
        ),
    ],
    ids=["s3-url", "s3-shorthand", "github"],
)  # fmt: skip
def test_the_revision_flags(cli_server: ServerProcess, flags: list[str], revision: dict[str, Any]) -> None:
    fleet = create_fleet(cli_server)
    result = _deploy(cli_server, fleet, "--no-follow", *flags)

    assert result.returncode == 0, result.stderr
    deployment_id = result.stdout.strip()
    try:
        info = _deployment(cli_server, deployment_id)
        assert info["revision"] == revision
        assert info["deploymentConfigName"] == "CodeDeployDefault.AllAtOnce"  # the group's
    finally:
        _stop(cli_server, deployment_id)


@pytest.fixture(scope="module")
def idle_fleet(cli_server: ServerProcess) -> Fleet:
    return create_fleet(cli_server)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--s3-location", "s3://bundles/a.zip", "--github-location", f"repository=o/r,commitId={COMMIT}"],
            "give --s3-location or --github-location, not both",
        ),
        (["--s3-location", "s3://bundles"], "must name both a bucket and a key"),
        (["--s3-location", "bucket=bundles"], "key missing from 'bucket=bundles'"),
        (["--s3-location", "bucket=b,key=k,bukket=x"], "unknown field 'bukket'; the fields are bucket, key"),
        (["--s3-location", "bucket=b,key=k,key=j"], "key is given twice"),
        (["--s3-location", "bucket=b,key"], "'key' is not of the form name=value"),
        (["--github-location", "repository=o/r"], "commitId missing"),
        (["--s3-location", "s3://b/k", "--target-instances", "{"], "for --target-instances: not JSON"),
        (["--s3-location", "s3://b/k.zip", "--target-instances", "[1]"], "a JSON object such as"),
        (["--s3-location", "s3://b/k", "--file-exists-behavior", "SOMETIMES"], "'SOMETIMES' is not one of"),
    ],
)  # fmt: skip
def test_bad_flags_are_refused_and_nothing_is_created(
    cli_server: ServerProcess, idle_fleet: Fleet, flags: list[str], message: str
) -> None:
    result = _deploy(cli_server, idle_fleet, *flags)

    assert result.returncode == 2, result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr
    deployments = cli_server.client("codedeploy").list_deployments(
        applicationName=idle_fleet.application, deploymentGroupName=idle_fleet.group
    )["deployments"]
    assert deployments == []


def test_api_errors_are_named(cli_server: ServerProcess, idle_fleet: Fleet) -> None:
    unknown = opendeploy(
        cli_server, "deploy", "--application-name", "no-such-application",
        "--deployment-group-name", "g", "--s3-location", "s3://bundles/app.zip",
    )  # fmt: skip
    assert unknown.returncode == 1
    assert "CreateDeployment failed: ApplicationDoesNotExistException" in unknown.stderr

    targets = json.dumps({"tagFilters": [{"Key": "Name", "Value": "green", "Type": "KEY_AND_VALUE"}]})
    in_place = _deploy(cli_server, idle_fleet, "--s3-location", "s3://b/k.zip", "--target-instances", targets)
    assert in_place.returncode == 1
    assert (
        "CreateDeployment failed: InvalidTargetInstancesException: targetInstances apply to blue/green"
        in in_place.stderr
    )


def test_a_stopped_deployment_ends_the_follow_with_status_4(
    cli_server: ServerProcess, tmp_path: Path
) -> None:
    fleet = create_fleet(cli_server)
    agent = fleet.add_instance()  # registered, but no agent ever polls: the deployment waits
    follow = BackgroundRun(
        cli_server, tmp_path, "deploy", "--application-name", fleet.application,
        "--deployment-group-name", fleet.group, "--s3-location", "s3://bundles/app.zip",
    )  # fmt: skip
    try:
        wait_for(lambda: f"{agent.name}: InProgress" in follow.stdout(), timeout=60, message="the follow")
        deployment_id = follow.stdout().split()[2]  # "Created deployment d-… of …"

        _stop(cli_server, deployment_id)

        wait_for(
            lambda: _deployment(cli_server, deployment_id)["status"] == "Stopped",
            timeout=10,
            message="the deployment stopped",
        )
        assert follow.wait(30) == 4, follow.stderr()
        assert f"Deployment {deployment_id} Stopped after " in follow.stdout()
    finally:
        if follow.process.poll() is None:
            follow.process.kill()

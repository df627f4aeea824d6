"""Real deployments: a real server, hosts registered with ``opendeploy register`` running real agents in
their own mount namespaces, driven with the ``aws`` CLI as a user would.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import signal
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from deploying import (
    bundle_bytes,
    create_group,
    deploy,
    event_statuses,
    instance_targets,
    register_host,
    start_hosts,
    upload,
    wait_for_deployment,
    write_revision,
)
from e2e_hosts import SAMPLE_DESTINATION, Host, wait_until
from github_archive import commit_tree, serve_github

from opendeploy.agent.command_client import create_botocore_client
from opendeploy.agent.onpremises_config import load_onpremises_config
from support.names import unique
from support.server import ServerProcess

SAMPLE = Path(__file__).parents[2] / "examples" / "CodeDeployDemo-OnPrem"
IN_PLACE_EVENTS = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]


@pytest.fixture
def server(module_server: ServerProcess) -> ServerProcess:
    return module_server


def test_the_guides_onprem_sample_deploys_to_two_hosts_with_the_aws_cli(
    server: ServerProcess, hosts: Callable[..., Host], instance_key: Callable[..., tuple[str, str]]
) -> None:
    tag = unique("CodeDeployDemo-OnPrem")
    fleet = [hosts(server), hosts(server)]
    for host in fleet:
        register_host(host, instance_key, tag)
    start_hosts(fleet)
    application = unique("CodeDeployDemo-OnPrem-App")
    bucket = unique("bundles").lower()
    server.aws_json("deploy", "create-application", "--application-name", application)
    made = server.aws("s3", "mb", f"s3://{bucket}")
    assert made.returncode == 0, made.stderr
    pushed = server.aws(
        "deploy", "push", "--application-name", application,
        "--s3-location", f"s3://{bucket}/CodeDeployDemo-OnPrem.zip", "--source", str(SAMPLE),
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    etag = re.search(r"eTag=([\w-]+)", pushed.stdout)
    assert etag, pushed.stdout
    group = create_group(server, application, tag)

    deployment_id = server.aws_json(
        "deploy", "create-deployment", "--application-name", application,
        "--deployment-group-name", group,
        "--s3-location", f"bucket={bucket},key=CodeDeployDemo-OnPrem.zip,bundleType=zip,eTag={etag.group(1)}",
    )["deploymentId"]  # fmt: skip
    info = wait_for_deployment(server, deployment_id)
    assert info["status"] == "Succeeded", info
    waited = server.aws("deploy", "wait", "deployment-successful", "--deployment-id", deployment_id)
    assert waited.returncode == 0, waited.stderr
    assert info["deploymentOverview"]["Succeeded"] == 2

    for host in fleet:
        files = sorted(p.name for p in host.path(SAMPLE_DESTINATION).iterdir())
        assert files == ["after-install.txt", "application-start.txt", "install.txt", "validate-service.txt"]
        assert (
            host.path(f"{SAMPLE_DESTINATION}/install.txt").read_text() == (SAMPLE / "install.txt").read_text()
        )
        target = json.loads(
            server.aws(
                "deploy", "get-deployment-target", "--deployment-id", deployment_id, "--target-id", host.name
            ).stdout
        )["deploymentTarget"]["instanceTarget"]  # fmt: skip
        assert target["status"] == "Succeeded"
        assert [e["lifecycleEventName"] for e in target["lifecycleEvents"]] == IN_PLACE_EVENTS
        assert all(e["status"] == "Succeeded" for e in target["lifecycleEvents"]), target["lifecycleEvents"]
    # Each host installed into its own tmpfs, not into the directory the test process sees.
    devices = {os.stat(host.path(SAMPLE_DESTINATION)).st_dev for host in fleet} | {
        os.stat(SAMPLE_DESTINATION).st_dev
    }
    assert len(devices) == 3
    targets = instance_targets(server, deployment_id)
    assert set(targets) == {host.name for host in fleet}


RECORD_ENV = """#!/bin/sh
env | grep -E '^(LIFECYCLE_EVENT|DEPLOYMENT_ID|APPLICATION_NAME|DEPLOYMENT_GROUP_(NAME|ID)|BUNDLE_[A-Z]+)=' \\
  | sort > /tmp/CodeDeployExample/env-$LIFECYCLE_EVENT
"""

WAIT_FOR_RELEASE = """#!/bin/sh
touch /tmp/CodeDeployExample/hook-started
while [ ! -e "{release}" ]; do sleep 0.1; done
echo "released"
"""


def command_client(host: Host, secret: str | None = None) -> Any:
    """A ``codedeploy-commands`` client signing with the host's own key (or a wrong secret)."""
    identity = load_onpremises_config(host.conf_dir / "codedeploy.onpremises.yml")
    if secret is not None:
        identity = dataclasses.replace(identity, secret_access_key=secret)
    return create_botocore_client(identity, host.server.endpoint, read_timeout=60)


def one_host(
    server: ServerProcess, hosts: Callable[..., Host], instance_key: Callable[..., tuple[str, str]]
) -> tuple[Host, str]:
    tag = unique("tag")
    host = hosts(server)
    register_host(host, instance_key, tag)
    start_hosts([host])
    return host, tag


def test_a_failing_hook_fails_the_deployment_with_its_diagnostics_and_hooks_see_the_right_environment(
    server: ServerProcess,
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    host, tag = one_host(server, hosts, instance_key)
    revision = write_revision(
        tmp_path / "revision",
        "version: 0.0\nos: linux\nfiles:\n  - source: app.txt\n    destination: /tmp/CodeDeployExample\n"
        "hooks:\n  BeforeInstall:\n    - location: scripts/record-env.sh\n"
        "  ApplicationStart:\n    - location: scripts/start.sh\n      timeout: 30\n",
        {
            "app.txt": "the app\n",
            "scripts/record-env.sh": RECORD_ENV,
            "scripts/start.sh": (
                "#!/bin/sh\necho 'starting the service'\necho 'port 8080 is already in use' >&2\nexit 7\n"
            ),
        },
        executable=["scripts/record-env.sh", "scripts/start.sh"],
    )
    location = upload(server, bundle_bytes(revision, "tgz"), "app/release-1.tgz")
    application = unique("app")
    group = create_group(server, application, tag)
    deployment_id = deploy(server, application, group, {"revisionType": "S3", "s3Location": location})

    info = wait_for_deployment(server, deployment_id)

    assert info["status"] == "Failed", info
    assert info["errorInformation"]["message"]
    target = instance_targets(server, deployment_id)[host.name]
    assert target["status"] == "Failed"
    statuses = event_statuses(target)
    assert [statuses[e] for e in IN_PLACE_EVENTS] == ["Succeeded"] * 5 + ["Failed", "Skipped"]
    start = next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == "ApplicationStart")
    diagnostics = start["diagnostics"]
    assert diagnostics["errorCode"] == "ScriptFailed"
    assert diagnostics["scriptName"] == "scripts/start.sh"
    assert "scripts/start.sh failed with exit code 7" in diagnostics["message"]
    assert "[stdout]starting the service" in diagnostics["logTail"]
    assert "[stderr]port 8080 is already in use" in diagnostics["logTail"]

    group_id = server.client("codedeploy").get_deployment_group(
        applicationName=application, deploymentGroupName=group
    )["deploymentGroupInfo"]["deploymentGroupId"]
    env = dict(
        line.split("=", 1)
        for line in host.path("/tmp/CodeDeployExample/env-BeforeInstall").read_text().splitlines()
    )
    assert env == {
        "APPLICATION_NAME": application,
        "BUNDLE_BUCKET": location["bucket"],
        "BUNDLE_ETAG": location["eTag"],
        "BUNDLE_KEY": location["key"],
        "DEPLOYMENT_GROUP_ID": group_id,
        "DEPLOYMENT_GROUP_NAME": group,
        "DEPLOYMENT_ID": deployment_id,
        "LIFECYCLE_EVENT": "BeforeInstall",
    }
    # The scripts.log of the deployment, where AWS's agent keeps it, holds the failing script's output.
    scripts_log = host.root_dir / group_id / deployment_id / "logs" / "scripts.log"
    assert "[stderr]port 8080 is already in use" in scripts_log.read_text()


def deploy_a_waiting_after_install(server: ServerProcess, tag: str, tmp_path: Path) -> tuple[str, Path]:
    """Deploy, to the group of instances tagged ``tag``, a revision whose AfterInstall hook touches
    /tmp/CodeDeployExample/hook-started and waits for the returned release file; the deployment's id."""
    release = tmp_path / "release"
    revision = write_revision(
        tmp_path / "revision",
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n"
        "    - location: scripts/long.sh\n      timeout: 120\n",
        {"scripts/long.sh": WAIT_FOR_RELEASE.format(release=release)},
        executable=["scripts/long.sh"],
    )
    location = upload(server, bundle_bytes(revision, "tar"), "app/long.tar")
    application = unique("app")
    deployment_id = deploy(
        server,
        application,
        create_group(server, application, tag),
        {"revisionType": "S3", "s3Location": location},
    )
    return deployment_id, release


def test_kill_9_of_the_agent_during_a_long_hook_fails_the_event_after_restart(
    server: ServerProcess,
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    host, tag = one_host(server, hosts, instance_key)
    deployment_id, release = deploy_a_waiting_after_install(server, tag, tmp_path)
    try:
        wait_until(lambda: host.path("/tmp/CodeDeployExample/hook-started").exists(), message="the long hook")
        host.kill_agent()
        host.start_agent()
        info = wait_for_deployment(server, deployment_id)
    finally:
        release.touch()  # let the orphaned script end

    assert info["status"] == "Failed"
    target = instance_targets(server, deployment_id)[host.name]
    after_install = next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == "AfterInstall")
    assert after_install["status"] == "Failed"
    assert (
        after_install["diagnostics"]["message"]
        == "Failed: Failing in-progress lifecycle event after an agent restart."
    )
    assert after_install["diagnostics"]["errorCode"] == "UnknownError"
    assert event_statuses(target)["ApplicationStart"] == "Skipped"


def test_an_agent_stopped_during_a_hook_finishes_it_and_carries_on_at_once_when_started_again(
    server: ServerProcess,
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    """SIGTERM (a `systemctl restart`, say) mid-deployment: the running hook finishes and is reported, the
    next event that the agent's open long poll still receives is kept, and the restarted agent runs it at
    once — not only after the server's redelivery of a command never acknowledged."""
    host, tag = one_host(server, hosts, instance_key)
    deployment_id, release = deploy_a_waiting_after_install(server, tag, tmp_path)
    try:
        wait_until(lambda: host.path("/tmp/CodeDeployExample/hook-started").exists(), message="the long hook")
        server.wait_for_polls_waiting(1)  # the agent's next poll is held open while the hook runs
        assert host.agent is not None
        host.agent.send_signal(signal.SIGTERM)
        host.wait_for_log(r"waiting up to \d+ s for AfterInstall")
    finally:
        release.touch()
    assert host.agent.wait(60) == 0
    assert "ApplicationStart kept to run when the agent starts again" in host.log_text()

    restarted = time.monotonic()
    host.start_agent()
    info = wait_for_deployment(server, deployment_id)
    assert info["status"] == "Succeeded"
    assert time.monotonic() - restarted < 120
    assert "running ApplicationStart, received before the agent last stopped" in host.log_text()
    target = instance_targets(server, deployment_id)[host.name]
    assert set(event_statuses(target).values()) == {"Succeeded"}


def test_a_hostile_bundle_is_refused_with_diagnostics(
    server: ServerProcess, hosts: Callable[..., Host], instance_key: Callable[..., tuple[str, str]]
) -> None:
    host, tag = one_host(server, hosts, instance_key)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (
            ("appspec.yml", b"version: 0.0\nos: linux\n"),
            ("../../../tmp/CodeDeployExample/pwned", b"x"),
        ):
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
    location = upload(server, buffer.getvalue(), "evil/bundle.tgz")
    application = unique("app")
    deployment_id = deploy(
        server,
        application,
        create_group(server, application, tag),
        {"revisionType": "S3", "s3Location": location},
    )

    info = wait_for_deployment(server, deployment_id)

    assert info["status"] == "Failed"
    target = instance_targets(server, deployment_id)[host.name]
    download = next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == "DownloadBundle")
    assert download["status"] == "Failed"
    assert download["diagnostics"]["errorCode"] == "UnknownError"
    assert "../../../tmp/CodeDeployExample/pwned" in download["diagnostics"]["message"]
    assert not host.path("/tmp/CodeDeployExample/pwned").exists()


def test_a_revision_from_a_github_compatible_archive_endpoint(
    server: ServerProcess,
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    github, stop = serve_github()
    try:
        tag = unique("tag")
        host = hosts(server)
        register_host(host, instance_key, tag)
        start_hosts([host], github_endpoint_override=github.endpoint)
        repository = write_revision(
            tmp_path / "repo",
            "version: 0.0\nos: linux\nfiles:\n"
            "  - source: site\n    destination: /tmp/CodeDeployExample/site\n"
            "hooks:\n  AfterInstall:\n    - location: scripts/record-env.sh\n",
            {"site/index.html": "<h1>from GitHub</h1>\n", "scripts/record-env.sh": RECORD_ENV},
            executable=["scripts/record-env.sh"],
        )
        commit = commit_tree(repository)
        github.repositories[("octo", "site")] = repository
        application = unique("app")
        deployment_id = deploy(
            server, application, create_group(server, application, tag),
            {"revisionType": "GitHub", "gitHubLocation": {"repository": "octo/site", "commitId": commit}},
        )  # fmt: skip
        info = wait_for_deployment(server, deployment_id)
    finally:
        stop()

    assert info["status"] == "Succeeded", info
    assert host.path("/tmp/CodeDeployExample/site/index.html").read_text() == "<h1>from GitHub</h1>\n"
    env = host.path("/tmp/CodeDeployExample/env-AfterInstall").read_text()
    assert f"BUNDLE_COMMIT={commit}" in env
    assert any(path.startswith(f"/api/v3/repos/octo/site/tarball/{commit}") for path, _ in github.requests)


def test_an_instance_cannot_touch_another_instances_commands_and_unsigned_requests_are_refused(
    server: ServerProcess, hosts: Callable[..., Host], instance_key: Callable[..., tuple[str, str]]
) -> None:
    """Host A, with its own valid key, tries to poll for, read, acknowledge and complete host B's command;
    all refused. B (no agent running; driven by hand) still gets and answers its command."""
    tag_b = unique("tag")
    host_a, host_b = hosts(server), hosts(server)
    register_host(host_a, instance_key, unique("tag"))
    register_host(host_b, instance_key, tag_b)
    as_a, as_b = command_client(host_a), command_client(host_b)
    b_arn = load_onpremises_config(host_b.conf_dir / "codedeploy.onpremises.yml").host_identifier
    revision = write_revision(host_b.workdir / "revision", "version: 0.0\nos: linux\n", {})
    location = upload(server, bundle_bytes(revision, "zip"), "app/empty.zip")
    application = unique("app")
    deploy(
        server,
        application,
        create_group(server, application, tag_b),
        {"revisionType": "S3", "s3Location": location},
    )

    with pytest.raises(ClientError) as refused:
        as_a.poll_host_command(HostIdentifier=b_arn)
    assert refused.value.response["Error"]["Code"] == "ClientException"
    command = as_b.poll_host_command(HostIdentifier=b_arn)["HostCommand"]
    assert command["CommandName"] == "ApplicationStop"
    identifier = command["HostCommandIdentifier"]
    attempts = {
        "GetDeploymentSpecification": lambda: as_a.get_deployment_specification(
            DeploymentExecutionId=command["DeploymentExecutionId"], HostIdentifier=b_arn
        ),
        "PutHostCommandAcknowledgement": lambda: as_a.put_host_command_acknowledgement(
            HostCommandIdentifier=identifier,
            Diagnostics={"Format": "JSON", "Payload": '{"IsCommandNoop":true}'},
        ),
        "PutHostCommandComplete": lambda: as_a.put_host_command_complete(
            HostCommandIdentifier=identifier,
            CommandStatus="Failed",
            Diagnostics={
                "Format": "JSON",
                "Payload": '{"error_code":5,"script_name":"","message":"x","log":""}',
            },
        ),
    }
    for operation, attempt in attempts.items():
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.response["Error"]["Code"] == "ClientException", operation
    # Nothing A tried changed B's command: B acknowledges it as still to do.
    acknowledged = as_b.put_host_command_acknowledgement(
        HostCommandIdentifier=identifier, Diagnostics={"Format": "JSON", "Payload": '{"IsCommandNoop":true}'}
    )
    assert acknowledged["CommandStatus"] in ("InProgress", "Pending")

    unsigned = httpx.post(
        server.endpoint,
        headers={
            "X-Amz-Target": "CodeDeployCommandService_v20141006.PollHostCommand",
            "Content-Type": "application/x-amz-json-1.1",
        },
        content=json.dumps({"HostIdentifier": b_arn}),
    )
    assert unsigned.status_code in (400, 403)
    assert unsigned.json()["__type"].endswith("MissingAuthenticationTokenException")
    wrong_secret = command_client(host_b, secret="not-the-secret")
    with pytest.raises(ClientError) as refused:
        wrong_secret.poll_host_command(HostIdentifier=b_arn)
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"

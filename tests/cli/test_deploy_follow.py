"""``opendeploy deploy --follow`` and ``opendeploy watch`` with real agents on simulated hosts (each a mount
namespace with its own tmpfs, registered with ``opendeploy register``): a deployment that succeeds and
one whose hook fails, as a user following them in a log (stdout not a terminal) sees them.

Needs root for the hosts' mount namespaces (skipped with the reason otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from cli_helpers import opendeploy
from command_agents import IN_PLACE_EVENTS
from deploying import bundle_bytes, create_group, register_host, start_hosts, upload, write_revision
from e2e_hosts import Host

from support.names import unique
from support.server import ServerProcess

APPSPEC = """version: 0.0
os: linux
files:
  - source: app.txt
    destination: /tmp/CodeDeployExample
hooks:
  BeforeInstall:
    - location: scripts/prepare.sh
  ApplicationStart:
    - location: scripts/start.sh
      timeout: 30
"""
PREPARE = "#!/bin/sh\necho preparing\n"
START_OK = "#!/bin/sh\necho started\n"
START_FAILING = "#!/bin/sh\necho 'starting the service'\necho 'port 8080 is already in use' >&2\nexit 7\n"


def _fleet(
    server: ServerProcess, hosts: Callable[..., Host], instance_key: Callable[..., tuple[str, str]], size: int
) -> tuple[list[Host], str]:
    tag = unique("cli-fleet")
    fleet = [hosts(server) for _ in range(size)]
    for host in fleet:
        register_host(host, instance_key, tag)
    start_hosts(fleet)
    return fleet, tag


def _bundle(server: ServerProcess, tmp_path: Path, start_script: str) -> str:
    """Upload a revision; its ``s3://`` URL (a .tgz key: the bundle type comes from it)."""
    revision = write_revision(
        tmp_path / "revision",
        APPSPEC,
        {"app.txt": "the app\n", "scripts/prepare.sh": PREPARE, "scripts/start.sh": start_script},
        executable=["scripts/prepare.sh", "scripts/start.sh"],
    )
    location = upload(server, bundle_bytes(revision, "tgz"), "app/release.tgz")
    return f"s3://{location['bucket']}/{location['key']}"


def _host_lines(output: str, host: Host) -> list[str]:
    return [line[len(host.name) + 2 :] for line in output.splitlines() if line.startswith(f"{host.name}: ")]


def test_deploy_follow_shows_each_instance_reach_succeeded_with_its_events_in_order(
    cli_server: ServerProcess,
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    fleet, tag = _fleet(cli_server, hosts, instance_key, 2)
    url = _bundle(cli_server, tmp_path, START_OK)
    application = unique("app")
    group = create_group(cli_server, application, tag)

    result = opendeploy(
        cli_server, "deploy", "--application-name", application, "--deployment-group-name", group,
        "--s3-location", url, "--description", "followed from the CLI",
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    deployment_id = re.match(r"Created deployment (d-\w+) ", out).group(1)  # type: ignore[union-attr]
    info = cli_server.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["status"] == "Succeeded" and info["description"] == "followed from the CLI"
    for host in fleet:
        lines = _host_lines(out, host)
        finished = [line.split()[0] for line in lines if re.match(r"^\w+ Succeeded \(", line)]
        assert finished == IN_PLACE_EVENTS, lines  # every event, once, in order
        assert lines[-1].startswith("Succeeded ("), lines  # and then the instance
        assert host.path("/tmp/CodeDeployExample/app.txt").read_text() == "the app\n"
    summary = out[out.index(f"Deployment {deployment_id} Succeeded after ") :]
    assert "2 instances: Succeeded 2" in summary
    assert "events: " + ", ".join(IN_PLACE_EVENTS) in summary
    for host in fleet:
        assert re.search(rf"^{re.escape(host.name)}\s+Succeeded\s+\[\+{{7}}\]", summary, re.MULTILINE)
    assert "failed at" not in out


def test_a_failing_hook_ends_the_follow_with_its_script_and_log_tail_and_watch_tells_it_again(
    cli_server: ServerProcess,
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    (host,), tag = _fleet(cli_server, hosts, instance_key, 1)
    url = _bundle(cli_server, tmp_path, START_FAILING)
    application = unique("app")
    group = create_group(cli_server, application, tag)

    result = opendeploy(
        cli_server, "deploy", "--application-name", application, "--deployment-group-name", group,
        "--s3-location", url,
    )  # fmt: skip

    assert result.returncode == 3, result.stdout + result.stderr
    out = result.stdout
    deployment_id = re.match(r"Created deployment (d-\w+) ", out).group(1)  # type: ignore[union-attr]
    lines = _host_lines(out, host)
    assert next(line for line in lines if " Failed" in line).startswith("ApplicationStart Failed")
    assert "ValidateService Skipped" in lines
    assert lines[-1].startswith("Failed (")
    summary = out[out.index(f"Deployment {deployment_id} Failed after ") :]
    summary_lines = summary.splitlines()
    assert any(line.startswith("Error ") for line in summary_lines), summary
    assert re.search(rf"^{re.escape(host.name)}\s+Failed\s+\[\+{{5}}x-\]", summary, re.MULTILINE), summary
    assert f"{host.name} failed at ApplicationStart: ScriptFailed" in summary_lines
    assert "  script: scripts/start.sh" in summary_lines
    assert any("scripts/start.sh failed with exit code 7" in line for line in summary_lines)
    assert "    [stdout]starting the service" in summary_lines
    assert "    [stderr]port 8080 is already in use" in summary_lines

    watched = opendeploy(cli_server, "watch", deployment_id)

    assert watched.returncode == 3
    # Already finished: the same summary at once, no progress lines.
    assert watched.stdout.splitlines()[0].startswith(f"Deployment {deployment_id} Failed after ")
    assert not _host_lines(watched.stdout, host)
    assert "    [stderr]port 8080 is already in use" in watched.stdout.splitlines()

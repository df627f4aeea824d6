"""``kill -9`` of the server in the middle of a deployment: the agent keeps the finished event's result
until the server is back, and the restarted server carries the deployment to Succeeded (on SQLite and
on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
from e2e_hosts import Host, wait_until

from support.names import unique
from support.server import ServerProcess

WAIT_FOR_RELEASE = """#!/bin/sh
touch /tmp/CodeDeployExample/hook-started
while [ ! -e "{release}" ]; do sleep 0.1; done
"""


def test_kill_9_of_the_server_mid_deployment_then_restart_completes_it(
    backend: str,
    server_factory: Callable[..., ServerProcess],
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    server = server_factory(backend)
    tag = unique("tag")
    host = hosts(server)
    register_host(host, instance_key, tag)
    start_hosts([host])
    release = tmp_path / "release"
    revision = write_revision(
        tmp_path / "revision",
        "version: 0.0\nos: linux\nfiles:\n  - source: app.txt\n    destination: /tmp/CodeDeployExample\n"
        "hooks:\n  AfterInstall:\n    - location: scripts/wait.sh\n      timeout: 120\n",
        {"app.txt": "v1\n", "scripts/wait.sh": WAIT_FOR_RELEASE.format(release=release)},
        executable=["scripts/wait.sh"],
    )
    location = upload(server, bundle_bytes(revision, "tgz"), "app/v1.tgz")
    application = unique("app")
    deployment_id = deploy(
        server,
        application,
        create_group(server, application, tag),
        {"revisionType": "S3", "s3Location": location},
    )
    wait_until(
        lambda: host.path("/tmp/CodeDeployExample/hook-started").exists(), message="AfterInstall running"
    )

    server.kill9()
    release.touch()  # the hook finishes while the server is down ...
    host.wait_for_log(r"reporting \S+ failed")  # ... and the agent holds on to its result
    server.start()

    info = wait_for_deployment(server, deployment_id)
    assert info["status"] == "Succeeded", info
    target = instance_targets(server, deployment_id)[host.name]
    assert set(event_statuses(target).values()) == {"Succeeded"}
    assert host.path("/tmp/CodeDeployExample/app.txt").read_text() == "v1\n"

"""``kill -9`` of the server at random moments across OneAtATime deployments to three real agents, on
SQLite and PostgreSQL: every deployment succeeds, every hook runs exactly once on every host (the
hosts' own logs say so), and the fleet never stalls for long.

The moments are random (the seed is printed, so a failure can be replayed with ``CRASH_SEED``): a kill
lands wherever the deployment happens to be — handing out a command, between an acknowledgement and its
answer, while hooks run, while the engine moves to the next instance.
"""

from __future__ import annotations

import itertools
import os
import random
import time
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
    write_revision,
)
from e2e_hosts import Host

from support.names import unique
from support.server import ServerProcess

KILLS = 20
HOSTS = 3
HOOKED = ("BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")
HOOK_LOG = "/tmp/CodeDeployExample/hooks.log"
# About a second of hooks per host: each records itself (with the time) and takes a quarter second.
RECORD = '#!/bin/sh\necho "$LIFECYCLE_EVENT $DEPLOYMENT_ID $(date +%s.%N)" >> ' + HOOK_LOG + "\nsleep 0.25\n"
LONGEST_STALL = 30.0  # seconds without any hook starting anywhere in the fleet
DEPLOYMENT_TIMEOUT = 240.0


def _revision(tmp_path: Path, version: int) -> Path:
    hooks = "".join(f"  {event}:\n    - location: scripts/record.sh\n" for event in HOOKED)
    return write_revision(
        tmp_path / f"revision-{version}",
        "version: 0.0\nos: linux\nfiles:\n  - source: app.txt\n    destination: /tmp/CodeDeployExample\n"
        f"hooks:\n{hooks}",
        {"app.txt": f"v{version}\n", "scripts/record.sh": RECORD},
        executable=["scripts/record.sh"],
    )


def _status(server: ServerProcess, deployment_id: str) -> str | None:
    """The deployment's status, or None while the server is down or starting."""
    try:
        info = server.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    except Exception:
        return None
    return str(info["status"])


def test_kill_9_of_the_server_at_random_moments_loses_and_repeats_nothing(
    backend: str,
    server_factory: Callable[..., ServerProcess],
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("CRASH_SEED", time.time_ns() % 1_000_000))
    print(f"CRASH_SEED={seed}")
    rng = random.Random(seed)
    server = server_factory(backend)
    tag = unique("tag")
    fleet = [hosts(server) for _ in range(HOSTS)]
    for host in fleet:
        register_host(host, instance_key, tag)
    start_hosts(fleet)
    application = unique("app")
    group = create_group(server, application, tag, deploymentConfigName="CodeDeployDefault.OneAtATime")

    kills = 0
    deployments: list[str] = []
    while kills < KILLS:
        version = len(deployments) + 1
        location = upload(server, bundle_bytes(_revision(tmp_path, version), "tgz"), f"app/v{version}.tgz")
        deployment_id = deploy(server, application, group, {"revisionType": "S3", "s3Location": location})
        deployments.append(deployment_id)
        deadline = time.monotonic() + DEPLOYMENT_TIMEOUT
        while (status := _status(server, deployment_id)) not in ("Succeeded", "Failed", "Stopped"):
            assert time.monotonic() < deadline, f"{deployment_id} still {status} (seed {seed})"
            if kills < KILLS and status is not None:
                time.sleep(rng.uniform(0.2, 3.0))
                server.kill9()
                kills += 1
                time.sleep(rng.uniform(0.0, 1.5))
                server.start()
            else:
                time.sleep(0.2)
        assert status == "Succeeded", (deployment_id, status, f"seed {seed}")

    hook_times: list[float] = []
    for deployment_id in deployments:
        targets = instance_targets(server, deployment_id)
        for host in fleet:
            assert set(event_statuses(targets[host.name]).values()) == {"Succeeded"}
            runs = [line.split() for line in host.path(HOOK_LOG).read_text().splitlines()]
            mine = [event for event, deployment, _ in runs if deployment == deployment_id]
            assert mine == list(HOOKED), (host.name, deployment_id, mine, f"seed {seed}")
            hook_times += [float(at) for _, deployment, at in runs if deployment == deployment_id]
            assert host.path("/tmp/CodeDeployExample/app.txt").exists()
    hook_times.sort()
    stall = max(later - earlier for earlier, later in itertools.pairwise(hook_times))
    print(f"{len(deployments)} deployments, {kills} kills, longest pause between hooks {stall:.1f} s")
    assert stall < LONGEST_STALL, f"the fleet stalled for {stall:.1f} s (seed {seed})"

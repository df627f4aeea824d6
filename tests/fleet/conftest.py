"""Fixtures for the fleet tests: one real server and ten simulated hosts running real agents, shared by
every test of the run (booting a fleet takes a while on a small machine); tests pick their instances by
tag and use their own applications, groups and install directories (``fleet_cluster.Cluster``).

The server has short engine timings: an event not picked up within ``EVENT_START_TIMEOUT`` seconds
fails its instance (the guide's 5 minutes, shortened), so a test with an instance whose agent is down
ends in seconds, not minutes.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

# The end-to-end host helpers and the command service's protocol-level agents are shared with their suites.
sys.path.insert(0, str(Path(__file__).parent.parent / "e2e"))
sys.path.insert(0, str(Path(__file__).parent.parent / "commands"))
sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))

from command_agents import FAST_ENGINE
from deploying import register_host
from e2e_hosts import Host, require_hosts, wait_until
from fleet_cluster import FLEET_ENGINE, Cluster, instance_key

from support.names import unique
from support.server import ServerProcess

HOSTS = 10


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_hosts()
    workdir = tmp_path_factory.mktemp("fleet")
    server = ServerProcess(workdir / "server", extra_args=FLEET_ENGINE)
    server.start()
    suffix = uuid.uuid4().hex[:6]
    hosts = [
        Host(server, f"n{index:02d}-{suffix}", workdir / f"n{index:02d}") for index in range(1, HOSTS + 1)
    ]
    try:
        tag = unique("fleet")
        for host in hosts:
            host.boot()
        with ThreadPoolExecutor(4) as pool:  # registration runs the opendeploy CLI once per host
            list(pool.map(lambda host: register_host(host, instance_key, tag), hosts))
        for host in hosts:
            host.configure(wait_after_error=1)
            host.start_agent(wait=False)
        for host in hosts:
            wait_until(
                lambda host=host: "opendeploy agent started" in host.log_text(),
                timeout=60,
                message=f"agent of {host.name} to start",
            )
        yield Cluster(server, hosts, workdir)
    finally:
        for host in hosts:
            host.shutdown()
        server.stop()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def rules_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server per backend for a module of protocol-level tests (the command service tests' agents:
    where the rule lives in the engine, a real agent adds nothing but time)."""
    database_url = None
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres_databases").create()
    server = ServerProcess(
        tmp_path_factory.mktemp(f"rules-{request.param}"), database_url, extra_args=FAST_ENGINE
    )
    server.start()
    yield server
    server.stop()

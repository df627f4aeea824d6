"""Fixtures for end-to-end tests: simulated hosts running real agents against real server processes
(``server_factory`` from tests/conftest.py).

- ``module_server``: one private server (SQLite) shared by a test module's tests, which use unique
  names; tests that kill or restart a server use ``server_factory`` instead.
- ``hosts``: ``hosts(server, "name", ...)`` boots a simulated host (see ``e2e_hosts.Host``); every host
  is shut down (agent killed, namespace gone) at the end of the test.
- ``instance_key``: an access key for an IAM user ARN (and the on-premises instance it will identify),
  made directly in the server's store — the way to give an instance an identity without the server's
  IAM API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_hosts import Host, require_hosts

from support.names import unique
from support.server import ServerProcess


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Callable[..., Host]]:
    require_hosts()
    booted: list[Host] = []

    def boot(server: ServerProcess, name: str | None = None, **kwargs: Any) -> Host:
        name = name or unique("host")
        host = Host(server, name, tmp_path / name, **kwargs)
        booted.append(host)
        return host.boot()

    yield boot
    for host in booted:
        host.shutdown()


@pytest.fixture
def instance_key() -> Callable[..., tuple[str, str]]:
    """``instance_key(server, user_arn, instance_name=None) -> (access_key_id, secret)``, stored by the
    server itself."""

    def create(server: ServerProcess, user_arn: str, instance_name: str | None = None) -> tuple[str, str]:
        return server.store_access_key(user_arn, instance_name, "instance key made by a test")

    return create

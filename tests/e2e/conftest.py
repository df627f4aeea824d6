"""Fixtures for end-to-end tests: simulated hosts running real agents against real server processes
(``server_factory`` from tests/conftest.py).

- ``module_server``: one private server (SQLite) shared by a test module's tests, which use unique
  names; tests that kill or restart a server use ``server_factory`` instead.
- ``hosts``: ``hosts(server, "name", ...)`` boots a simulated host (see ``e2e_hosts.Host``); every host
  is shut down (agent killed, namespace gone) at the end of the test.
- ``bucket_reader``: an instance's IAM user allowed to read one bucket (downloads outside deployments);
- ``instance_key``: an access key for an IAM user ARN (and the on-premises instance it will identify),
  made directly in the server's store — the way to give an instance an identity without the server's
  IAM API.
"""

from __future__ import annotations

import json
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


@pytest.fixture(scope="session")
def bucket_reader() -> Callable[..., tuple[str, str, str]]:
    """``bucket_reader(server, name, bucket) -> (user ARN, access key id, secret)``: an instance's IAM user
    that an administrator's policy lets read ``bucket``'s objects, for downloads no deployment grants."""

    def create(server: ServerProcess, name: str, bucket: str) -> tuple[str, str, str]:
        iam = server.client("iam")
        arn = iam.create_user(UserName=name)["User"]["Arn"]
        read = {"Effect": "Allow", "Action": "s3:GetObject*", "Resource": f"arn:aws:s3:::{bucket}/*"}
        iam.put_user_policy(
            UserName=name,
            PolicyName="read-test-bundles",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [read]}),
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return arn, key["AccessKeyId"], key["SecretAccessKey"]

    return create

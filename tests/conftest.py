"""Shared fixtures: real opendeploy servers on SQLite and on PostgreSQL.

- ``server``: one server per backend for the whole session (tests use ``support.names.unique``
  names so they do not see each other's data). Tests using it run once per backend.
- ``server_factory``: ``server_factory("sqlite" | "postgresql", **kwargs)`` starts a private server
  (its own data directory and database), stopped at the end of the test; use it to kill or restart.
- ``backend``: the parameter itself, for tests that only need a private server per backend.

PostgreSQL tests are marked ``postgres`` and skipped, with the reason, only when PostgreSQL cannot
be reached (``$OPENDEPLOY_TEST_POSTGRES_URL``, default postgres@127.0.0.1:5432).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.names import unique
from support.postgres import Databases, unreachable_reason
from support.server import ServerProcess

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[Databases]:
    reason = unreachable_reason()
    if reason:
        pytest.skip(reason)
    databases = Databases()
    yield databases
    databases.drop_all()


def _database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    if backend == "sqlite":
        return None
    databases: Databases = request.getfixturevalue("postgres_databases")
    return databases.create()


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    backend: str = request.param
    process = ServerProcess(tmp_path_factory.mktemp(f"server-{backend}"), _database_url(backend, request))
    process.start()
    yield process
    process.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        request.getfixturevalue("postgres_databases")
    return request.param


@pytest.fixture
def server_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(backend: str = "sqlite", **kwargs: Any) -> ServerProcess:
        process = ServerProcess(tmp_path / unique("server"), _database_url(backend, request), **kwargs)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def codedeploy(server: ServerProcess) -> Any:
    """A boto3 CodeDeploy client for the session's server (per backend)."""
    return server.client("codedeploy")

"""Fixtures for the command service tests: servers with short engine timings, per backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from command_agents import FAST_ENGINE

from support.server import ServerProcess

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def backend_param(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def command_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, backend_param: str
) -> Iterator[ServerProcess]:
    """One server per backend for a test module, with a 1-second poll hold."""
    database_url = None
    if backend_param == "postgresql":
        database_url = request.getfixturevalue("postgres_databases").create()
    process = ServerProcess(
        tmp_path_factory.mktemp(f"commands-{backend_param}"), database_url, extra_args=FAST_ENGINE
    )
    process.start()
    yield process
    process.stop()

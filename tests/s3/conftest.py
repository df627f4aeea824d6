"""Fixtures for the S3 object API tests: one server (SQLite) shared by the module's tests, clients, buckets.

The S3 API does not depend on the database backend beyond the key lookup, so most tests use one
SQLite server; ``test_s3_backends.py`` covers both backends through the shared ``server`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support.names import unique
from support.server import ServerProcess


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("s3-server"))
    process.start()
    yield process
    process.stop()


@pytest.fixture
def s3(s3_server: ServerProcess) -> Any:
    """boto3's S3 client configured by the server's profile alone."""
    return s3_server.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = unique("bkt")
    s3.create_bucket(Bucket=name)
    return name

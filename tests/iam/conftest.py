"""Fixtures for the IAM API tests.

- ``iam_server``: one real server (SQLite, 1-second agent polls) per test module; tests use
  ``support.names.unique`` names so they do not see each other's users.
- ``iam``: a boto3 IAM client configured by the ``opendeploy`` profile alone (its ``iam`` endpoint).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from iam_helpers import start_server

from support.server import ServerProcess


@pytest.fixture(scope="module")
def iam_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("iam-server"))
    yield server
    server.stop()


@pytest.fixture
def iam(iam_server: ServerProcess) -> Any:
    return iam_server.client("iam")

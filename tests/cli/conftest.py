"""Fixtures for the people-facing CLI commands (``deploy``, ``watch``, ``targets``): a server with short
engine timings shared by a test module, and the simulated hosts of the end-to-end tests (real agents),
whose fixtures are reused from that suite; the command service tests' simulated agents (the protocol
driven step by step) are importable too.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS / "commands"))
sys.path.insert(0, str(TESTS / "e2e"))

from command_agents import FAST_ENGINE  # noqa: E402

from support.server import ServerProcess  # noqa: E402


def _e2e_fixtures():  # type: ignore[no-untyped-def]
    # The end-to-end suite's conftest, loaded under its own name so its fixtures can be used here.
    spec = importlib.util.spec_from_file_location("e2e_fixtures", TESTS / "e2e" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_e2e = _e2e_fixtures()
hosts = _e2e.hosts
instance_key = _e2e.instance_key


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One SQLite server per test module with a 1-second poll hold and a fast engine sweep."""
    process = ServerProcess(tmp_path_factory.mktemp("cli-server"), extra_args=FAST_ENGINE)
    process.start()
    yield process
    process.stop()

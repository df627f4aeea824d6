"""Fixtures for push tests: a server, an application, a bucket and a revision source directory."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.names import unique
from support.server import ServerProcess

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "CodeDeployDemo-OnPrem"


@pytest.fixture(scope="session")
def push_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("push-server"))
    process.start()
    yield process
    process.stop()


@pytest.fixture
def application(push_server: ServerProcess) -> str:
    name = unique("pushapp")
    push_server.client("codedeploy").create_application(applicationName=name)
    return name


@pytest.fixture
def bucket(push_server: ServerProcess) -> str:
    name = unique("revisions")
    push_server.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """The guide's on-premises sample revision (examples/CodeDeployDemo-OnPrem), with a hidden file."""
    target = tmp_path / "source"
    shutil.copytree(SAMPLE, target, symlinks=True)
    (target / ".git-note").write_text("a hidden file\n")
    (target / ".hidden-dir").mkdir()
    (target / ".hidden-dir" / "inside.txt").write_text("in a hidden directory\n")
    return target

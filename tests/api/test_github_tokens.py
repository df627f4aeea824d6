"""GitHub account token names: added with ``opendeploy github-token add``, listed and deleted via the API."""

from __future__ import annotations

import subprocess
import sys

import pytest

from opendeploy.store.db import Database
from opendeploy.store.github_tokens import save_token
from opendeploy.store.secrets import SecretBox
from support.server import clean_environment


def add_token(server, name: str, token: str) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable,
        "-m",
        "opendeploy",
        "github-token",
        "add",
        name,
        "--data-dir",
        str(server.data_dir),
    ]
    if server.database_url:
        args += ["--database-url", server.database_url]
    return subprocess.run(
        args, input=token, capture_output=True, text=True, env=clean_environment(), timeout=120
    )


def test_add_list_delete(server_factory, backend):
    server = server_factory(backend)
    codedeploy = server.client()
    assert codedeploy.list_git_hub_account_token_names()["tokenNameList"] == []
    for name in ("team-b", "team-a"):
        result = add_token(server, name, f"ghp_secret_{name}")
        assert result.returncode == 0, result.stderr
        assert "stored" in result.stdout
    assert codedeploy.list_git_hub_account_token_names()["tokenNameList"] == ["team-a", "team-b"]
    # The token itself is stored encrypted, never in the clear.
    for path in server.data_dir.glob("opendeploy.db*"):
        assert b"ghp_secret_team-a" not in path.read_bytes()

    assert codedeploy.delete_git_hub_account_token(tokenName="team-a")["tokenName"] == "team-a"
    assert codedeploy.list_git_hub_account_token_names()["tokenNameList"] == ["team-b"]
    with pytest.raises(codedeploy.exceptions.GitHubAccountTokenDoesNotExistException):
        codedeploy.delete_git_hub_account_token(tokenName="team-a")
    with pytest.raises(codedeploy.exceptions.GitHubAccountTokenNameRequiredException):
        codedeploy.delete_git_hub_account_token()


def test_token_names_paginate_and_quota(server_factory):
    server = server_factory("sqlite", page_size=2)
    names = [f"token-{i}" for i in range(3)]
    for name in names:
        assert add_token(server, name, "t").returncode == 0
    pages = list(server.client().get_paginator("list_git_hub_account_token_names").paginate())
    assert [len(p["tokenNameList"]) for p in pages] == [2, 1]
    assert [n for p in pages for n in p["tokenNameList"]] == names
    # The guide's quota: 25 GitHub connection tokens per account (fill it in-process: faster).
    database = Database(server.database_url or f"sqlite:///{server.data_dir / 'opendeploy.db'}")
    box = SecretBox.load_or_create(server.data_dir)
    with database.transaction() as session:
        for i in range(3, 25):
            save_token(session, box, f"token-{i}", "t", now=0.0, limit=25)
    database.dispose()
    refused = add_token(server, "token-25", "t")
    assert refused.returncode == 1 and "at most 25" in refused.stderr

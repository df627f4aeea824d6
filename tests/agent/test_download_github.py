"""DownloadBundle of a ``gitHubLocation`` revision from a GitHub-compatible archive API.

A local HTTP server plays api.github.com for a local git repository: ``/repos/<owner>/<repo>/tarball|zipball/
<commit>`` redirects to an archive made by ``git archive`` — with the single top-level directory
(``owner-repo-<sha>/``) that GitHub's archives have — and a private repository answers 404 without the
right token. The revision then installs and its hooks see ``BUNDLE_COMMIT``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.github_archive import TOKEN, GitHubDouble, make_repository, serve_github
from opendeploy.agent.agent_config import AgentConfig
from opendeploy.agent.bundle import register_fetcher
from opendeploy.agent.command_executor import execute_command
from opendeploy.agent.deployment_specification import RevisionType, parse_deployment_specification
from opendeploy.agent.diagnostics import ErrorCode
from opendeploy.agent.github_bundle_source import GitHubBundleSource

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git to make archives")


@pytest.fixture
def github() -> Iterator[GitHubDouble]:
    double, stop = serve_github()
    yield double
    stop()


def github_spec(deployment_id: str, commit: str, *, repo: str = "app", bundle_type: str | None = None,
                token: str | None = None) -> Any:  # fmt: skip
    revision: dict[str, Any] = {"Account": "octo", "Repository": repo, "CommitId": commit}
    if bundle_type:
        revision["BundleType"] = bundle_type
    document: dict[str, Any] = {
        "DeploymentId": deployment_id,
        "DeploymentGroupId": "dg-github",
        "DeploymentGroupName": "GitHubGroup",
        "ApplicationName": "GitHubApp",
        "Revision": {"RevisionType": "GitHub", "GitHubRevision": revision},
    }
    if token:
        document["GitHubAccessToken"] = token
    return parse_deployment_specification(document)


def config_for(tmp_path: Path) -> AgentConfig:
    return AgentConfig(root_dir=tmp_path / "root", log_dir=tmp_path / "log")


def serve_repository(
    tmp_path: Path, github: GitHubDouble, name: str = "app", *, private: bool = False
) -> str:
    """A repository ``octo/<name>`` (its files install to ``tmp_path / "www"``) on the double, which the
    agent fetches GitHub revisions from; its commit."""
    commit = make_repository(tmp_path / "repo", tmp_path / "www")
    github.repositories[("octo", name)] = tmp_path / "repo"
    if private:
        github.private.add(("octo", name))
    use(github)
    return commit


def use(github: GitHubDouble) -> None:
    register_fetcher(
        RevisionType.GITHUB, GitHubBundleSource(github.endpoint, retry_delays=(0.05, 0.05)).fetch
    )


@pytest.mark.parametrize("bundle_type", [None, "zip"], ids=["tarball", "zipball"])
def test_a_github_revision_downloads_installs_and_sees_its_commit(
    tmp_path: Path, github: GitHubDouble, bundle_type: str | None
) -> None:
    destination = tmp_path / "www"
    commit = serve_repository(tmp_path, github)
    spec = github_spec("d-GITHUB001", commit, bundle_type=bundle_type)
    config = config_for(tmp_path)

    for event in ("DownloadBundle", "Install", "AfterInstall"):
        diagnostics = execute_command(event, spec, config)
        assert diagnostics.succeeded, (event, diagnostics)

    archive = tmp_path / "root" / "dg-github" / "d-GITHUB001" / "deployment-archive"
    assert sorted(p.name for p in archive.iterdir()) == ["appspec.yml", "scripts", "site"]  # top dir removed
    assert (destination / "index.html").read_text() == "<h1>from git</h1>\n"
    assert (archive.parent / "commit-seen").read_text().strip() == commit
    kind = "zipball" if bundle_type == "zip" else "tarball"
    assert github.requests[0] == (f"/api/v3/repos/octo/app/{kind}/{commit}", None)


def test_a_private_repository_needs_the_deployment_token(tmp_path: Path, github: GitHubDouble) -> None:
    commit = serve_repository(tmp_path, github, "secret", private=True)
    config = config_for(tmp_path)

    refused = execute_command("DownloadBundle", github_spec("d-GITHUB002", commit, repo="secret"), config)
    assert refused.error_code == ErrorCode.UNKNOWN_ERROR
    assert f"cannot download the GitHub revision octo/secret@{commit}" in refused.message
    assert "404" in refused.message and "the token has no access" in refused.message
    assert not (tmp_path / "root" / "dg-github" / "d-GITHUB002" / "deployment-archive").exists()

    allowed = execute_command(
        "DownloadBundle", github_spec("d-GITHUB003", commit, repo="secret", token=TOKEN), config
    )
    assert allowed.succeeded, allowed
    assert github.requests[-1][1] == f"token {TOKEN}"


def test_server_errors_are_retried_and_unknown_commits_fail_at_once(
    tmp_path: Path, github: GitHubDouble
) -> None:
    commit = serve_repository(tmp_path, github)
    config = config_for(tmp_path)

    github.failures_left = 2
    assert execute_command("DownloadBundle", github_spec("d-GITHUB004", commit), config).succeeded
    assert github.failures_left == 0

    github.failures_left = 3
    failed = execute_command("DownloadBundle", github_spec("d-GITHUB005", commit), config)
    assert "answered 502" in failed.message

    requests_before = len(github.requests)
    unknown = execute_command("DownloadBundle", github_spec("d-GITHUB006", "0" * 40), config)
    assert "answered 404" in unknown.message
    assert len(github.requests) - requests_before == 2  # the API call and its redirect: no retries


def test_a_short_retry_schedule_keeps_its_tries_when_each_failure_is_slow(
    tmp_path: Path, github: GitHubDouble
) -> None:
    # Two delays: three tries, however long each takes (a 1.1 s time limit once cut the third off
    # on a busy machine, where each failing try took over half a second).
    commit = serve_repository(tmp_path, github)
    github.failures_left, github.failure_seconds = 2, 0.7
    downloaded = execute_command("DownloadBundle", github_spec("d-GITHUB010", commit), config_for(tmp_path))
    assert downloaded.succeeded, downloaded
    assert github.failures_left == 0

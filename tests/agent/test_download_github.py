"""DownloadBundle of a ``gitHubLocation`` revision from a GitHub-compatible archive API.

A local HTTP server plays api.github.com for a local git repository: ``/repos/<owner>/<repo>/tarball|zipball/
<commit>`` redirects to an archive made by ``git archive`` — with the single top-level directory
(``owner-repo-<sha>/``) that GitHub's archives have — and a private repository answers 404 without the
right token. The revision then installs and its hooks see ``BUNDLE_COMMIT``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opendeploy.agent.agent_config import AgentConfig
from opendeploy.agent.bundle import register_fetcher
from opendeploy.agent.command_executor import execute_command
from opendeploy.agent.deployment_specification import RevisionType, parse_deployment_specification
from opendeploy.agent.diagnostics import ErrorCode
from opendeploy.agent.github_bundle_source import GitHubBundleSource

TOKEN = "ghp_test_token_0123456789"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git to make archives")


def git(repository: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }
    return subprocess.run(
        ["git", "-C", str(repository), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def make_repository(path: Path, destination: Path) -> str:
    """A repository holding a revision; returns its commit id."""
    (path / "scripts").mkdir(parents=True)
    (path / "site").mkdir()
    (path / "site" / "index.html").write_text("<h1>from git</h1>\n")
    hook = path / "scripts" / "record.sh"
    hook.write_text('#!/bin/sh\necho "$BUNDLE_COMMIT" > "$(dirname "$0")/../../commit-seen"\n')
    hook.chmod(0o755)
    (path / "appspec.yml").write_text(
        "version: 0.0\nos: linux\nfiles:\n"
        f"  - source: site\n    destination: {destination}\n"
        "hooks:\n  AfterInstall:\n    - location: scripts/record.sh\n"
    )
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "a revision")
    return git(path, "rev-parse", "HEAD")


@dataclass
class GitHubDouble:
    """api.github.com's archive endpoints over repositories on this disk."""

    repositories: dict[tuple[str, str], Path]
    private: set[tuple[str, str]] = field(default_factory=set)
    failures_left: int = 0  # answer this many archive requests with 502 first
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((path, authorization))
        parts = path.strip("/").split("/")
        if len(parts) == 7 and parts[:3] == ["api", "v3", "repos"]:
            # Like GitHub: the API answers with a redirect to the archive host.
            return 302, {"Location": "/codeload/" + "/".join(parts[3:])}, b""
        if len(parts) == 5 and parts[0] == "codeload":
            return self.archive(parts[1:], authorization)
        return 404, {}, b'{"message": "Not Found"}'

    def archive(self, parts: list[str], authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        owner, repo, kind, ref = parts
        repository = self.repositories.get((owner, repo))
        if repository is None or ((owner, repo) in self.private and authorization != f"token {TOKEN}"):
            return 404, {}, b'{"message": "Not Found"}'
        if self.failures_left > 0:
            self.failures_left -= 1
            return 502, {}, b"bad gateway"
        try:
            sha = git(repository, "rev-parse", "--short=7", f"{ref}^{{commit}}")
        except subprocess.CalledProcessError:
            return 404, {}, b'{"message": "No commit found for the ref"}'
        fmt = "zip" if kind == "zipball" else "tar.gz"
        archive = subprocess.run(
            [
                "git",
                "-C",
                str(repository),
                "archive",
                f"--format={fmt}",
                f"--prefix={owner}-{repo}-{sha}/",
                ref,
            ],
            check=True,
            capture_output=True,
        ).stdout
        return 200, {"Content-Type": "application/x-gzip" if fmt == "tar.gz" else "application/zip"}, archive

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v3"


@pytest.fixture
def github(tmp_path: Path) -> Iterator[GitHubDouble]:
    double = GitHubDouble({})

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            status, headers, body = double.answer(self.path, self.headers.get("Authorization"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    double.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield double
    server.shutdown()
    server.server_close()


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


def use(github: GitHubDouble) -> None:
    register_fetcher(
        RevisionType.GITHUB, GitHubBundleSource(github.endpoint, retry_delays=(0.05, 0.05)).fetch
    )


@pytest.mark.parametrize("bundle_type", [None, "zip"], ids=["tarball", "zipball"])
def test_a_github_revision_downloads_installs_and_sees_its_commit(
    tmp_path: Path, github: GitHubDouble, bundle_type: str | None
) -> None:
    destination = tmp_path / "www"
    commit = make_repository(tmp_path / "repo", destination)
    github.repositories[("octo", "app")] = tmp_path / "repo"
    use(github)
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
    commit = make_repository(tmp_path / "repo", tmp_path / "www")
    github.repositories[("octo", "secret")] = tmp_path / "repo"
    github.private.add(("octo", "secret"))
    use(github)
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
    commit = make_repository(tmp_path / "repo", tmp_path / "www")
    github.repositories[("octo", "app")] = tmp_path / "repo"
    use(github)
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

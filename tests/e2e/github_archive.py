"""A GitHub-compatible archive API for tests, over git repositories on this disk.

``GitHubDouble`` answers ``/api/v3/repos/<owner>/<repo>/tarball|zipball/<commit>`` as api.github.com
does: a redirect to an archive made by ``git archive`` with GitHub's single top-level directory
(``owner-repo-<sha7>/``). A private repository answers 404 unless the request carries
``Authorization: token <TOKEN>``; ``failures_left`` makes it answer 502 a few times first, each after
``failure_seconds`` (a slow gateway).
``serve_github()`` runs it on 127.0.0.1 and returns it with a function that stops it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOKEN = "ghp_test_token_0123456789"


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
    return commit_tree(path)


def commit_tree(path: Path) -> str:
    """Make ``path`` a git repository with one commit of everything in it; returns the commit id."""
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
    failure_seconds: float = 0.0  # how long each of those answers takes
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
            time.sleep(self.failure_seconds)
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


def serve_github() -> tuple[GitHubDouble, Callable[[], None]]:
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

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return double, stop

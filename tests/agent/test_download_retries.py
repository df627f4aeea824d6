"""Bundle downloads ride out a store that fails for a moment (issue 8, item 4).

A small HTTP server plays both an S3 endpoint and a GitHub archive endpoint, and misbehaves on demand
for the next requests: a 503, throttling, a connection dropped before any answer, a body that breaks
off half-way, an answer slower than the read timeout — several times in a row, as during a restart.
The S3 and GitHub sources start the download again after each, and get the whole bundle; once their
retry budget runs out they fail saying so; when the agent is stopping (``stopping`` set) a retrying
download is given up at once with ``Abandoned``.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opendeploy.agent.bundle_extraction import BundleError
from opendeploy.agent.deployment_specification import DeploymentSpecification, parse_deployment_specification
from opendeploy.agent.github_bundle_source import GitHubBundleSource
from opendeploy.agent.onpremises_config import InstanceIdentity
from opendeploy.agent.retries import Abandoned
from opendeploy.agent.s3_bundle_source import S3BundleSource, create_s3_client

BODY = bytes(range(256)) * 4096  # 1 MiB, every byte value
SLOW = 1.0  # seconds a "slow" answer waits; the sources' read timeout is shorter
READ_TIMEOUT = 0.3


@dataclass
class FlakyStore:
    """Answers every GET with ``BODY``, after misbehaving once for each entry of ``failures``."""

    failures: list[str] = field(default_factory=list)
    requests: int = 0
    port: int = 0

    def next_failure(self) -> str | None:
        self.requests += 1
        return self.failures.pop(0) if self.failures else None


def serve(store: FlakyStore) -> Callable[[], None]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            failure = store.next_failure()
            etag = {"ETag": f'"{hashlib.md5(BODY, usedforsecurity=False).hexdigest()}"'}
            if failure == "503":
                error = b"<Error><Code>ServiceUnavailable</Code><Message>restarting</Message></Error>"
                self.answer(503, error)
            elif failure == "throttled":
                if self.path.startswith("/repos/"):
                    self.answer(429, b'{"message": "API rate limit exceeded"}')
                else:
                    self.answer(503, b"<Error><Code>SlowDown</Code><Message>slow down</Message></Error>")
            elif failure == "dropped":
                self.connection.shutdown(socket.SHUT_RDWR)  # no answer at all
                self.close_connection = True
            elif failure == "broken":
                self.send_response(200)
                self.send_header("Content-Length", str(len(BODY)))
                self.send_header("ETag", etag["ETag"])
                self.end_headers()
                self.wfile.write(BODY[: len(BODY) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # the body breaks off half-way
                self.close_connection = True
            elif failure == "slow":
                time.sleep(SLOW)
                self.close_connection = True
            else:
                self.answer(200, BODY, etag)

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that gave up on a slow answer: expected here

    httpd = Server(("127.0.0.1", 0), Handler)
    store.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()

    return stop


@pytest.fixture
def store() -> Iterator[FlakyStore]:
    double = FlakyStore()
    stop = serve(double)
    yield double
    stop()


def spec_for(source: str) -> DeploymentSpecification:
    revision: dict[str, Any] = (
        {"RevisionType": "S3", "S3Revision": {"Bucket": "bundles", "Key": "app.tgz", "BundleType": "tgz"}}
        if source == "s3"
        else {"RevisionType": "GitHub", "GitHubRevision": {"Account": "octo", "Repository": "app",
                                                           "CommitId": "a" * 40}}
    )  # fmt: skip
    return parse_deployment_specification(
        {
            "DeploymentId": "d-RETRIES01",
            "DeploymentGroupId": "dg-retries",
            "DeploymentGroupName": "Retries",
            "ApplicationName": "RetriesApp",
            "Revision": revision,
        }
    )


def fetcher(
    source: str, store: FlakyStore, **retries: Any
) -> Callable[[DeploymentSpecification, Path], None]:
    """The source's ``fetch``, retrying quickly (waits of at most 0.1 s) unless told otherwise."""
    retries = {"retry_seconds": 30, "retry_cap": 0.1, **retries}
    endpoint = f"http://127.0.0.1:{store.port}"
    if source == "s3":
        identity = InstanceIdentity(
            "arn:aws:iam::111122223333:user/host", "us-east-1", "AKIDEXAMPLE", "secret"
        )
        client = create_s3_client(identity, endpoint, read_timeout=READ_TIMEOUT)
        return S3BundleSource(client, **retries).fetch
    return GitHubBundleSource(endpoint, read_timeout=READ_TIMEOUT, **retries).fetch


SOURCES = ["s3", "github"]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    "failures",
    # Three in a row, or four kinds: more than botocore's own retries or a fixed few would ride out.
    [
        *([kind] * 3 for kind in ("503", "throttled", "dropped", "broken", "slow")),
        ["503", "broken", "dropped", "throttled"],
    ],
    ids=lambda failures: "-".join(failures),
)
def test_a_download_that_fails_for_a_moment_is_started_again_and_completes(
    tmp_path: Path, store: FlakyStore, source: str, failures: list[str]
) -> None:
    store.failures = list(failures)
    bundle = tmp_path / "bundle.tar"

    fetcher(source, store)(spec_for(source), bundle)

    assert bundle.read_bytes() == BODY
    assert store.requests == len(failures) + 1
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.tar"]  # no partial download left behind


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("s3", "cannot download the bundle s3://bundles/app.tgz: ServiceUnavailable: restarting"),
        ("github", "cannot download the GitHub revision octo/app@" + "a" * 40 + ": "),
    ],
)
def test_a_download_fails_clearly_once_its_retry_budget_is_spent(
    tmp_path: Path, store: FlakyStore, source: str, message: str
) -> None:
    store.failures = ["503"] * 1000
    started = time.monotonic()

    with pytest.raises(BundleError) as refused:
        fetcher(source, store, retry_seconds=1)(spec_for(source), tmp_path / "bundle.tar")

    assert str(refused.value).startswith(message)
    assert str(refused.value).endswith(
        "(still failing after 1 s of retries; :download_retry_seconds: sets how long)"
    )
    assert store.requests > 3
    assert time.monotonic() - started < 5
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", SOURCES)
def test_a_retrying_download_is_given_up_at_once_when_the_agent_stops(
    tmp_path: Path, store: FlakyStore, source: str
) -> None:
    store.failures = ["503"] * 1000
    stopping = threading.Event()
    fetch = fetcher(source, store, retry_seconds=600, retry_cap=30, stopping=stopping)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            fetch(spec_for(source), tmp_path / "bundle.tar")
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(2.0)  # two or three tries, then a wait of up to 4 s
    stopping.set()
    stopped = time.monotonic()
    thread.join(10)

    assert not thread.is_alive()
    assert time.monotonic() - stopped < 1.5  # not the rest of a wait of up to 4 s
    assert len(outcome) == 1 and isinstance(outcome[0], Abandoned), outcome
    assert "was given up: the agent is stopping" in str(outcome[0])
    assert list(tmp_path.iterdir()) == []

"""Stalled connections are closed: request headers not complete within ``--request-header-timeout`` of
the connection's opening, a request body that stops arriving for ``--request-body-timeout``. An agent's
long poll — a request whose headers and body arrived, held by the server — is not cut by either.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from botocore.awsrequest import AWSRequest
from command_agents import create_fleet

from support.server import ServerProcess
from support.signing import sign

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
POLL_HOLD = 6.0  # well past both timeouts
# How long a test waits for the server to close a connection before deciding it never will.
PATIENCE = 15.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("stalls"),
        extra_args=[
            "--request-header-timeout", str(HEADER_TIMEOUT),
            "--request-body-timeout", str(BODY_TIMEOUT),
            "--poll-hold", str(POLL_HOLD),
        ],
    )  # fmt: skip
    process.start()
    yield process
    process.stop()


def connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)


def seconds_until_closed(sock: socket.socket, started: float, *, trickle: bytes = b"") -> float | None:
    """Read (sending ``trickle`` a byte every 0.3 s meanwhile) until the server closes the connection;
    the seconds since ``started`` it took, or None if it was still open after ``PATIENCE``."""
    sock.settimeout(0.3)
    position = 0
    while time.monotonic() - started < PATIENCE:
        try:
            if not sock.recv(65536):
                return time.monotonic() - started
        except TimeoutError:
            if position < len(trickle):
                try:
                    sock.sendall(trickle[position : position + 1])
                except (BrokenPipeError, ConnectionResetError):
                    return time.monotonic() - started
                position += 1
        except ConnectionResetError:
            return time.monotonic() - started
    return None


def test_a_connection_whose_request_headers_stall_is_closed(server: ServerProcess) -> None:
    half = connect(server)
    silent = connect(server)
    trickling = connect(server)
    started = time.monotonic()
    half.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slo")
    try:
        # A byte every 0.3 s (headers that never finish in time); half the headers then nothing;
        # nothing at all.
        slowly = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
        for sock, trickle in ((trickling, slowly), (half, b""), (silent, b"")):
            took = seconds_until_closed(sock, started, trickle=trickle)
            assert took is not None, "the server kept a stalled connection open"
            assert HEADER_TIMEOUT * 0.8 <= took <= HEADER_TIMEOUT + 8, took
    finally:
        for sock in (half, silent, trickling):
            sock.close()


def test_a_connection_whose_request_body_stalls_is_closed_and_a_slow_steady_one_is_not(
    server: ServerProcess,
) -> None:
    # Signed (the server reads a signed request's whole body before answering), then only its start.
    full = b'{"applicationName": "stalled"}' + b" " * 970
    stalled = connect(server)
    try:
        stalled.sendall(signed_headers(server, full) + full[:14])
        started = time.monotonic()
        took = seconds_until_closed(stalled, started)
        assert took is not None, "the server kept a connection with a stalled body open"
        assert BODY_TIMEOUT * 0.8 <= took <= BODY_TIMEOUT + 8, took
    finally:
        stalled.close()

    # A body that keeps coming, a byte every 0.3 s for longer than the body timeout, is read to its end
    # (the request is signed: the server checks the body's hash, so it must have all of it) and answered.
    body = b'{"applicationName": "x"}' + b" " * 8
    steady = connect(server)
    try:
        steady.sendall(signed_headers(server, body))
        started = time.monotonic()
        for byte in body:
            steady.sendall(bytes([byte]))
            time.sleep(0.3)
        assert time.monotonic() - started > BODY_TIMEOUT
        steady.settimeout(PATIENCE)
        answer = steady.recv(65536)
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert b"ApplicationDoesNotExistException" in answer  # the request was read and served
    finally:
        steady.close()


def signed_headers(server: ServerProcess, body: bytes) -> bytes:
    """The head of a GetApplication request for ``body``, signed with the administrator's key."""
    request = AWSRequest(
        method="POST",
        url=f"{server.endpoint}/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "CodeDeploy_20141006.GetApplication",
        },
    )
    key, secret = server.credentials()
    sign(request, access_key=key, secret_key=secret, service="codedeploy", region=server.region)
    lines = [b"POST / HTTP/1.1", b"Host: 127.0.0.1:%d" % server.port, b"Content-Length: %d" % len(body)]
    lines += [f"{name}: {value}".encode() for name, value in request.headers.items() if name != "host"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def test_an_agents_long_poll_outlives_the_header_and_body_timeouts(server: ServerProcess) -> None:
    agent = create_fleet(server).add_instance()
    for _ in range(2):  # twice: the second poll reuses the kept-alive connection
        started = time.monotonic()
        assert agent.poll() is None  # held for the whole hold, then answered with no command
        elapsed = time.monotonic() - started
        assert POLL_HOLD * 0.9 <= elapsed < POLL_HOLD + 10, elapsed
    assert elapsed > HEADER_TIMEOUT + BODY_TIMEOUT

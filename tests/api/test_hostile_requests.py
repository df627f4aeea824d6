"""Hostile request bodies against a real server (issue 8, items 6 and 7): nesting deep enough to break a
recursive parser, bodies declared too large, and large bodies from clients that cannot sign them.

Raw clients (``http.client``) send a request's headers without its body where the server must answer
before reading it; a test that hangs waiting for the body fails on its socket timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cbor2
import pytest
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from support.names import unique
from support.server import ServerProcess
from support.signing import send_json, sign

CODEDEPLOY_TARGET = "CodeDeploy_20141006"
CBOR_PATH = f"/service/{CODEDEPLOY_TARGET}/operation/ListApplications"
LIMIT_MESSAGE = "at most 64 levels"
MAX_BODY = 8 * 1024 * 1024  # awsjson.MAX_BODY_BYTES
UNKNOWN_KEY = "AKIAUNKNOWNUNKNOWN00"


def nested_json(levels: int) -> bytes:
    """An awsJson request body whose member nests ``levels`` arrays and objects (about 2 bytes a level)."""
    inner = b'[{"a":' * (levels // 2) + b"1" + b"}]" * (levels // 2)
    return b'{"applicationName":' + inner + b"}"


def new_log(server: ServerProcess, since: int) -> str:
    return server.log_text()[since:]


# --- nesting -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [1_000, 5_000, 100])
def test_deeply_nested_json_is_a_serialization_exception(server, levels):
    body = nested_json(levels)
    assert levels < 1_000 or len(body) >= 2_000
    log_start = len(server.log_text())
    response = send_json(server, "GetApplication", body=body)
    assert response.status_code == 400, response.text
    assert response.json()["__type"] == "SerializationException"
    assert LIMIT_MESSAGE in response.json()["message"]
    assert "Traceback" not in new_log(server, log_start)
    # Nesting as deep as the limit is still read (and then found to be the wrong type), and brackets
    # inside strings are no nesting at all.
    within = send_json(server, "GetApplication", body=nested_json(62))
    assert within.status_code == 400 and within.json()["__type"] != "SerializationException"
    name = "[{" * 40 + '"]' * 40
    in_strings = send_json(server, "GetApplication", {"applicationName": name, "x": [[name]] * 40})
    assert in_strings.status_code == 400 and in_strings.json()["__type"] == "ValidationException"


def signed_cbor(server: ServerProcess, body: bytes, path: str = CBOR_PATH) -> tuple[int, dict[str, Any]]:
    key, secret = server.credentials()
    request = AWSRequest(
        method="POST",
        url=f"{server.endpoint}{path}",
        data=body,
        headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"},
    )
    sign(request, access_key=key, secret_key=secret, service="codedeploy", region=server.region)
    status, _, content = raw_request(server, "POST", path, dict(request.headers.items()), body)
    return status, cbor2.loads(content)


@pytest.mark.parametrize("levels", [1_500, 100])
def test_deeply_nested_cbor_is_a_serialization_exception(server, levels):
    arrays = b"\xa1" + cbor2.dumps("nextToken") + b"\x81" * levels + b"\x01"  # {"nextToken": [[[…1]]]}
    tags = b"\xa1" + cbor2.dumps("nextToken") + b"\xd8\x64" * levels + b"\x01"  # tag 100 in tag 100 …
    log_start = len(server.log_text())
    for body in (arrays, tags):
        status, error = signed_cbor(server, body)
        assert status == 400, error
        assert error["__type"] == "SerializationException"
        assert LIMIT_MESSAGE in error["message"]
    assert "Traceback" not in new_log(server, log_start)


def test_deeply_nested_policy_document(server):
    iam = server.client("iam")
    user = unique("user")
    iam.create_user(UserName=user)
    document = '{"Version":"2012-10-17","Statement":' + "[" * 1_000 + "]" * 1_000 + "}"
    log_start = len(server.log_text())
    with pytest.raises(ClientError) as raised:
        iam.put_user_policy(UserName=user, PolicyName="deep", PolicyDocument=document)
    assert raised.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    assert LIMIT_MESSAGE in raised.value.response["Error"]["Message"]
    assert "Traceback" not in new_log(server, log_start)


# --- bodies refused before they are read ------------------------------------------------------------


def raw_request(
    server: ServerProcess,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    *,
    content_length: int | None = None,
    timeout: float = 15.0,
) -> tuple[int, dict[str, str], bytes]:
    """Send ``headers`` (with ``Content-Length: content_length``, default ``len(body)``) and then
    ``body`` — or, with ``body=None``, none of it — and read the response: (status, headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        length = content_length if content_length is not None else len(body or b"")
        for name, value in {**headers, "Content-Length": str(length)}.items():
            connection.putheader(name, value)
        connection.endheaders()
        if body:
            # If the server answers and closes early, its answer may still be readable.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.send(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def signed_headers(
    server: ServerProcess,
    kind: str,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    signed: bool = True,
    path: str = "/",
) -> dict[str, str]:
    """The headers of a request of ``kind`` (awsjson, cbor, iam, s3), signed over an empty body."""
    key, secret = server.credentials()
    headers = {
        "awsjson": {
            "X-Amz-Target": f"{CODEDEPLOY_TARGET}.ListApplications",
            "Content-Type": "application/x-amz-json-1.1",
        },
        "cbor": {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"},
        "iam": {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        "s3": {"X-Amz-Content-SHA256": hashlib.sha256(b"").hexdigest()},
    }[kind]
    service = {"awsjson": "codedeploy", "cbor": "codedeploy", "iam": "iam", "s3": "s3"}[kind]
    request = AWSRequest(method="POST", url=f"{server.endpoint}{path}", data=b"", headers=headers)
    if signed:
        sign(
            request,
            access_key=access_key or key,
            secret_key=secret_key or secret,
            service=service,
            region=server.region,
        )
    return dict(request.headers.items())


ENDPOINTS = {"awsjson": "/", "cbor": CBOR_PATH, "iam": "/"}


def error_code(kind: str, content: bytes) -> str:
    if kind == "cbor":
        return cbor2.loads(content)["__type"]
    if kind == "awsjson":
        return json.loads(content)["__type"]
    text = content.decode()
    return text.split("<Code>", 1)[1].split("</Code>", 1)[0]


@pytest.mark.parametrize("kind", ["awsjson", "cbor", "iam"])
def test_declared_length_over_the_limit_is_refused_at_once(server, kind):
    limit = 1024 * 1024 if kind == "iam" else MAX_BODY
    status, headers, content = raw_request(
        server, "POST", ENDPOINTS[kind], signed_headers(server, kind), None, content_length=limit + 1
    )
    assert status == 413
    assert error_code(kind, content) == (
        "RequestEntityTooLarge" if kind == "iam" else "RequestEntityTooLargeException"
    )
    assert headers.get("connection") == "close"  # the body will not be read


def test_s3_small_body_over_the_limit_is_refused_at_once(server):
    bucket = unique("bucket")
    server.client("s3").create_bucket(Bucket=bucket)
    path = f"/{bucket}?delete="
    status, headers, content = raw_request(
        server, "POST", path, signed_headers(server, "s3", path=path), None, content_length=5 * 1024 * 1024
    )
    assert status == 400 and error_code("s3", content) == "MaxMessageLengthExceeded"
    assert headers.get("connection") == "close"


REFUSALS = {
    # kind: (code for an unknown key, code for no signature)
    "awsjson": ("UnrecognizedClientException", "MissingAuthenticationTokenException"),
    "cbor": ("UnrecognizedClientException", "MissingAuthenticationTokenException"),
    "iam": ("InvalidClientTokenId", "MissingAuthenticationToken"),
}


@pytest.mark.parametrize("kind", ["awsjson", "cbor", "iam"])
def test_unknown_key_or_no_signature_is_refused_before_the_body(server, kind):
    unknown, missing = REFUSALS[kind]
    for headers, expected in (
        (signed_headers(server, kind, access_key=UNKNOWN_KEY), unknown),
        (signed_headers(server, kind, signed=False), missing),
    ):
        # A body within every limit is declared but never sent: the answer must come without it.
        status, _, content = raw_request(
            server, "POST", ENDPOINTS[kind], headers, None, content_length=512 * 1024
        )
        assert status in (400, 403)
        assert error_code(kind, content) == expected


def test_s3_unknown_key_is_refused_before_a_small_body(server):
    bucket = unique("bucket")
    server.client("s3").create_bucket(Bucket=bucket)
    path = f"/{bucket}?delete="
    headers = signed_headers(server, "s3", path=path, access_key=UNKNOWN_KEY)
    status, _, content = raw_request(server, "POST", path, headers, None, content_length=1024 * 1024)
    assert status == 403 and error_code("s3", content) == "InvalidAccessKeyId"


def test_refusal_to_a_client_awaiting_100_continue_closes_the_connection(server):
    headers = {**signed_headers(server, "awsjson", access_key=UNKNOWN_KEY), "Expect": "100-continue"}
    status, response_headers, content = raw_request(
        server, "POST", "/", headers, None, content_length=1_000_000
    )
    assert status == 400 and error_code("awsjson", content) == "UnrecognizedClientException"
    assert response_headers.get("connection") == "close"  # the body it holds back will never come


# --- memory under concurrent unauthenticated bodies ---------------------------------------------------


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def rss_peak() -> Iterator[Callable[[int], Callable[[], int]]]:
    """``rss_peak(pid)`` starts sampling the process's RSS; calling the result stops and returns the peak."""
    stops: list[threading.Event] = []

    def start(pid: int) -> Callable[[], int]:
        stop = threading.Event()
        stops.append(stop)
        peak = [rss_bytes(pid)]

        def sample() -> None:
            while not stop.wait(0.02):
                peak[0] = max(peak[0], rss_bytes(pid))

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()

        def finish() -> int:
            stop.set()
            thread.join()
            return peak[0]

        return finish

    yield start
    for stop in stops:
        stop.set()


CONCURRENT = 40
BIG_BODY = 8_000_000
MAX_GROWTH = 60 * 1024 * 1024


def test_concurrent_unauthenticated_big_bodies_keep_memory_bounded(server_factory, rss_peak):
    server = server_factory("sqlite")
    assert server.process is not None
    pid = server.process.pid
    body = b"x" * BIG_BODY
    # Warm up every path (imports, models, and the worker threads and their allocator arenas that
    # concurrent requests bring about), so that what grows afterwards is what the bodies take.
    warm_up = [
        signed_headers(server, "awsjson", secret_key="wrong"),
        signed_headers(server, "awsjson", signed=False),
    ]
    server.client().list_applications()
    with ThreadPoolExecutor(CONCURRENT) as pool:
        list(
            pool.map(
                lambda n: raw_request(server, "POST", "/", warm_up[n % 2], b"x" * 200_000, timeout=120),
                range(2 * CONCURRENT),
            )
        )
    time.sleep(0.5)

    kinds = [
        ("unsigned", signed_headers(server, "awsjson", signed=False), "MissingAuthenticationTokenException"),
        (
            "unknown key",
            signed_headers(server, "awsjson", access_key=UNKNOWN_KEY),
            "UnrecognizedClientException",
        ),
        # A known key id passes the header checks; the body is received (into a file) and the
        # signature, which needs it, then fails.
        ("wrong secret", signed_headers(server, "awsjson", secret_key="wrong"), "InvalidSignatureException"),
    ]
    for label, headers, expected in kinds:
        before = rss_bytes(pid)
        finish = rss_peak(pid)
        with ThreadPoolExecutor(CONCURRENT) as pool:
            results = list(
                pool.map(
                    lambda _, headers=headers: raw_request(server, "POST", "/", headers, body, timeout=120),
                    range(CONCURRENT),
                )
            )
        peak = finish()
        assert {(status, error_code("awsjson", content)) for status, _, content in results} == {
            (400, expected)
        }
        growth = peak - before
        assert growth < MAX_GROWTH, f"{label}: RSS grew {growth / 2**20:.0f} MiB with {CONCURRENT} bodies"
        # And the server still answers.
        assert server.client().list_applications()["applications"] is not None

    # A signed body past the in-memory part waits in a file until the signature is verified, and is
    # then served as any other.
    name = unique("big")
    big = json.dumps({"applicationName": name, "tags": [{"Key": "k", "Value": "v" * 200_000}]}).encode()
    response = send_json(server, "CreateApplication", body=big)
    assert response.status_code == 400 and response.json()["__type"] == "InvalidTagsToAddException"
    tampered = send_json(server, "CreateApplication", body=big, tamper_body=big.replace(b'"k"', b'"j"'))
    assert tampered.status_code == 400 and tampered.json()["__type"] == "InvalidSignatureException"
    padded = json.dumps({"applicationName": name, "computePlatform": "Server"}).encode() + b" " * 300_000
    assert send_json(server, "CreateApplication", body=padded).status_code == 200
    assert server.client().get_application(applicationName=name)["application"]["applicationName"] == name

"""HTTP endpoints that receive the server's notifications, for tests: a receiver that records (and, for
webhooks, verifies) every POST, an endpoint that accepts connections and never answers, and a URL that
refuses connections.

``WebhookReceiver.start(secret)`` answers every POST with ``status`` (settable at any time: 503 makes the
sender retry) and records each one as a ``Delivery`` — its path, headers, body, the status it got, and
whether ``X-Opendeploy-Signature`` is the HMAC-SHA256 of the body under ``secret`` (checked here with the
standard library, not the product's code). Without a secret it records any POST (an SNS HTTP subscriber).
``accepted()`` is the deliveries answered 2xx, one per ``X-Opendeploy-Delivery`` id (receivers
deduplicate by it); ``wait_for(condition)`` waits until ``condition(receiver)`` holds.

``HangingEndpoint.start()`` accepts connections and reads what arrives, but never answers: ``requests``
holds each connection's bytes and whether the client still holds it open. ``refused_url()`` is a URL
nothing listens at.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support.server import free_port, wait_for

SIGNATURE_HEADER = "X-Opendeploy-Signature"
DELIVERY_HEADER = "X-Opendeploy-Delivery"
EVENT_HEADER = "X-Opendeploy-Event"


def expected_signature(secret: str, body: bytes) -> str:
    """What ``X-Opendeploy-Signature`` must be for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Delivery:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    signature_ok: bool | None  # None: the receiver has no secret to check with

    @property
    def delivery_id(self) -> str | None:
        return self.headers.get(DELIVERY_HEADER)

    @property
    def event(self) -> str | None:
        return self.headers.get(EVENT_HEADER)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 recording each POST (module docstring)."""

    secret: str | None = None
    status: int = 200
    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @classmethod
    def start(cls, secret: str | None = None, status: int = 200) -> WebhookReceiver:
        receiver = cls(secret, status)
        receiver._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
        receiver._server.daemon_threads = True
        threading.Thread(
            target=receiver._server.serve_forever, args=(0.05,), name="webhook-receiver", daemon=True
        ).start()
        return receiver

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        signature_ok = None
        if self.secret is not None:
            given = headers.get(SIGNATURE_HEADER) or ""
            signature_ok = hmac.compare_digest(expected_signature(self.secret, body), given)
        with self._lock:
            status = self.status
            self.deliveries.append(Delivery(path, headers, body, status, signature_ok))
        return status

    def all(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def accepted(self) -> list[Delivery]:
        """The deliveries answered 2xx, the first of each delivery id, in the order they arrived."""
        seen: set[str | None] = set()
        unique: list[Delivery] = []
        for delivery in self.all():
            if 200 <= delivery.status < 300 and delivery.delivery_id not in seen:
                seen.add(delivery.delivery_id)
                unique.append(delivery)
        return unique

    def wait_for(
        self, condition: Callable[[WebhookReceiver], Any], *, timeout: float = 30.0, message: str = ""
    ) -> Any:
        return wait_for(lambda: condition(self), timeout=timeout, interval=0.05, message=message)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver._record(self.path, dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@dataclass
class HeldRequest:
    """What one connection to a :class:`HangingEndpoint` sent, and whether its client still holds it."""

    data: bytearray = field(default_factory=bytearray)
    open: bool = True

    def headers(self) -> dict[str, str]:
        """The request's header fields (names in lower case), once they have arrived."""
        head = bytes(self.data).split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        return {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:])
        }


class HangingEndpoint:
    """Accepts every connection and reads it, never answering (module docstring)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._connections: list[socket.socket] = []
        self.requests: list[HeldRequest] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @classmethod
    def start(cls) -> HangingEndpoint:
        endpoint = cls()
        threading.Thread(target=endpoint._accept, name="hanging-endpoint", daemon=True).start()
        return endpoint

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/hook"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            request = HeldRequest()
            with self._lock:
                self._connections.append(connection)
                self.requests.append(request)
            threading.Thread(target=self._read, args=(connection, request), daemon=True).start()

    def _read(self, connection: socket.socket, request: HeldRequest) -> None:
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                data = b""
            with self._lock:
                if not data:
                    request.open = False
                    return
                request.data += data

    def held(self) -> list[HeldRequest]:
        with self._lock:
            return [HeldRequest(bytearray(r.data), r.open) for r in self.requests]

    def close(self) -> None:
        """Stop listening and close every connection (the client's request then fails at once)."""
        self._closed.set()
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()


def refused_url() -> str:
    """A URL nothing listens at: connections to it are refused."""
    return f"http://127.0.0.1:{free_port()}/hook"

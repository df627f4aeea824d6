"""An HTTP/1.1 proxy between agents and the server that can lose one answer on purpose.

Every request is forwarded to the server and its answer read; ``decide(exchange)`` then says whether
the client gets it. A dropped answer closes the client's connection without a byte, exactly what a
client sees when the server dies after doing the work but before answering (``decide`` may kill the
server itself, to make it real). The proxy records each exchange's operation (``X-Amz-Target``) and
outcome for assertions. When the server cannot be reached, the client's connection is closed too.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

UPSTREAM_TIMEOUT = 120.0  # longer than any long poll


@dataclass(frozen=True)
class Exchange:
    """One request and the server's answer to it."""

    operation: str  # e.g. "PollHostCommand" (after the X-Amz-Target's dot), "" for other requests
    request: dict[str, Any]
    status: int
    response: dict[str, Any]


Decide = Callable[[Exchange], bool]  # True: drop the answer


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class AnswerDroppingProxy:
    def __init__(self, upstream_port: int, decide: Decide | None = None) -> None:
        self.upstream_port = upstream_port
        self.decide: Decide = decide or (lambda _exchange: False)
        self.exchanges: list[tuple[Exchange, bool]] = []  # (exchange, dropped)
        self.dropped = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def operations(self, *, dropped: bool | None = None) -> list[str]:
        with self._lock:
            return [e.operation for e, d in self.exchanges if dropped is None or d == dropped]

    def close(self) -> None:
        self._closing = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name="proxy-client", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=UPSTREAM_TIMEOUT)
        reader = client.makefile("rb")
        try:
            while True:
                request = _read_request(reader)
                if request is None:
                    return
                method, path, headers, body = request
                try:
                    upstream.request(method, path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    response_body = answer.read()
                except (OSError, http.client.HTTPException):
                    return  # the server is gone: so is the client's connection
                target = headers.get("X-Amz-Target") or headers.get("x-amz-target") or ""
                exchange = Exchange(
                    target.partition(".")[2], _json(body), answer.status, _json(response_body)
                )
                drop = self.decide(exchange)
                with self._lock:
                    self.exchanges.append((exchange, drop))
                if drop:
                    self.dropped.set()
                    return
                head = [f"HTTP/1.1 {answer.status} {answer.reason}"]
                head += [
                    f"{name}: {value}"
                    for name, value in answer.getheaders()
                    if name.lower() not in ("content-length", "transfer-encoding", "connection")
                ]
                head.append(f"Content-Length: {len(response_body)}")
                client.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response_body)
        except OSError:
            return
        finally:
            upstream.close()
            reader.close()
            client.close()


def _read_request(reader: Any) -> tuple[str, str, dict[str, str], bytes] | None:
    line = reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        header = reader.readline().decode("latin-1")
        if header in ("\r\n", "\n", ""):
            break
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
    body = reader.read(length) if length else b""
    return method, path, headers, body

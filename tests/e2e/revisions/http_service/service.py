"""One host's HTTP service, as the revision's ApplicationStart runs it (standard library only).

``GET /`` answers ``<name> <version>``, ``GET /health`` 200, ``GET /slow?ms=N`` the same as ``/`` after N
milliseconds (a long request in flight). HTTP/1.1 with keep-alive, as a load balancer's connections to a
real service are.

It stops the way a well-behaved server does (Go's ``Server.Shutdown``, nginx's graceful quit): on SIGTERM
it closes its listening socket, closes the keep-alive connections that are idle, lets every request in
flight finish (answering it with ``Connection: close``) and exits once no connection is left. Requests
that arrive while it stops are still answered, and counted in its log ("served N requests while
stopping"): behind a load balancer that blocked traffic first there are none.

It writes its pid file only once it listens, so whoever starts it knows when it is ready.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STOP_TIMEOUT = 60.0  # the longest a request in flight may delay the stop


class Service:
    """The service's connections, idle or active, and whether it is stopping."""

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self.stopping = False
        self.served_while_stopping = 0
        self._connections: dict[socket.socket, bool] = {}  # connection -> a request is in flight
        self._changed = threading.Condition()

    def opened(self, connection: socket.socket) -> None:
        with self._changed:
            self._connections[connection] = False

    def active(self, connection: socket.socket) -> None:
        with self._changed:
            self._connections[connection] = True
            if self.stopping:
                self.served_while_stopping += 1

    def idle(self, connection: socket.socket) -> bool:
        """The request on ``connection`` is answered; True if the connection must close now."""
        with self._changed:
            if connection in self._connections:
                self._connections[connection] = False
            return self.stopping

    def closed(self, connection: socket.socket) -> None:
        with self._changed:
            self._connections.pop(connection, None)
            self._changed.notify_all()

    def stop(self, timeout: float) -> tuple[int, int]:
        """Close idle connections, wait for active ones to finish; (idle closed, active waited for)."""
        with self._changed:
            self.stopping = True
            idle = [c for c, busy in self._connections.items() if not busy]
            active = len(self._connections) - len(idle)
            for connection in idle:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)  # its handler's read ends: it closes
            self._changed.wait_for(lambda: not self._connections, timeout=timeout)
        return len(idle), active


def make_handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "http-service"

        def setup(self) -> None:
            super().setup()
            service.opened(self.connection)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                service.closed(self.connection)

        def parse_request(self) -> bool:
            service.active(self.connection)
            return super().parse_request()

        def handle_one_request(self) -> None:
            super().handle_one_request()
            if service.idle(self.connection):
                self.close_connection = True

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/health":
                self._answer(200, "ok")
            elif url.path == "/":
                self._answer(200, f"{service.name} {service.version}")
            elif url.path == "/slow":
                milliseconds = int(parse_qs(url.query).get("ms", ["200"])[0])
                time.sleep(milliseconds / 1000)
                self._answer(200, f"{service.name} {service.version}")
            else:
                self._answer(404, "not found")

        def _answer(self, status: int, body: str) -> None:
            data = (body + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            if service.stopping:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog: the default 5 drops connections under a burst

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # HAProxy's checks reset connections
            super().handle_error(request, client_address)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid-file", required=True)
    args = parser.parse_args()

    service = Service(args.name, args.version)
    server = QuietHTTPServer(("127.0.0.1", args.port), make_handler(service))
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # for sigwait below (threads inherit it)
    serving = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    serving.start()
    temporary = f"{args.pid_file}.{os.getpid()}"
    with open(temporary, "w") as pid_file:
        pid_file.write(f"{os.getpid()}\n")
    os.replace(temporary, args.pid_file)
    print(f"{time.time():.3f} {args.name} {args.version} listening on {args.port}", flush=True)

    signal.sigwait(stop_signals)
    started = time.monotonic()
    server.shutdown()
    server.server_close()  # new connections are refused from here on
    idle, active = service.stop(STOP_TIMEOUT)
    print(
        f"{time.time():.3f} {args.name} {args.version} stopped in {time.monotonic() - started:.3f}s: "
        f"closed {idle} idle connection(s), finished {active} active one(s), "
        f"served {service.served_while_stopping} requests while stopping",
        flush=True,
    )
    sys.exit(0)


if __name__ == "__main__":
    main()

"""One host's HTTP service that counts its answers for Prometheus (standard library only).

``GET /`` answers ``<name> <version>`` — with 200, or with 500 when started with ``--failing`` (a bad
release); ``GET /health`` answers 200 either way (the release looks healthy to a health check);
``GET /metrics`` is the Prometheus text format with ``http_requests_total{service="shop",code="…"}``, the
answers to ``/`` so far by status, both codes present from the start so that the first errors are an
increase Prometheus sees. SIGTERM stops it. It writes its pid file once it listens.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE_LABEL = "shop"


def make_handler(
    name: str, version: str, failing: bool, counts: Counter[int]
) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/":
                status = 500 if failing else 200
                with lock:
                    counts[status] += 1
                self._answer(status, f"{name} {version}", "text/plain")
            elif path == "/health":
                self._answer(200, "ok", "text/plain")
            elif path == "/metrics":
                with lock:
                    lines = [
                        f'http_requests_total{{service="{SERVICE_LABEL}",code="{code}"}} {counts[code]}'
                        for code in sorted(counts)
                    ]
                self._answer(200, "\n".join(lines), "text/plain; version=0.0.4")
            else:
                self._answer(404, "not found", "text/plain")

        def _answer(self, status: int, body: str, content_type: str) -> None:
            data = (body + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid-file", required=True)
    parser.add_argument("--failing", action="store_true", help="answer 500 on /")
    args = parser.parse_args()

    counts: Counter[int] = Counter({200: 0, 500: 0})
    server = QuietHTTPServer(
        ("127.0.0.1", args.port), make_handler(args.name, args.version, args.failing, counts)
    )
    # shutdown() waits for serve_forever to return, so it must run on another thread than the loop.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    temporary = f"{args.pid_file}.{os.getpid()}"
    with open(temporary, "w") as pid_file:
        pid_file.write(f"{os.getpid()}\n")
    os.replace(temporary, args.pid_file)
    print(f"{args.name} {args.version} listening on {args.port}", flush=True)
    server.serve_forever(poll_interval=0.05)
    server.server_close()


if __name__ == "__main__":
    main()

"""A real HAProxy (Debian's ``haproxy``) in front of local HTTP servers, for load-balancer tests.

``HAProxy.start(workdir, backend="web", servers={"host-1": port1, ...})`` writes a configuration in
``workdir`` (one HTTP frontend on a free port, one backend whose servers are health-checked with
``option httpchk GET /health`` every ``check_inter_ms`` with ``rise``/``fall``, a runtime API socket at
``level admin`` both as a unix socket and on a free TCP port), runs ``haproxy -f cfg -db`` (foreground)
and returns once the runtime API answers. ``reload()`` starts a new process with ``-sf <old pid>`` as a
service reload does (runtime changes are lost); ``stop()`` ends every process it started.

``url`` is the frontend; a request with header ``X-Server: <name>`` goes to that server (HAProxy's
``use-server``), others are balanced round robin. ``command(cmd)`` talks to the runtime API with its own
few lines of socket code, independent of the product's client.

``HTTPBackend.start(name)`` is a threaded HTTP server standing for one host's application: ``GET /``
answers ``"<name> <version>"``, ``GET /health`` answers 200 (503 once ``healthy`` is False), and
``GET /hold`` stays open until ``release()`` (``holding`` counts the requests held), which makes a long
in-flight request without any sleep. It counts the requests it served and the health checks it saw.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support.server import free_port, wait_for

HAPROXY = os.environ.get("OPENDEPLOY_TEST_HAPROXY", "/usr/sbin/haproxy")
START_TIMEOUT = 10.0
MAX_SOCKET_PATH = 90  # sun_path holds 107 bytes; HAProxy binds "<path>.<pid>.tmp" first
SERVER_HEADER = "X-Server"


def unavailable_reason() -> str | None:
    """Why HAProxy tests cannot run here, or None (``scripts/system-deps`` installs it)."""
    if not shutil.which(HAPROXY):
        return f"haproxy not installed at {HAPROXY} (run scripts/system-deps as root)"
    return None


def runtime_command(address: str, command: str, *, timeout: float = 5.0) -> str:
    """One runtime API command at ``unix:/path`` or ``host:port``; the answer up to EOF."""
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: str | tuple[str, int] = address.removeprefix("unix:")
    else:
        host, _, port = address.rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target = (host, int(port))
    with sock:
        sock.settimeout(timeout)
        sock.connect(target)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


class HAProxy:
    """One HAProxy configuration and the processes running it."""

    def __init__(
        self,
        workdir: Path,
        *,
        backend: str = "web",
        servers: Mapping[str, int | str],
        check: bool = True,
        check_inter_ms: int = 100,
        rise: int = 2,
        fall: int = 2,
        health_path: str = "/health",
        server_options: str = "",
        extra_global: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.backend = backend
        self.servers = dict(servers)
        self.check = check
        self.check_inter_ms = check_inter_ms
        self.rise = rise
        self.fall = fall
        self.health_path = health_path
        self.server_options = server_options
        self.extra_global = list(extra_global)
        self.frontend_port = free_port()
        self.stats_port = free_port()
        self.config_file = workdir / "haproxy.cfg"
        self._socket_dir: Path | None = None
        socket_path = workdir / "admin.sock"
        if len(str(socket_path)) > MAX_SOCKET_PATH:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="haproxy-"))
            socket_path = self._socket_dir / "admin.sock"
        self.socket_path = socket_path
        self.processes: list[subprocess.Popen[bytes]] = []
        self._starts = 0

    @classmethod
    def start(cls, workdir: Path, **kwargs: object) -> HAProxy:
        """Write the configuration and start HAProxy (keyword arguments as for the constructor)."""
        workdir.mkdir(parents=True, exist_ok=True)
        proxy = cls(workdir, **kwargs)  # type: ignore[arg-type]
        proxy.write_config()
        proxy._spawn()
        return proxy

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.frontend_port}"

    @property
    def stats_address(self) -> str:
        """The runtime API on TCP, ``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.stats_port}"

    @property
    def stats_socket(self) -> str:
        """The runtime API on its unix socket, ``unix:/path``."""
        return f"unix:{self.socket_path}"

    @property
    def pid(self) -> int:
        return self.processes[-1].pid

    def config(self) -> str:
        default_server = (
            f"    default-server check inter {self.check_inter_ms}ms rise {self.rise} fall {self.fall}\n"
            if self.check
            else ""
        )
        servers = "".join(
            f"    server {name} {_address(target)} {self.server_options}".rstrip() + "\n"
            for name, target in self.servers.items()
        )
        routes = "".join(
            f"    use-server {name} if {{ req.hdr({SERVER_HEADER}) -m str {name} }}\n"
            for name in self.servers
        )
        extra = "".join(f"    {line}\n" for line in self.extra_global)
        return (
            "global\n"
            f"    stats socket {self.socket_path} level admin\n"
            f"    stats socket ipv4@127.0.0.1:{self.stats_port} level admin\n"
            "    hard-stop-after 10s\n"
            f"{extra}"
            "defaults\n"
            "    mode http\n"
            "    timeout connect 1s\n"
            "    timeout client 30s\n"
            "    timeout server 30s\n"
            # Without it a check times out after ``inter`` (100 ms in most tests), and a Python backend on
            # a loaded CI machine can take longer than that, marking healthy servers down.
            "    timeout check 2s\n"
            "frontend fe\n"
            f"    bind 127.0.0.1:{self.frontend_port}\n"
            f"    default_backend {self.backend}\n"
            f"backend {self.backend}\n"
            "    balance roundrobin\n"
            f"    option httpchk GET {self.health_path}\n"
            f"{default_server}{routes}{servers}"
        )

    def write_config(self) -> None:
        self.config_file.write_text(self.config())

    def command(self, command: str, *, address: str | None = None) -> str:
        return runtime_command(address or self.stats_socket, command)

    def reload(self) -> None:
        """Reload as ``systemctl reload`` would: a new process takes over (``-sf``), the old one finishes
        its connections and exits; runtime changes are gone. Rewrite the config first to change it."""
        old = self.processes[-1]
        self._spawn(["-sf", str(old.pid)])
        old.wait(timeout=START_TIMEOUT)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def log(self) -> str:
        return "".join(path.read_text() for path in sorted(self.workdir.glob("haproxy-*.log")))

    def _spawn(self, extra_args: Sequence[str] = ()) -> None:
        self._starts += 1
        with open(self.workdir / f"haproxy-{self._starts}.log", "wb") as log:
            process = subprocess.Popen(
                [HAPROXY, "-f", str(self.config_file), "-db", *extra_args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.processes.append(process)

        def answering() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"haproxy exited with {process.returncode}:\n{self.log()}")
            try:
                info = self.command("show info")
            except OSError:
                return False
            return f"\nPid: {process.pid}\n" in info

        wait_for(answering, timeout=START_TIMEOUT, interval=0.02, message="haproxy's runtime API")


def _address(target: int | str) -> str:
    return f"127.0.0.1:{target}" if isinstance(target, int) else target


class HTTPBackend:
    """One host's application behind HAProxy (see the module docstring)."""

    def __init__(self, name: str, *, version: str = "v1", port: int = 0) -> None:
        self.name = name
        self.version = version
        self.healthy = True
        self.served = 0  # requests other than health checks
        self.health_checks = 0
        self.holding = 0
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server = _QuietHTTPServer(("127.0.0.1", port), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name=f"http-{name}", daemon=True
        )  # polls for shutdown every 20 ms (the default 0.5 s would make stop() slow)

    @classmethod
    def start(cls, name: str, *, version: str = "v1", port: int = 0) -> HTTPBackend:
        backend = cls(name, version=version, port=port)
        backend._thread.start()
        return backend

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def release(self) -> None:
        """Let every held request (and any later one) answer."""
        self._release.set()

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def _count(self, attribute: str, delta: int = 1) -> None:
        with self._lock:
            setattr(self, attribute, getattr(self, attribute) + delta)


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # health checks and test clients at once overflow the default 5 under load

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # HAProxy resets health-check connections once it has read the status line


def _handler(backend: HTTPBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                backend._count("health_checks")
                self._answer(200 if backend.healthy else 503, "ok" if backend.healthy else "failing")
                return
            backend._count("served")
            if self.path == "/hold":
                backend._count("holding")
                try:
                    backend._release.wait(timeout=30)
                finally:
                    backend._count("holding", -1)
            self._answer(200, f"{backend.name} {backend.version}")

        def _answer(self, status: int, body: str) -> None:
            data = (body + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler

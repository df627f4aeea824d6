"""A fleet of real hosts serving HTTP behind a real HAProxy, for zero-downtime tests and bench/traffic.py.

``Fleet.start(workdir, count=4)`` starts an HAProxy (``support.haproxy.HAProxy``: backend ``web`` with one
server per host, ``host-1`` … ``host-N``, each on its own port, health-checked every ``check_inter_ms``),
an ``opendeploy server`` whose runtime API address is that HAProxy's (``--haproxy-socket``), and ``count``
simulated hosts (``e2e_hosts.Host``) registered and running real agents. Each host's private tmpfs
``SERVICE_DIR`` holds ``service.conf`` (its name and port) for the revision in ``revisions/http_service``,
whose ApplicationStart runs ``service.py`` on that port (``<host> <version>`` on ``/``).

``fleet.deploy(version, traffic_control=…, config=…)`` builds that revision for a version (optionally
failing ValidateService on some hosts), uploads it and deploys it to every host through one of two
deployment groups: one behind HAProxy (``WITH_TRAFFIC_CONTROL``, target group ``haproxy:web``), one without
a load balancer. ``TrafficClient`` sends requests through HAProxy's frontend until stopped and records
each outcome. ``servers_state`` and ``server_stats`` read HAProxy's runtime API with the test support's
own socket code (not the product's client).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from deploying import (
    bundle_bytes,
    create_group,
    instance_targets,
    register_host,
    start_hosts,
    upload,
    wait_for_deployment,
)
from e2e_hosts import Host

from support.haproxy import HAProxy, runtime_command
from support.names import unique
from support.server import ServerProcess, wait_for

SERVICE_DIR = "/tmp/opendeploy-http-service"  # private to each host (a tmpfs in its mount namespace)
REVISION = Path(__file__).parent / "revisions" / "http_service"
BACKEND = "web"
IN_PLACE_EVENTS = (
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
)
TRAFFIC_CONTROL_EVENTS = (
    "BeforeBlockTraffic",
    "BlockTraffic",
    "AfterBlockTraffic",
    *IN_PLACE_EVENTS,
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
)
HAPROXY_ERROR_COUNTERS = ("econ", "eresp", "wretr", "wredis", "hrsp_5xx")


def service_bundle(workdir: Path, version: str, fail_validate_on: Iterable[str] = ()) -> bytes:
    """The http_service revision for ``version`` as a tgz; ValidateService fails on ``fail_validate_on``."""
    source = workdir / unique(f"revision-{version}")
    shutil.copytree(REVISION, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "version.txt").write_text(version + "\n")
    failing = list(fail_validate_on)
    if failing:
        (source / "fail-validate-on").write_text("".join(f"{name}\n" for name in failing))
    return bundle_bytes(source, "tgz")


# --- HAProxy's view ------------------------------------------------------------------------------------


def servers_state(haproxy: HAProxy, backend: str = BACKEND) -> dict[str, dict[str, str]]:
    """``show servers state <backend>``: each server's row by column name (srv_op_state, srv_admin_state…)."""
    lines = runtime_command(haproxy.stats_address, f"show servers state {backend}").splitlines()
    header = next(line for line in lines if line.startswith("# "))[2:].split()
    rows = [line.split() for line in lines if line and line[0].isdigit() and len(line.split()) > 4]
    return {row[3]: dict(zip(header, row, strict=False)) for row in rows}


def server_stats(haproxy: HAProxy, backend: str = BACKEND) -> dict[str, dict[str, str]]:
    """``show stat``'s rows for ``backend`` by server name (``BACKEND`` is the backend's own row)."""
    text = runtime_command(haproxy.stats_address, "show stat").removeprefix("# ")
    return {row["svname"]: row for row in csv.DictReader(io.StringIO(text)) if row.get("pxname") == backend}


def in_maintenance(state: dict[str, str]) -> bool:
    return int(state["srv_admin_state"]) & 0x01 != 0


def error_counters(haproxy: HAProxy, backend: str = BACKEND) -> dict[str, int]:
    """The backend's connection errors, response errors, retries, redispatches and 5xx answers so far."""
    row = server_stats(haproxy, backend)["BACKEND"]
    return {name: int(row[name] or 0) for name in HAPROXY_ERROR_COUNTERS}


def counters_since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in after}


# --- a client sending requests through HAProxy -----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: no HTTP answer (connection refused, reset, closed, timed out)
    body: str = ""
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.status != 200


@dataclass
class TrafficClient:
    """Sends ``GET path`` through ``url`` one request after another until ``stop()``.

    With ``keep_alive`` one connection carries every request (reopened after an error), as a browser or a
    proxy does; without it each request opens its own connection. ``pace`` is the pause between requests
    (the client's rate, not a wait for anything), which keeps a few clients from taking a core each.
    """

    url: str
    path: str = "/"
    keep_alive: bool = True
    pace: float = 0.005
    timeout: float = 30.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TrafficClient:
        self._thread = threading.Thread(target=self._run, name=f"client {self.path}", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, wait: bool = True) -> None:
        """Send no further request; with ``wait``, also wait for the one in flight to end."""
        self._stop.set()
        if wait and self._thread is not None:
            self._thread.join(self.timeout + 5)

    def _run(self) -> None:
        address = urlsplit(self.url)
        connection: HTTPConnection | None = None
        while not self._stop.is_set():
            if connection is None:
                connection = HTTPConnection(address.hostname, address.port, timeout=self.timeout)
            started = time.monotonic()
            try:
                headers = {} if self.keep_alive else {"Connection": "close"}
                connection.request("GET", self.path, headers=headers)
                answer = connection.getresponse()
                body = answer.read().decode(errors="replace").strip()
                outcome = Outcome(started, time.monotonic(), answer.status, body)
                if not self.keep_alive or answer.will_close:
                    connection.close()
                    connection = None
            except (OSError, ValueError) as error:  # http.client's errors are OSError or ValueError
                outcome = Outcome(started, time.monotonic(), None, error=f"{type(error).__name__}: {error}")
                connection.close()
                connection = None
            self.outcomes.append(outcome)
            self._stop.wait(self.pace)
        if connection is not None:
            connection.close()

    def since(self, moment: float) -> list[Outcome]:
        """The outcomes of requests started at or after ``moment`` (``time.monotonic()``)."""
        return [o for o in list(self.outcomes) if o.started >= moment]

    def failures(self) -> list[Outcome]:
        return [o for o in list(self.outcomes) if o.failed]


@dataclass
class Traffic:
    """Clients sending requests through HAProxy during a test, and HAProxy's error counters since they
    started: ``keep_alive`` (one connection for every request), ``fresh`` (a connection per request) and
    ``slow`` (one keep-alive connection always holding a ``slow_ms`` request in flight)."""

    haproxy: HAProxy
    clients: list[TrafficClient]
    counters_before: dict[str, int]

    @classmethod
    def start(cls, haproxy: HAProxy, *, slow_ms: int = 300, pace: float = 0.005) -> Traffic:
        before = error_counters(haproxy)
        clients = [
            TrafficClient(haproxy.url, pace=pace),
            TrafficClient(haproxy.url, keep_alive=False, pace=pace),
            TrafficClient(haproxy.url, path=f"/slow?ms={slow_ms}", pace=0),
        ]
        for client in clients:
            client.start()
        return cls(haproxy, clients, before)

    def stop(self) -> None:
        for client in self.clients:
            client.stop(wait=False)
        for client in self.clients:
            client.stop()

    def outcomes(self) -> list[Outcome]:
        return [o for c in self.clients for o in list(c.outcomes)]

    def since(self, moment: float) -> list[Outcome]:
        return [o for c in self.clients for o in c.since(moment)]

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes() if o.failed]

    def answers_since(self, moment: float) -> Counter[str]:
        return Counter(o.body if not o.failed else f"FAILED {o.status} {o.error}" for o in self.since(moment))

    def wait_for_answers(self, moment: float, hosts: Iterable[str], count: int = 60) -> Counter[str]:
        """Wait until requests started after ``moment`` number ``count`` and were answered by every one
        of ``hosts``; their answers."""
        names = set(hosts)

        def enough() -> bool:
            answers = self.answers_since(moment)
            seen = {body.split()[0] for body in answers}
            return sum(answers.values()) >= count and names <= seen

        wait_for(
            enough, timeout=30.0, interval=0.05, message=f"answers from {sorted(names)} after the deployment"
        )
        return self.answers_since(moment)

    def haproxy_errors(self) -> dict[str, int]:
        """HAProxy's connection errors, response errors, retries, redispatches and 5xx since the start."""
        return counters_since(self.counters_before, error_counters(self.haproxy))

    def summary(self) -> str:
        outcomes = self.outcomes()
        slowest = max((o.ended - o.started for o in outcomes), default=0.0)
        return (
            f"{len(outcomes)} requests, {len(self.failures())} failed, slowest {slowest:.3f}s; "
            f"HAProxy: {self.haproxy_errors()}"
        )


# --- lifecycle events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    name: str
    status: str
    start: float | None  # epoch seconds
    end: float | None

    @property
    def duration(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start


def lifecycle_events(server: ServerProcess, deployment_id: str) -> dict[str, list[Event]]:
    """Each instance's lifecycle events, in the order the API lists them (ListDeploymentTargets,
    BatchGetDeploymentTargets)."""

    def seconds(value: Any) -> float | None:
        return None if value is None else value.timestamp()

    return {
        name: [
            Event(
                e["lifecycleEventName"], e["status"], seconds(e.get("startTime")), seconds(e.get("endTime"))
            )
            for e in target["lifecycleEvents"]
        ]
        for name, target in instance_targets(server, deployment_id).items()
    }


# --- the fleet ---------------------------------------------------------------------------------------


@dataclass
class Fleet:
    workdir: Path
    haproxy: HAProxy
    server: ServerProcess
    hosts: list[Host]
    tag: str
    application: str
    bucket: str
    groups: dict[bool, str] = field(default_factory=dict)  # traffic control? -> deployment group

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        count: int = 4,
        check_inter_ms: int = 100,
        rise: int = 2,
        fall: int = 2,
        deregistration_delay: float = 5.0,
        health_wait: float = 30.0,
        poll_interval: float = 0.1,
        server_args: Sequence[str] = (),
    ) -> Fleet:
        """HAProxy, the server and ``count`` hosts with running agents (see the module docstring)."""
        names = [f"host-{n}" for n in range(1, count + 1)]
        ports = _free_ports(count)
        haproxy = HAProxy.start(
            workdir / "haproxy",
            backend=BACKEND,
            servers=dict(zip(names, ports, strict=True)),
            check_inter_ms=check_inter_ms,
            rise=rise,
            fall=fall,
        )
        server = ServerProcess(
            workdir / "server",
            extra_args=[
                "--haproxy-socket", haproxy.stats_address,
                "--haproxy-deregistration-delay", str(deregistration_delay),
                "--haproxy-check-interval", str(check_inter_ms / 1000),
                "--traffic-health-wait", str(health_wait),
                "--traffic-poll-interval", str(poll_interval),
                *server_args,
            ],
        )  # fmt: skip
        tag, application, bucket = unique("web"), unique("http-service"), unique("bundles").lower()
        fleet = cls(workdir, haproxy, server, [], tag, application, bucket)
        try:
            server.start()
            for name, port in zip(names, ports, strict=True):
                host = Host(server, name, workdir / name, private_dirs=[SERVICE_DIR])
                fleet.hosts.append(host)
                host.boot()
                host.path(f"{SERVICE_DIR}/service.conf").write_text(f"NAME={name}\nPORT={port}\n")

            def key(server: ServerProcess, user_arn: str, instance: str) -> tuple[str, str]:
                return server.store_access_key(user_arn, instance, "zero-downtime test instance")

            with ThreadPoolExecutor(count) as pool:
                list(pool.map(lambda host: register_host(host, key, fleet.tag), fleet.hosts))
                list(pool.map(lambda host: start_hosts([host]), fleet.hosts))
        except BaseException:
            fleet.stop()
            raise
        return fleet

    def group(self, traffic_control: bool) -> str:
        """The deployment group behind HAProxy (``traffic_control``) or without a load balancer."""
        if traffic_control not in self.groups:
            extra: dict[str, Any] = {}
            if traffic_control:
                extra = {
                    "deploymentStyle": {
                        "deploymentType": "IN_PLACE",
                        "deploymentOption": "WITH_TRAFFIC_CONTROL",
                    },
                    "loadBalancerInfo": {"targetGroupInfoList": [{"name": f"haproxy:{BACKEND}"}]},
                }
            self.groups[traffic_control] = create_group(self.server, self.application, self.tag, **extra)
        return self.groups[traffic_control]

    def create_deployment(
        self,
        version: str,
        *,
        traffic_control: bool = True,
        config: str = "CodeDeployDefault.OneAtATime",
        fail_validate_on: Iterable[str] = (),
    ) -> str:
        data = service_bundle(self.workdir, version, fail_validate_on)
        location = upload(self.server, data, f"http-service/{unique(version)}.tgz", self.bucket)
        return self.server.client("codedeploy").create_deployment(
            applicationName=self.application,
            deploymentGroupName=self.group(traffic_control),
            deploymentConfigName=config,
            revision={"revisionType": "S3", "s3Location": location},
        )["deploymentId"]

    def deploy(self, version: str, timeout: float = 120.0, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        """Deploy ``version`` (keyword arguments as for ``create_deployment``) and wait for its end."""
        deployment_id = self.create_deployment(version, **kwargs)
        return deployment_id, wait_for_deployment(self.server, deployment_id, timeout=timeout)

    def all_in_service(self, timeout: float = 20.0) -> None:
        """Make every server of the backend ready (as a previous test may have left one out) and wait
        until HAProxy reports each of them UP."""
        for host in self.hosts:
            runtime_command(self.haproxy.stats_address, f"set server {BACKEND}/{host.name} state ready")

        def all_up() -> bool:
            stats = server_stats(self.haproxy)
            return all(stats[h.name]["status"] == "UP" for h in self.hosts)

        wait_for(all_up, timeout=timeout, interval=0.05, message="every server UP in HAProxy")

    def hooks_run(self, host: Host, deployment_id: str) -> list[tuple[str, str]]:
        """The hook scripts ``host`` ran for ``deployment_id``: (lifecycle event, version of the revision
        the script came from), in the order they ran (the revision's ``events.log``)."""
        path = host.path(f"{SERVICE_DIR}/events.log")
        lines = path.read_text().splitlines() if path.exists() else []
        return [
            (event, version)
            for event, deployment, version in map(str.split, lines)
            if deployment == deployment_id
        ]

    def service_log(self, host: Host) -> str:
        path = host.path(f"{SERVICE_DIR}/service.log")
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        """Stop every service, agent and host, HAProxy and the server."""
        for host in self.hosts:
            if host.holder is not None and host.holder.poll() is None:
                _kill_service(host)
            host.shutdown()
        self.haproxy.stop()
        self.server.stop()


def _kill_service(host: Host) -> None:
    pid_file = host.path(f"{SERVICE_DIR}/service.pid")
    with contextlib.suppress(OSError, ValueError):  # not running
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()

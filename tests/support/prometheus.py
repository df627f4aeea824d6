"""A real Prometheus (and Alertmanager) from Debian, scraping metrics a test controls, for alarm tests.

``MetricsExporter.start()`` is a threaded HTTP server whose ``GET /metrics`` answers the Prometheus text
format with the samples the test sets: ``set("http_requests_total", 12, code="500")``, ``inc(...)``,
``remove(...)``; ``target`` is its ``host:port`` and ``scrapes`` counts the scrapes it answered. Any
other HTTP endpoint exposing metrics (a deployed application) can be a target too.

``Prometheus.start(workdir, targets=[...], rules=RULES_YAML)`` writes a configuration (one job
``test`` scraping the targets, short scrape and evaluation intervals, the rule file written from
``rules``, an Alertmanager when given), runs Debian's ``prometheus`` on a free loopback port with its
TSDB in ``workdir``, and returns once ``/-/ready`` answers. ``set_rules(text)`` rewrites the rule file
and reloads (``POST /-/reload``, which returns when the reload is done); ``wait_until_scraped()`` waits
for the next complete scrape of every target, so a value just set is in Prometheus; ``rule(name)``,
``query(expr)`` read the API. ``stop()`` ends it; its log is ``log()``.

``Alertmanager.start(workdir)`` runs Debian's ``prometheus-alertmanager`` (clustering off, one receiver
that sends nothing); give its ``address`` to ``Prometheus.start(alertmanager=...)``. ``silence(...)``
adds a silence through its API.

Nothing here sleeps a fixed time: every wait polls an answer with a deadline.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from support.server import free_port, wait_for

PROMETHEUS = os.environ.get("OPENDEPLOY_TEST_PROMETHEUS", "/usr/bin/prometheus")
ALERTMANAGER = os.environ.get("OPENDEPLOY_TEST_ALERTMANAGER", "/usr/bin/prometheus-alertmanager")
START_TIMEOUT = 30.0
INTERVAL = "250ms"  # scrape and rule evaluation: an alert fires within about half a second


def unavailable_reason() -> str | None:
    """Why Prometheus tests cannot run here, or None (``scripts/system-deps`` installs it)."""
    if not shutil.which(PROMETHEUS):
        return f"prometheus not installed at {PROMETHEUS} (run scripts/system-deps as root)"
    return None


def alertmanager_unavailable_reason() -> str | None:
    if not shutil.which(ALERTMANAGER):
        return f"prometheus-alertmanager not installed at {ALERTMANAGER} (run scripts/system-deps as root)"
    return None


LabelSet = tuple[tuple[str, str], ...]


class MetricsExporter:
    """Samples the test controls, served at ``/metrics`` (see the module docstring)."""

    def __init__(self, port: int = 0) -> None:
        self._samples: dict[tuple[str, LabelSet], float] = {}
        self._lock = threading.Lock()
        self._scraped = threading.Condition(self._lock)
        self.scrapes = 0
        self._server = _QuietHTTPServer(("127.0.0.1", port), _exporter_handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="metrics-exporter", daemon=True
        )

    @classmethod
    def start(cls, port: int = 0) -> MetricsExporter:
        exporter = cls(port)
        exporter._thread.start()
        return exporter

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def set(self, name: str, value: float, labels: Mapping[str, str] | None = None, **more: str) -> None:
        with self._lock:
            self._samples[(name, _label_set(labels, more))] = float(value)

    def inc(
        self, name: str, amount: float = 1.0, labels: Mapping[str, str] | None = None, **more: str
    ) -> None:
        key = (name, _label_set(labels, more))
        with self._lock:
            self._samples[key] = self._samples.get(key, 0.0) + amount

    def remove(self, name: str, labels: Mapping[str, str] | None = None, **more: str) -> None:
        with self._lock:
            self._samples.pop((name, _label_set(labels, more)), None)

    def text(self) -> str:
        with self._lock:
            lines = [
                f"{name}{_format_labels(labels)} {_format_value(value)}"
                for (name, labels), value in sorted(self._samples.items())
            ]
        return "".join(line + "\n" for line in lines)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _served(self) -> None:
        with self._lock:
            self.scrapes += 1
            self._scraped.notify_all()


def _label_set(labels: Mapping[str, str] | None, more: Mapping[str, str]) -> LabelSet:
    return tuple(sorted({**(labels or {}), **more}.items()))


def _format_labels(labels: LabelSet) -> str:
    if not labels:
        return ""
    escaped = (
        f'{key}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for key, value in labels
    )
    return "{" + ",".join(escaped) + "}"


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def _exporter_handler(exporter: MetricsExporter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            data = exporter.text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            exporter._served()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class Prometheus:
    """One Prometheus process and its configuration (see the module docstring)."""

    def __init__(
        self,
        workdir: Path,
        *,
        targets: Sequence[str] = (),
        rules: str = "",
        interval: str = INTERVAL,
        alertmanager: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.targets = list(targets)
        self.rules_text = rules
        self.interval = interval
        self.alertmanager = alertmanager
        self.port = free_port()
        self.config_file = workdir / "prometheus.yml"
        self.rules_file = workdir / "rules.yml"
        self.log_file = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=5.0)

    @classmethod
    def start(cls, workdir: Path, **kwargs: Any) -> Prometheus:
        """Write the configuration and start Prometheus (keyword arguments as for the constructor)."""
        workdir.mkdir(parents=True, exist_ok=True)
        prometheus = cls(workdir, **kwargs)
        prometheus.write_config()
        prometheus._spawn()
        return prometheus

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        targets = ", ".join(f'"{target}"' for target in self.targets)
        alerting = (
            "alerting:\n  alertmanagers:\n    - static_configs:\n"
            f'        - targets: ["{self.alertmanager}"]\n'
            if self.alertmanager
            else ""
        )
        return (
            "global:\n"
            f"  scrape_interval: {self.interval}\n"
            f"  scrape_timeout: {self.interval}\n"
            f"  evaluation_interval: {self.interval}\n"
            f"rule_files: [{str(self.rules_file)!r}]\n"
            f"{alerting}"
            "scrape_configs:\n"
            "  - job_name: test\n"
            "    static_configs:\n"
            f"      - targets: [{targets}]\n"
        )

    def write_config(self) -> None:
        self.config_file.write_text(self.config())
        self.rules_file.write_text(self.rules_text or "groups: []\n")

    def set_rules(self, rules: str) -> None:
        """Replace the rule file and reload; raises if Prometheus refuses the rules."""
        self.rules_text = rules
        self.rules_file.write_text(rules or "groups: []\n")
        answer = self.http.post("/-/reload")
        if answer.status_code != 200:
            raise AssertionError(f"prometheus refused the reload: {answer.text}\n{self.log()}")
        if self.alertmanager:
            # A reload drops the Alertmanager until discovery finds it again (up to 5 s); alerts sent
            # meanwhile are lost until resent.
            wait_for(
                lambda: self.api("/api/v1/alertmanagers")["activeAlertmanagers"],
                timeout=START_TIMEOUT,
                interval=0.05,
                message="prometheus's alertmanager after the reload",
            )

    def api(self, path: str, **params: str) -> Any:
        answer = self.http.get(path, params=params)
        body = answer.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path}: {body}")
        return body["data"]

    def query(self, expression: str) -> Any:
        return self.api("/api/v1/query", query=expression)

    def rule(self, name: str) -> dict[str, Any] | None:
        """The alerting or recording rule called ``name`` as ``/api/v1/rules`` shows it."""
        for group in self.api("/api/v1/rules")["groups"]:
            for rule in group["rules"]:
                if rule["name"] == name:
                    return dict(rule)
        return None

    def wait_until_scraped(self, *, timeout: float = 10.0) -> None:
        """Wait until every target has been scraped by a scrape that began after this call (so values
        set before it are in Prometheus: a target's lastScrape is its last finished scrape's start).
        Prometheus's first scrapes come about 5 s after it starts (its discovery updates that often)."""
        start = datetime.now(UTC)

        def scraped() -> bool:
            active = self.api("/api/v1/targets")["activeTargets"]
            return bool(active) and all(
                target["health"] == "up" and datetime.fromisoformat(target["lastScrape"]) > start
                for target in active
            )

        wait_for(scraped, timeout=timeout, interval=0.05, message="prometheus scrapes")

    def wait_for_rule(self, name: str, state: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the alerting rule ``name`` is ``state`` (inactive, pending, firing)."""

        def reached() -> dict[str, Any] | None:
            rule = self.rule(name)
            return rule if rule is not None and rule.get("state") == state else None

        found: dict[str, Any] = wait_for(reached, timeout=timeout, interval=0.05, message=f"{name} {state}")
        return found

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        self.http.close()
        _end(self.process)
        self.process = None

    def _spawn(self) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                    f"--rules.alert.resend-delay={self.interval}",  # Alertmanager sees changes at once
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        _wait_ready(self.process, self.http, "prometheus", self.log)


class Alertmanager:
    """One Alertmanager process with a receiver that sends nothing (see the module docstring)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.config_file = workdir / "alertmanager.yml"
        self.log_file = workdir / "alertmanager.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=5.0)

    @classmethod
    def start(cls, workdir: Path) -> Alertmanager:
        workdir.mkdir(parents=True, exist_ok=True)
        manager = cls(workdir)
        manager.config_file.write_text(
            'route:\n  receiver: "nowhere"\n  group_wait: 0s\nreceivers:\n  - name: "nowhere"\n'
        )
        with manager.log_file.open("ab") as log:
            manager.process = subprocess.Popen(
                [
                    ALERTMANAGER,
                    f"--config.file={manager.config_file}",
                    f"--storage.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{manager.port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        _wait_ready(manager.process, manager.http, "alertmanager", manager.log)
        return manager

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        answer = self.http.get("/api/v2/alerts", params=filters)
        answer.raise_for_status()
        alerts: list[dict[str, Any]] = answer.json()
        return alerts

    def silence(self, matchers: Mapping[str, str], *, minutes: float = 10.0) -> str:
        """Silence the alerts whose labels equal ``matchers``; returns the silence's id."""
        now = datetime.now(UTC)
        answer = self.http.post(
            "/api/v2/silences",
            json={
                "matchers": [
                    {"name": name, "value": value, "isRegex": False, "isEqual": True}
                    for name, value in matchers.items()
                ],
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
                "createdBy": "opendeploy tests",
                "comment": "test",
            },
        )
        answer.raise_for_status()
        silence_id: str = answer.json()["silenceID"]
        return silence_id

    def expire(self, silence_id: str) -> None:
        self.http.delete(f"/api/v2/silence/{silence_id}").raise_for_status()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        self.http.close()
        _end(self.process)
        self.process = None


def _wait_ready(process: subprocess.Popen[bytes], http: httpx.Client, what: str, log: Any) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}:\n{log()}")
        try:
            return http.get("/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout=START_TIMEOUT, interval=0.05, message=f"{what} /-/ready")


def _end(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)

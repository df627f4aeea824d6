"""A real ``opendeploy server`` process for tests, with its own data directory, port and AWS profile.

``ServerProcess(workdir, database_url=None).start()`` runs ``opendeploy init`` into temporary AWS
config and credential files, then starts the server as a subprocess and waits until it answers.
Clients reach it exactly as users do: ``client("codedeploy")`` is boto3 with the profile, and
``aws(...)`` runs the ``aws`` CLI from PyPI as a subprocess with the profile's environment.
``kill9()`` and ``restart()`` exercise durability.

By default the server speaks plain HTTP (``--tls off``), as tests always have. ``tls=True`` gives it its
self-signed certificate: ``endpoint`` is then ``https://…``, the profile trusts the certificate
(``ca_bundle``, written by ``opendeploy init``) and ``verify`` is what httpx needs to trust it too.
``master_key_file`` keeps the master key outside the data directory. ``extra_env`` is added to the
server process's (otherwise clean, AWS_*-free) environment, e.g. ``AWS_ENDPOINT_URL_CLOUDWATCH`` and
credentials pointing its AWS clients at a moto server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.session
import httpx

PROFILE = "opendeploy"
DEFAULT_PAGE_SIZE = 10  # small, so tests reach a second page with few items
START_TIMEOUT = 60.0
AWS_CLI = Path(sys.executable).with_name("aws")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    condition: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05, message: str = ""
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


def clean_environment() -> dict[str, str]:
    """This process's environment without any AWS_* settings that could redirect a client."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


class ServerProcess:
    """One server subprocess and the AWS profile that reaches it."""

    def __init__(
        self,
        workdir: Path,
        database_url: str | None = None,
        *,
        region: str = "us-east-1",
        account_id: str = "111122223333",
        page_size: int = DEFAULT_PAGE_SIZE,
        extra_args: Sequence[str] = (),
        tls: bool = False,
        master_key_file: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.database_url = database_url
        self.region = region
        self.account_id = account_id
        self.page_size = page_size
        self.extra_args = list(extra_args)
        self.tls = tls
        self.master_key_file = master_key_file
        self.extra_env = dict(extra_env or {})
        self.config_file = self.workdir / "aws-config"
        self.credentials_file = self.workdir / "aws-credentials"
        self.log_file = self.workdir / "server.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._initialised = False
        self._clients: dict[str, Any] = {}

    # --- locations -------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def certificate_file(self) -> Path | None:
        """The server's self-signed TLS certificate (with ``tls=True``), which clients trust."""
        return self.data_dir / "server-tls.crt" if self.tls else None

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx's ``verify`` for this server: trusting its certificate (``tls=True``), else the default."""
        return ssl.create_default_context(cafile=str(self.certificate_file)) if self.tls else True

    @property
    def backend(self) -> str:
        return "postgresql" if self.database_url else "sqlite"

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses (``aws``, agents) that should use this server's profile."""
        env = clean_environment()
        env.update(
            AWS_CONFIG_FILE=str(self.config_file),
            AWS_SHARED_CREDENTIALS_FILE=str(self.credentials_file),
            AWS_PROFILE=PROFILE,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PAGER="",
            AWS_RETRY_MODE="standard",
            AWS_MAX_ATTEMPTS="1",
        )
        return env

    def _data_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir), "--region", self.region, "--account-id", self.account_id]
        if self.database_url:
            args += ["--database-url", self.database_url]
        if self.master_key_file is not None:
            args += ["--master-key-file", str(self.master_key_file)]
        if not self.tls:
            args += ["--tls", "off"]
        return args

    # --- lifecycle -------------------------------------------------------------------------------

    def init(self) -> subprocess.CompletedProcess[str]:
        """Run ``opendeploy init`` into this server's temporary AWS files."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "opendeploy",
                "init",
                *self._data_args(),
                "--endpoint-url",
                self.endpoint,
                "--aws-config-file",
                str(self.config_file),
                "--aws-credentials-file",
                str(self.credentials_file),
            ],
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"opendeploy init failed:\n{result.stdout}\n{result.stderr}")
        self._initialised = True
        return result

    def start(self, *, init: bool = True, timeout: float = START_TIMEOUT) -> ServerProcess:
        """Start the server (running ``init`` first, once, unless ``init=False``); wait until it answers."""
        if init and not self._initialised:
            self.init()
        self._initialised = True  # without init the server's first start creates key and profile
        for attempt in range(3):
            self._spawn()
            try:
                self.wait_until_ready(timeout)
                return self
            except AssertionError:
                in_use = "address already in use" in self.log_text().lower()
                self.kill9()
                if not in_use or attempt == 2:
                    raise AssertionError(f"server did not start; log:\n{self.log_text()}") from None
                self.port = free_port()  # another process took the port: try a new one
        return self

    def _spawn(self) -> None:
        command = [
            sys.executable,
            "-m",
            "opendeploy",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--page-size",
            str(self.page_size),
            *self._data_args(),
            "--aws-config-file",
            str(self.config_file),
            "--aws-credentials-file",
            str(self.credentials_file),
            *self.extra_args,
        ]
        log = self.log_file.open("ab")
        log.write(f"\n=== start: {' '.join(command)}\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_environment() | self.extra_env,
            start_new_session=True,
        )
        log.close()

    def wait_until_ready(self, timeout: float = START_TIMEOUT) -> None:
        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(f"server exited during start; log:\n{self.log_text()}")
            try:
                return (
                    httpx.get(f"{self.endpoint}/health", timeout=1.0, verify=self.verify).status_code == 200
                )
            except (httpx.HTTPError, OSError):  # OSError: the certificate is not made yet (first start)
                return False

        wait_for(ready, timeout=timeout, interval=0.1, message=f"server on {self.endpoint}")

    def wait_for_polls_waiting(self, count: int, timeout: float = 20.0) -> None:
        """Wait until at least ``count`` agents' long polls are held by the server (its ``/health``)."""

        def held() -> bool:
            health = httpx.get(f"{self.endpoint}/health", timeout=5.0, verify=self.verify)
            return health.json()["agentPollsWaiting"] >= count

        wait_for(held, timeout=timeout, interval=0.05, message=f"{count} long poll(s) waiting")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        self._clients.clear()  # their pooled connections lead to the old process
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server with SIGTERM (SIGKILL if it does not exit in time)."""
        self._clients.clear()
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()

    def restart(self, *, kill: bool = False) -> ServerProcess:
        """Stop (or, with ``kill``, SIGKILL) and start again on the same data and port."""
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start()

    # --- clients ---------------------------------------------------------------------------------

    def session(self) -> boto3.Session:
        """A boto3 session that reads only this server's profile files."""
        core = botocore.session.Session()
        core.set_config_variable("config_file", str(self.config_file))
        core.set_config_variable("credentials_file", str(self.credentials_file))
        if self.tls:
            # The profile's ca_bundle, even if this process has an AWS_CA_BUNDLE (which would win).
            core.set_config_variable("profile", PROFILE)
            core.set_config_variable("ca_bundle", core.get_scoped_config().get("ca_bundle"))
        return boto3.Session(botocore_session=core, profile_name=PROFILE)

    def client(self, service: str = "codedeploy", **config: Any) -> Any:
        """A boto3 client for ``service`` configured by the profile alone (no endpoint flags).

        Keyword arguments are ``botocore.config.Config`` settings; without them the client is cached.
        """
        if not config and service in self._clients:
            return self._clients[service]
        settings = {
            "retries": {"max_attempts": 1, "mode": "standard"},
            "read_timeout": 60,
            "connect_timeout": 5,
        }
        settings.update(config)
        client = self.session().client(service, config=botocore.config.Config(**settings))
        if not config:
            self._clients[service] = client
        return client

    def raw_client(self, service: str = "codedeploy") -> Any:
        """A boto3 client without client-side parameter validation: it sends what it is given, so
        tests can check the server's own validation."""
        key = f"{service}/raw"
        if key not in self._clients:
            self._clients[key] = self.session().client(
                service,
                config=botocore.config.Config(
                    parameter_validation=False, retries={"max_attempts": 1, "mode": "standard"}
                ),
            )
        return self._clients[key]

    def store_access_key(
        self, principal_arn: str, instance_name: str | None = None, description: str = ""
    ) -> tuple[str, str]:
        """A non-administrator access key for ``principal_arn`` (identifying the on-premises instance
        ``instance_name``), written straight into the server's store as its IAM API would: (id, secret).
        """
        from opendeploy.settings import Settings
        from opendeploy.store.access_keys import create_access_key
        from opendeploy.store.db import Database
        from opendeploy.store.secrets import SecretBox

        database = Database(
            Settings(data_dir=self.data_dir, database_url=self.database_url).effective_database_url
        )
        try:
            with database.transaction() as session:
                key = create_access_key(
                    session,
                    SecretBox.load_or_create(self.data_dir, self.master_key_file),
                    principal_arn=principal_arn,
                    instance_name=instance_name,
                    now=time.time(),
                    description=description,
                )
        finally:
            database.dispose()
        return key.access_key_id, key.secret_access_key

    def credentials(self) -> tuple[str, str]:
        creds = self.session().get_credentials()
        return creds.access_key, creds.secret_key

    def aws(
        self, *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``aws <args>`` (the CLI from PyPI) with this server's profile; JSON output."""
        return subprocess.run(
            [str(AWS_CLI), "--output", "json", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def aws_json(self, *args: str, input: str | None = None) -> Any:
        """Run ``aws <args>``, require success, and parse its JSON output (``None`` if empty)."""
        result = self.aws(*args, input=input)
        if result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return json.loads(result.stdout) if result.stdout.strip() else None

    # --- logs ------------------------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        regex = re.compile(pattern)
        return wait_for(lambda: regex.search(self.log_text()), timeout=timeout, message=f"log /{pattern}/")

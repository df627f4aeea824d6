"""A real moto server process standing in for AWS-only services (ELB, ELBv2, CloudWatch, Lambda, ECS…).

``MotoServer().start()`` runs ``moto_server`` on a free loopback port and waits until it answers;
``stop()`` ends it. ``env`` is the environment that points any AWS SDK at it the standard way
(``AWS_ENDPOINT_URL``, dummy keys, a region, no profile files of the machine's), ``client(service)``
is a boto3 client for the test's own setup calls, and ``reset()`` empties every backend.

Use one per test module, e.g.::

    @pytest.fixture(scope="module")
    def moto(tmp_path_factory):
        with MotoServer(tmp_path_factory.mktemp("moto")) as server:
            yield server
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import botocore.config
import httpx

from support.server import clean_environment, free_port

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
REGION = "us-east-1"
ACCESS_KEY = "AKIAMOTOTESTKEY00000"
SECRET_KEY = "moto-test-secret"
START_TIMEOUT = 30.0


class MotoServer:
    """One ``moto_server`` subprocess on 127.0.0.1 and a free port; its output goes to ``moto.log``."""

    def __init__(self, workdir: Path, *, region: str = REGION) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.region = region
        self.port = free_port()
        self.log_file = self.workdir / "moto.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """AWS settings (only) that point an SDK at this server; merge into a clean environment."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": str(self.workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.workdir / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service_name: str, region: str | None = None) -> Any:
        """A boto3 client for test setup, configured explicitly (not through the environment)."""
        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=region or self.region
        ).client(
            service_name,
            endpoint_url=self.endpoint,
            config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 1}),
        )

    def start(self) -> MotoServer:
        for attempt in range(3):
            log = self.log_file.open("ab")
            try:
                self.process = subprocess.Popen(
                    [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=clean_environment(),
                )
            finally:
                log.close()
            if self._wait_until_ready():
                return self
            self.stop()
            if attempt < 2:
                self.port = free_port()  # another process may have taken the port
        raise AssertionError(f"moto_server did not start; log:\n{self.log_file.read_text(errors='replace')}")

    def _wait_until_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.endpoint}/moto-api/data.json", timeout=1.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        return False

    def reset(self) -> None:
        """Empty every moto backend (all services, accounts and regions)."""
        httpx.post(f"{self.endpoint}/moto-api/reset", timeout=10.0).raise_for_status()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

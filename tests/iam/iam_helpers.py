"""Helpers for the IAM API tests: servers with quick agent polls, clients signed with a given key,
and ``opendeploy`` / ``aws`` subprocesses with a server's profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.config
import botocore.session

from opendeploy.data import BOTOCORE_DATA
from support.server import AWS_CLI, ServerProcess

POLL_HOLD = ["--poll-hold", "1"]  # an agent's poll with nothing to do answers at once
KEY_FORGOTTEN_WITHIN = 20.0  # servers reuse a looked-up key for a few seconds (two caches of 5 s)


def start_server(workdir: Path, database_url: str | None = None) -> ServerProcess:
    return ServerProcess(workdir, database_url, extra_args=POLL_HOLD).start()


def _config() -> botocore.config.Config:
    return botocore.config.Config(
        retries={"max_attempts": 1, "mode": "standard"}, read_timeout=30, connect_timeout=5
    )


def agent_client(server: ServerProcess, access_key_id: str, secret: str) -> Any:
    """The command service as an agent signing with this key sees it."""
    session = botocore.session.Session()
    session.get_component("data_loader").search_paths.insert(0, str(BOTOCORE_DATA))
    return session.create_client(
        "codedeploy-commands",
        region_name=server.region,
        endpoint_url=server.endpoint,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        config=_config(),
    )


def key_client(server: ServerProcess, service: str, access_key_id: str, secret: str, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` at the server, signed with the given key."""
    options: dict[str, Any] = {"endpoint_url": server.endpoint, "region_name": server.region, **kwargs}
    return server.session().client(
        service, aws_access_key_id=access_key_id, aws_secret_access_key=secret, config=_config(), **options
    )


def run_opendeploy(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opendeploy", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_aws(server: ServerProcess, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``aws <args>`` with the server's profile, run in ``cwd``."""
    return subprocess.run(
        [str(AWS_CLI), *args], env=server.env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def policy_document(sid: str = "Allow", action: str = "s3:GetObject", effect: str = "Allow") -> str:
    """A small valid identity policy (one statement named ``sid``, letters and digits only)."""
    statement = {"Sid": sid, "Effect": effect, "Action": action, "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

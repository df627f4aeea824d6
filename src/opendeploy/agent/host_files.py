"""The files that make a machine an opendeploy host, all in one configuration directory.

```
<config_dir>/codedeploy.onpremises.yml   who the host is: its IAM user ARN, access key, region (mode 0600)
<config_dir>/codedeployagent.yml         how the agent runs: server endpoints, root_dir, log_dir, …
<config_dir>/opendeploy-server.crt       the server certificate pinned at registration
```

The default directory is AWS's, ``/etc/codedeploy-agent/conf``, so the layout is familiar and AWS's own
agent could read the same two YAML files. ``opendeploy register`` writes them, ``opendeploy agent``
reads them, ``opendeploy deregister`` removes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from opendeploy.agent.agent_config import DEFAULT_LOG_DIR, DEFAULT_ROOT_DIR
from opendeploy.agent.onpremises_config import (
    ONPREMISES_CONFIG_NAME,
    write_onpremises_config,
    write_private_file,
)

DEFAULT_CONFIG_DIR = Path("/etc/codedeploy-agent/conf")
AGENT_CONFIG_NAME = "codedeployagent.yml"
SERVER_CERTIFICATE_NAME = "opendeploy-server.crt"
DEFAULT_PID_DIR = Path("/opt/codedeploy-agent/state/.pid")


@dataclass(frozen=True)
class HostFiles:
    config_dir: Path

    @property
    def onpremises_config(self) -> Path:
        return self.config_dir / ONPREMISES_CONFIG_NAME

    @property
    def agent_config(self) -> Path:
        return self.config_dir / AGENT_CONFIG_NAME

    @property
    def server_certificate(self) -> Path:
        return self.config_dir / SERVER_CERTIFICATE_NAME

    def all(self) -> tuple[Path, ...]:
        return (self.onpremises_config, self.agent_config, self.server_certificate)

    def existing(self) -> list[Path]:
        return [path for path in self.all() if path.exists()]


@dataclass(frozen=True)
class AgentSettings:
    """What ``codedeployagent.yml`` says, besides where the other two files are."""

    deploy_control_endpoint: str
    s3_endpoint_override: str | None
    root_dir: Path = DEFAULT_ROOT_DIR
    log_dir: Path = DEFAULT_LOG_DIR
    pid_dir: Path = DEFAULT_PID_DIR
    wait_between_runs: int = 1
    max_revisions: int = 5
    github_endpoint_override: str | None = None


def render_agent_config(files: HostFiles, settings: AgentSettings) -> str:
    """``codedeployagent.yml`` in the AWS agent's symbol-key form (``:root_dir: …``)."""
    values: dict[str, object] = {
        "log_aws_wire": False,
        "log_dir": str(settings.log_dir),
        "pid_dir": str(settings.pid_dir),
        "program_name": "codedeploy-agent",
        "root_dir": str(settings.root_dir),
        "verbose": False,
        "wait_between_runs": settings.wait_between_runs,
        "max_revisions": settings.max_revisions,
        "on_premises_config_file": str(files.onpremises_config),
        "deploy_control_endpoint": settings.deploy_control_endpoint,
        "deployment_signer_certificate": str(files.server_certificate),
    }
    if settings.s3_endpoint_override:
        values["s3_endpoint_override"] = settings.s3_endpoint_override
    if settings.github_endpoint_override:
        values["github_endpoint_override"] = settings.github_endpoint_override
    lines = ["---"]
    for key, value in values.items():
        # safe_dump quotes whatever YAML would misread (a colon, a leading '*', …).
        rendered = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        lines.append(f":{key}: {rendered}")
    return "\n".join(lines) + "\n"


def write_host_files(
    files: HostFiles,
    *,
    iam_user_arn: str,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    certificate_pem: bytes,
    settings: AgentSettings,
) -> None:
    """Write all three files (the identity file readable by root only)."""
    files.config_dir.mkdir(parents=True, exist_ok=True)
    write_private_file(files.server_certificate, certificate_pem.decode("ascii"), mode=0o644)
    write_private_file(files.agent_config, render_agent_config(files, settings), mode=0o644)
    write_onpremises_config(
        files.onpremises_config,
        iam_user_arn=iam_user_arn,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        region=region,
    )


def remove_host_files(files: HostFiles) -> list[Path]:
    """Remove the three files; returns those that were there."""
    removed = []
    for path in files.all():
        try:
            os.unlink(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed

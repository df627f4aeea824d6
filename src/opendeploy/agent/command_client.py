"""The agent's client of the command service (``codedeploy-commands``), built by botocore from the model.

botocore does not ship this service, so its model comes from ``opendeploy.data.BOTOCORE_DATA``; requests
are then serialised, SigV4-signed with the instance's own key and parsed by botocore exactly as for any
AWS service. ``CommandServiceClient`` gives the four calls the agent makes plain names and types.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import botocore.session
from botocore.config import Config

from opendeploy import __version__
from opendeploy.agent.diagnostics import Diagnostics
from opendeploy.agent.onpremises_config import InstanceIdentity
from opendeploy.data import BOTOCORE_DATA

SERVICE_NAME = "codedeploy-commands"
AGENT_VERSION_HEADER = "x-amz-codedeploy-agent-version"
AGENT_VERSION = f"OPENDEPLOY_{__version__}"
ENVELOPE_PAYLOAD_LIMIT = 8192  # the model's limit on Envelope.Payload


@dataclass(frozen=True)
class HostCommand:
    """One lifecycle event the server asks this host to run."""

    host_command_identifier: str
    host_identifier: str
    deployment_execution_id: str
    command_name: str


@dataclass(frozen=True)
class Envelope:
    format: str
    payload: str


@dataclass(frozen=True)
class SpecificationResponse:
    deployment_system: str | None
    generic_envelope: Envelope | None


def default_endpoint(region: str) -> str:
    """AWS's command service endpoint for ``region``: used when ``:deploy_control_endpoint:`` is unset."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://codedeploy-commands.{region}.{suffix}"


def create_botocore_client(
    identity: InstanceIdentity,
    endpoint: str,
    *,
    read_timeout: float,
    connect_timeout: float = 10.0,
    proxy_uri: str | None = None,
    ca_bundle: str | None = None,
) -> Any:
    """A botocore ``codedeploy-commands`` client signing with the instance's key; it never retries on
    its own (the agent retries, within each call's time budget). ``ca_bundle``: the certificate
    authorities to trust for an HTTPS endpoint (default: botocore's, i.e. ``AWS_CA_BUNDLE`` or certifi)."""
    session = botocore.session.Session()
    loader = session.get_component("data_loader")
    if str(BOTOCORE_DATA) not in loader.search_paths:
        loader.search_paths.insert(0, str(BOTOCORE_DATA))
    config = Config(
        read_timeout=read_timeout,
        connect_timeout=connect_timeout,
        retries={"max_attempts": 1, "mode": "standard"},
        user_agent_extra=f"opendeploy-agent/{__version__}",
        proxies={"http": proxy_uri, "https": proxy_uri} if proxy_uri else None,
    )
    client = session.create_client(
        SERVICE_NAME,
        region_name=identity.region,
        endpoint_url=endpoint,
        aws_access_key_id=identity.access_key_id,
        aws_secret_access_key=identity.secret_access_key,
        aws_session_token=identity.session_token,
        config=config,
        verify=ca_bundle,
    )

    def add_version(request: Any, **_: Any) -> None:
        request.headers[AGENT_VERSION_HEADER] = AGENT_VERSION

    client.meta.events.register(f"before-sign.{SERVICE_NAME}", add_version)
    return client


def fit_diagnostics(diagnostics: Diagnostics, limit: int = ENVELOPE_PAYLOAD_LIMIT) -> str:
    """The diagnostics payload, shortened to the envelope's limit: the log tail loses its oldest lines
    first, then the message its end."""
    payload = diagnostics.to_json()
    log, message = diagnostics.log, diagnostics.message
    while len(payload) > limit and log:
        cut = log.find("\n", max(1, len(log) - (len(log) * 3) // 4))
        log = log[cut + 1 :] if cut != -1 else ""
        payload = replace(diagnostics, log=log).to_json()
    while len(payload) > limit and message:
        message = message[: len(message) - max(16, len(payload) - limit)]
        payload = replace(diagnostics, log=log, message=message + "…").to_json()
    return payload


class CommandServiceClient:
    """PollHostCommand, GetDeploymentSpecification, PutHostCommandAcknowledgement, PutHostCommandComplete."""

    def __init__(self, client: Any, host_identifier: str) -> None:
        self._client = client
        self.host_identifier = host_identifier

    def poll(self) -> HostCommand | None:
        """The next command for this host, or ``None`` once the server's long poll ends with nothing."""
        response = self._client.poll_host_command(HostIdentifier=self.host_identifier)
        command = response.get("HostCommand")
        if not command:
            return None
        return HostCommand(
            host_command_identifier=command.get("HostCommandIdentifier", ""),
            host_identifier=command.get("HostIdentifier", ""),
            deployment_execution_id=command.get("DeploymentExecutionId", ""),
            command_name=command.get("CommandName", ""),
        )

    def get_deployment_specification(self, command: HostCommand) -> SpecificationResponse:
        response = self._client.get_deployment_specification(
            DeploymentExecutionId=command.deployment_execution_id, HostIdentifier=self.host_identifier
        )
        specification = response.get("DeploymentSpecification") or {}
        envelope = specification.get("GenericEnvelope")
        return SpecificationResponse(
            response.get("DeploymentSystem"),
            Envelope(envelope.get("Format", ""), envelope.get("Payload", "")) if envelope else None,
        )

    def acknowledge(self, command: HostCommand, *, is_noop: bool) -> str | None:
        """Tell the server the command is being worked on; returns its status as the server sees it."""
        payload = '{"IsCommandNoop":' + ("true" if is_noop else "false") + "}"
        response = self._client.put_host_command_acknowledgement(
            HostCommandIdentifier=command.host_command_identifier,
            Diagnostics={"Format": "JSON", "Payload": payload},
        )
        return response.get("CommandStatus")

    def complete(self, host_command_identifier: str, status: str, diagnostics: Diagnostics) -> None:
        self._client.put_host_command_complete(
            HostCommandIdentifier=host_command_identifier,
            CommandStatus=status,
            Diagnostics={"Format": "JSON", "Payload": fit_diagnostics(diagnostics)},
        )

"""A tiny in-test command service (``CodeDeployCommandService_v20141006``) for the agent's own tests.

It answers the agent's real botocore client over HTTP on 127.0.0.1, the way the server does: commands
are handed out in order, one at a time per deployment, and a command is handed out again until it is
acknowledged; specifications are ``PKCS7/JSON`` envelopes signed with a test key; the first completion
of a command wins. It can be taken down and brought back on the same port to test the agent's backoff.
Everything it saw is recorded for assertions. It checks that requests are SigV4-signed for
``codedeploy-commands`` with the expected key id (the real server also checks the signature itself).
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

TARGET_PREFIX = "CodeDeployCommandService_v20141006."
HOST = "arn:aws:iam::111122223333:user/CodeDeployUser-host-1"
KEY_ID = "AKIATESTHOSTKEY00001"


def new_signer(common_name: str = "test command service") -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def sign_document(document: bytes, key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> str:
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(document)
        .add_signer(certificate, key, hashes.SHA256())
        .sign(serialization.Encoding.PEM, [pkcs7.PKCS7Options.Binary])
        .decode()
    )


@dataclass
class Command:
    identifier: str
    name: str
    execution_id: str
    deployment_id: str
    host_identifier: str
    acked: bool = False
    ack_payload: str | None = None
    completion: tuple[str, dict[str, Any]] | None = None
    completions: int = 0
    deliveries: int = 0


@dataclass
class Deployment:
    spec: dict[str, Any]
    commands: list[Command] = field(default_factory=list)
    envelope: tuple[str, str] | None = None  # (Format, Payload) to send instead of a signed spec


class CommandServiceDouble:
    """Start with ``with CommandServiceDouble(host_identifier, key_id) as service:``."""

    def __init__(self, host_identifier: str, access_key_id: str, *, hold_seconds: float = 0.5) -> None:
        self.host_identifier = host_identifier
        self.access_key_id = access_key_id
        self.hold_seconds = hold_seconds
        self.key, self.certificate = new_signer()
        self.deployments: dict[str, Deployment] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.ack_status = "InProgress"
        self.ack_delay = 0.0
        self.polls_held = 0  # long polls waiting for a command right now
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    # --- what a test sets up ---------------------------------------------------------------------------

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write_certificate(self, path: Path) -> Path:
        path.write_bytes(self.certificate_pem())
        return path

    def add_deployment(
        self, spec: dict[str, Any], events: list[str], *, envelope: tuple[str, str] | None = None
    ) -> list[Command]:
        deployment_id = spec["DeploymentId"].rsplit("/", 1)[-1]
        execution_id = (
            f"CodeDeploy/us-east-1/Test/arn:aws:codedeploy:us-east-1:111122223333:deployment/{deployment_id}"
        )
        deployment = Deployment(spec, envelope=envelope)
        for position, name in enumerate(events):
            deployment.commands.append(
                Command(
                    f"{deployment_id}-{position}-{name}",
                    name,
                    execution_id,
                    deployment_id,
                    self.host_identifier,
                )
            )
        with self._changed:
            self.deployments[execution_id] = deployment
            self._changed.notify_all()
        return deployment.commands

    def all_commands(self) -> list[Command]:
        with self._changed:
            return [c for d in self.deployments.values() for c in d.commands]

    def command(self, identifier: str) -> Command:
        return next(c for c in self.all_commands() if c.identifier == identifier)

    def operations(self) -> list[str]:
        with self._changed:
            return [name for name, _ in self.requests]

    # --- the HTTP side --------------------------------------------------------------------------------

    def _ready(self) -> Command | None:
        for deployment in self.deployments.values():
            for command in deployment.commands:
                if command.completion is None:
                    if not command.acked:
                        return command
                    break  # this deployment's current command is running: its next one waits
        return None

    def handle(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._changed:
            self.requests.append((operation, body))
        if operation == "PollHostCommand":
            if body.get("HostIdentifier") != self.host_identifier:
                return 400, {"__type": "ClientException", "message": "not your host"}
            deadline = time.monotonic() + self.hold_seconds
            with self._changed:
                while (command := self._ready()) is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return 200, {}
                    self.polls_held += 1
                    try:
                        self._changed.wait(remaining)
                    finally:
                        self.polls_held -= 1
                command.deliveries += 1
                return 200, {
                    "HostCommand": {
                        "HostCommandIdentifier": command.identifier,
                        "HostIdentifier": command.host_identifier,
                        "DeploymentExecutionId": command.execution_id,
                        "CommandName": command.name,
                    }
                }
        if operation == "GetDeploymentSpecification":
            deployment = self.deployments.get(body.get("DeploymentExecutionId", ""))
            if deployment is None:
                return 400, {"__type": "ClientException", "message": "no such deployment"}
            if deployment.envelope is not None:
                envelope_format, payload = deployment.envelope
            else:
                envelope_format = "PKCS7/JSON"
                payload = sign_document(json.dumps(deployment.spec).encode(), self.key, self.certificate)
            return 200, {
                "DeploymentSystem": "CodeDeploy",
                "DeploymentSpecification": {
                    "GenericEnvelope": {"Format": envelope_format, "Payload": payload}
                },
            }
        if operation == "PutHostCommandAcknowledgement":
            time.sleep(self.ack_delay)
            with self._changed:
                command = self._find(body["HostCommandIdentifier"])
                if command is None:
                    return 400, {"__type": "ClientException", "message": "no such command"}
                command.acked = True
                command.ack_payload = body.get("Diagnostics", {}).get("Payload")
                self._changed.notify_all()
                status = command.completion[0] if command.completion else self.ack_status
            return 200, {"CommandStatus": status}
        if operation == "PutHostCommandComplete":
            with self._changed:
                command = self._find(body["HostCommandIdentifier"])
                if command is None:
                    return 400, {"__type": "ClientException", "message": "no such command"}
                command.completions += 1
                if command.completion is None:
                    payload = json.loads(body.get("Diagnostics", {}).get("Payload") or "{}")
                    command.completion = (body["CommandStatus"], payload)
                command.acked = True
                self._changed.notify_all()
            return 200, {}
        return 400, {"__type": "UnknownOperationException", "message": operation}

    def _find(self, identifier: str) -> Command | None:
        for deployment in self.deployments.values():
            for command in deployment.commands:
                if command.identifier == identifier:
                    return command
        return None

    def start(self) -> CommandServiceDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                authorization = self.headers.get("Authorization", "")
                target = self.headers.get("X-Amz-Target", "")
                if f"Credential={double.access_key_id}/" not in authorization or (
                    "/codedeploy-commands/aws4_request" not in authorization
                ):
                    status, answer = 400, {"__type": "UnrecognizedClientException", "message": "bad auth"}
                elif not target.startswith(TARGET_PREFIX):
                    status, answer = 400, {"__type": "UnknownOperationException", "message": target}
                else:
                    status, answer = double.handle(target[len(TARGET_PREFIX) :], body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, condition: Any, timeout: float = 20.0, message: str = "") -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {message or condition}")
                self._changed.wait(min(remaining, 0.2))

    def __enter__(self) -> CommandServiceDouble:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


# --- revisions for the tests -------------------------------------------------------------------------


def write_bundle(directory: Path, destination: Path, hooks: dict[str, str]) -> Path:
    """A directory revision: app.txt to ``destination`` and one script per hook event."""
    (directory / "scripts").mkdir(parents=True)
    (directory / "app.txt").write_text("hello from the revision\n")
    lines = ["version: 0.0", "os: linux", "files:", "  - source: app.txt", f"    destination: {destination}"]
    lines.append("hooks:")
    for event, script in hooks.items():
        path = directory / "scripts" / f"{event}.sh"
        path.write_text(script)
        path.chmod(0o755)
        lines += [f"  {event}:", f"    - location: scripts/{event}.sh", "      timeout: 30"]
    (directory / "appspec.yml").write_text("\n".join(lines) + "\n")
    return directory


def spec_for(deployment_id: str, bundle: Path, group_id: str = "dg-poller-1") -> dict[str, Any]:
    return {
        "DeploymentId": f"arn:aws:codedeploy:us-east-1:111122223333:deployment/{deployment_id}",
        "DeploymentGroupId": group_id,
        "DeploymentGroupName": f"{group_id}-name",
        "ApplicationName": "PollerApp",
        "DeploymentCreator": "user",
        "DeploymentType": "IN_PLACE",
        "AppSpecFilename": "appspec.yml",
        "Revision": {
            "RevisionType": "Local Directory",
            "LocalRevision": {"Location": str(bundle), "BundleType": "directory"},
        },
    }

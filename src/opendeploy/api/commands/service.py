"""The command service's HTTP adapter and its five operations.

Requests are awsJson 1.1 (``X-Amz-Target: CodeDeployCommandService_v20141006.<Operation>``), verified
with the server's SigV4 module (signing name ``codedeploy-commands``) and validated against the
committed botocore model. Unlike the CodeDeploy API adapter, this one is asynchronous: a PollHostCommand
waits for work in the event loop, not in a thread, so a thousand agents can hold long polls at once.
Database work runs in worker threads, one short transaction at a time.

Every refusal — a request from no registered instance, a HostIdentifier that is not the signer's, a
command or deployment that is not the signer's — is a ``ClientException`` saying what is wrong, and
changes nothing.

Long polls wait on the wake bus and requests' database steps share the group commit of the server's
engine runtime (``opendeploy.runtime``, which runs them for the server's lifetime); the agent protocol's
transitions are the engine's (``opendeploy.engine``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from opendeploy import engine
from opendeploy.api import awsjson, sigv4
from opendeploy.api.commands import deployment_specification as specification
from opendeploy.api.commands.identity import (
    InstanceIdentity,
    check_host_identifier,
    refused,
    signing_instance,
    still_registered,
)
from opendeploy.api.commands.specification_signing import PKCS7_JSON, SpecificationSigner
from opendeploy.api.errors import ApiError
from opendeploy.api.server_state import ServerState
from opendeploy.data import BOTOCORE_DATA
from opendeploy.domain import cloudtrail_events
from opendeploy.domain.ids import new_request_id
from opendeploy.domain.statuses import HostCommandStatus
from opendeploy.engine import in_transaction
from opendeploy.runtime import EngineRuntime
from opendeploy.store.access_keys import StoredAccessKey
from opendeploy.store.audit_trail import AuditTrail
from opendeploy.store.models import Deployment, DeploymentTarget
from opendeploy.store.prepared import Prepared

log = logging.getLogger(__name__)
T = TypeVar("T")

TARGET_PREFIX = "CodeDeployCommandService_v20141006"
SIGNING_NAME = "codedeploy-commands"
MAX_BODY_BYTES = 64 * 1024  # the largest valid request carries two 8 KiB envelopes
PAYLOAD_LIMIT = 8192
SPECIFICATION_CACHE_SIZE = 1024
KEY_CACHE_SIZE = 100_000


@cache
def command_service_model() -> ServiceModel:
    """botocore's model of the command service, from the copy the project ships."""
    session = botocore.session.Session()
    session.get_component("data_loader").search_paths.insert(0, str(BOTOCORE_DATA))
    return session.get_service_model(SIGNING_NAME)


def _operation_model(operation: str) -> OperationModel:
    model = command_service_model()
    if operation not in model.operation_names:
        raise ApiError("UnknownOperationException", f"Unknown operation {TARGET_PREFIX}.{operation}")
    return model.operation_model(operation)


def _check_constraints(shape: Shape, value: Any, path: str) -> None:
    """The model's string limits botocore's validator leaves to the service: length, pattern, enum."""
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                _check_constraints(member, value[name], f"{path}.{name}" if path else name)
    elif shape.type_name == "string" and isinstance(value, str):
        maximum = shape.metadata.get("max")
        if maximum is not None and len(value) > maximum:
            raise refused(f"{path} is too long ({len(value)} characters; at most {maximum})")
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            raise refused(f"{path} must be one of {', '.join(enum)}, not {value!r}")
        pattern = shape.metadata.get("pattern")
        if pattern and not _compiled(pattern).match(value):
            raise refused(f"{path} {value!r} does not match the pattern {pattern}")


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def validate(operation: str, params: dict[str, Any]) -> None:
    model = _operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    if report.has_errors():
        raise refused(f"Invalid {operation} request: {report.generate_report()}")
    _check_constraints(model.input_shape, params, "")


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def _access_key_id(incoming: sigv4.IncomingRequest) -> str | None:
    """The access key id an Authorization header names (the signature check reports anything wrong)."""
    match = _CREDENTIAL.search(incoming.header("authorization") or "")
    return match.group(1) if match else None


def _content_length(scope: Scope) -> int | None:
    value = dict(scope["headers"]).get(b"content-length", b"")  # dict(): C speed, on every agent request
    return int(value) if value.isdigit() else None


async def _disconnected(receive: Receive) -> None:
    """Return when the client closes the connection (the request's body has been read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


# The agent's reads: recorded only with --audit-agent-requests all.
_READS = frozenset({"PollHostCommand", "GetDeploymentSpecification"})


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


_TARGET = Prepared(
    select(DeploymentTarget.id).where(
        DeploymentTarget.deployment_id == bindparam("deployment_id"),
        DeploymentTarget.target_id == bindparam("name"),
    )
)


class CommandService:
    """The agent command service of one server process (the adapter; the engine runs in ``runtime``)."""

    def __init__(self, state: ServerState, runtime: EngineRuntime) -> None:
        self.state = state
        self.settings = state.settings
        self.signer = SpecificationSigner.load_or_create(state.settings.data_dir, state.secrets)
        self.bus = runtime.bus
        self.audit_trail: AuditTrail | None = None  # set by the application that serves it
        self._specifications: OrderedDict[str, str] = OrderedDict()
        self._specifications_lock = threading.Lock()
        self._building = threading.Lock()
        self._keys: dict[str, StoredAccessKey] = {}
        self._keys_lock = threading.Lock()
        # SQLite has one writer at a time; PostgreSQL commits in parallel.
        self._limiter = anyio.CapacityLimiter(4 if state.database.sqlite else 8)
        self._group = runtime.group_commit  # requests' steps share transactions

    # --- HTTP -----------------------------------------------------------------------------------------

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking work in a worker thread, a few at once: more threads would only queue for the
        database and take turns with the interpreter lock, making every transaction (and the locks it
        holds) last longer."""
        return await anyio.to_thread.run_sync(function, *args, limiter=self._limiter)

    async def _step(self, step: Callable[[Session], T]) -> T:
        """Run one request's database work as one step of a group transaction; answered once that
        transaction has committed."""
        return await self._group.run(step)

    async def certificate(self, _request: Request) -> Response:
        """The certificate deployment specifications are signed with, for agents to pin (PEM)."""
        return Response(self.signer.certificate_pem, media_type="application/x-pem-file")

    async def serve(self, scope: Scope, receive: Receive, send: Send, operation: str) -> None:
        """Serve one request as a plain ASGI application: agents make most of the server's requests, and
        the web framework's routing, request and response objects cost as much as the work itself.

        A body declared or found larger than the largest valid request is refused without being kept.
        While a long poll waits, the connection is watched: a client that goes away (an agent killed or
        restarted) ends its poll, so no command is handed to a dead connection."""
        body = bytearray()
        declared = _content_length(scope)
        too_large = declared is not None and declared > MAX_BODY_BYTES
        while not too_large:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            too_large = len(body) > MAX_BODY_BYTES
            if not message.get("more_body", False):
                break
        status, payload, request_id = await self._answer(
            scope, b"" if too_large else bytes(body), operation, receive, too_large=too_large
        )
        headers = [
            (b"content-type", awsjson.CONTENT_TYPE.encode()),
            (b"content-length", str(len(payload)).encode()),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        if too_large:
            headers.append((b"connection", b"close"))  # the rest of the body is never read
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _answer(
        self,
        scope: Scope,
        body: bytes,
        operation: str,
        receive: Receive,
        *,
        too_large: bool = False,
    ) -> tuple[int, bytes, str]:
        """(HTTP status, JSON body, request id) for one request."""
        request_id = new_request_id()
        key: StoredAccessKey | None = None
        params: dict[str, Any] | None = None
        try:
            if too_large:
                raise ApiError(
                    "RequestEntityTooLargeException",
                    f"request body exceeds {MAX_BODY_BYTES} bytes",
                    status=413,
                )
            incoming = sigv4.IncomingRequest(
                method=scope["method"],
                raw_path=scope.get("raw_path", b"/").decode("latin-1").split("?", 1)[0],
                raw_query=scope.get("query_string", b"").decode("latin-1"),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
                body=body,
            )
            key, params = await self._authenticate(incoming, operation, body)
            if operation == "PollHostCommand":
                result = await self._poll(key, params, receive)
            elif operation == "GetDeploymentSpecification":
                result = await self._get_deployment_specification(key, params)
            else:
                result = await self._step(self._command_step(operation, key, params))
        except ApiError as error:
            log.info("%s.%s -> %s: %s", TARGET_PREFIX, operation, error.code, error.message)
            await self._record(scope, request_id, operation, key, params, None, error)
            return error.status, _json({"__type": error.code, "message": error.message}), request_id
        except Exception:
            log.exception("%s.%s failed (request %s)", TARGET_PREFIX, operation, request_id)
            message = f"The server failed to process the request (request id {request_id})"
            return 500, _json({"__type": "ServerException", "message": message}), request_id
        await self._record(scope, request_id, operation, key, params, result, None)
        return 200, _json(result), request_id

    async def _record(
        self,
        scope: Scope,
        request_id: str,
        operation: str,
        key: StoredAccessKey | None,
        params: dict[str, Any] | None,
        result: dict[str, Any] | None,
        error: ApiError | None,
    ) -> None:
        """Put the request on the audit trail as ``--audit-agent-requests`` asks: refusals by default;
        with ``changes`` also what agents report; with ``all`` every request."""
        level = self.settings.audit_agent_requests
        wanted = {
            "none": False,
            "refusals": error is not None,
            "changes": error is not None or operation not in _READS,
        }.get(level, True)
        if not wanted:
            return
        client = scope.get("client")
        headers = dict(scope["headers"])
        audit = awsjson.AuditFacts(
            request_id, client[0] if client else "", headers.get(b"user-agent", b"").decode("latin-1")
        )
        if key is not None:
            audit.caller = cloudtrail_events.Caller(key.principal_arn, key.access_key_id)
        audit.params = params
        # A handed-out command is the answer to a read; what the agent reports is what matters.
        answer = result if operation not in _READS else None
        call = audit.call(SIGNING_NAME, operation, self.settings, result=answer, error=error)
        await awsjson.record_call(self.audit_trail, call)

    async def _authenticate(
        self, incoming: sigv4.IncomingRequest, operation: str, body: bytes
    ) -> tuple[StoredAccessKey, dict[str, Any]]:
        """Verify the signature, then parse and validate the body — in the event loop (a fraction of a
        millisecond of computing), except for looking up a signing key not in the cache."""
        key_id = _access_key_id(incoming)
        key = self._cached_key(key_id) if key_id else None
        if key_id and key is None:
            key = await self._in_thread(self._find_key, key_id)
        verified = sigv4.verify(
            incoming, signing_name=SIGNING_NAME, lookup=lambda _: key, regions=[self.settings.region]
        )
        params = awsjson.JSON.decode(body)
        validate(operation, params)
        return verified.key, params

    def _cached_key(self, access_key_id: str) -> StoredAccessKey | None:
        return self._keys.get(access_key_id)

    def _find_key(self, access_key_id: str) -> StoredAccessKey | None:
        """The signing key with its secret, remembered: every agent request is signed, and looking the
        key up and decrypting its secret each time costs more than the request itself. An access key's
        secret never changes; whether the key is still active is checked in every request's own
        transaction (``signing_instance``), so a deactivated or deleted key stops working at once."""
        key = self._cached_key(access_key_id)
        if key is not None:
            return key
        key = self.state.find_key(access_key_id)
        if key is not None:
            with self._keys_lock:
                if len(self._keys) >= KEY_CACHE_SIZE:
                    self._keys.clear()
                self._keys[access_key_id] = key
        return key

    def _instance(
        self, session: Session, key: StoredAccessKey, host_identifier: str | None
    ) -> InstanceIdentity:
        identity = signing_instance(session, key, self.settings)
        if host_identifier is not None:
            check_host_identifier(identity, host_identifier)
        return identity

    # --- PollHostCommand ------------------------------------------------------------------------------

    async def _poll(self, key: StoredAccessKey, params: dict[str, Any], receive: Receive) -> dict[str, Any]:
        """Hand out the host's next command, waiting up to the poll hold time for one; ``{}`` if none, or
        if the client went away meanwhile (its connection is watched while the poll waits)."""
        deadline = time.monotonic() + self.settings.engine.poll_hold
        settings = self.settings.engine

        def first(session: Session) -> tuple[InstanceIdentity, int, engine.Delivery]:
            identity = self._instance(session, key, params["HostIdentifier"])
            # Read the wake-up counter before looking: a command issued after the look wakes the wait.
            generation = self.bus.host_generation(identity.host)
            return (
                identity,
                generation,
                engine.deliver_next(session, identity.host, time.time(), settings),
            )

        identity, generation, found = await self._step(first)

        def again(session: Session) -> tuple[int, engine.Delivery]:
            if not still_registered(session, identity):
                raise refused(f"Instance {identity.name} is no longer registered")
            generation = self.bus.host_generation(identity.host)
            return generation, engine.deliver_next(session, identity.host, time.time(), settings)

        gone: asyncio.Future[None] | None = None  # done when the client goes away
        try:
            while found.command is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.bus.stopping or (gone is not None and gone.done()):
                    return {}
                if found.redeliver_at is not None:  # look again when a lost answer may go out again
                    remaining = min(remaining, max(found.redeliver_at - time.time(), 0.0) + 0.01)
                if gone is None:
                    gone = asyncio.ensure_future(_disconnected(receive))
                await self.bus.wait_for_host(identity.host, since=generation, timeout=remaining, gone=gone)
                if self.bus.stopping or gone.done():
                    return {}
                generation, found = await self._step(again)
            delivered = found.command
            if gone is not None and gone.done():
                # The client left while the command was being handed out: it never got it.
                await self._step(
                    lambda session: engine.delivery_lost(
                        session, delivered.host_command_identifier, identity.host
                    )
                )
                return {}
        finally:
            if gone is not None:
                gone.cancel()
        return {
            "HostCommand": {
                "HostCommandIdentifier": delivered.host_command_identifier,
                "HostIdentifier": params["HostIdentifier"],
                "DeploymentExecutionId": specification.execution_id(
                    self.settings.region, self.settings.account_id, delivered.deployment_id
                ),
                "CommandName": delivered.command_name,
                "Nonce": delivered.nonce,
            }
        }

    # --- the other four -------------------------------------------------------------------------------

    def _command_step(
        self, operation: str, key: StoredAccessKey, params: dict[str, Any]
    ) -> Callable[[Session], dict[str, Any]]:
        """The database step of an acknowledgement, a completion or an update of one host command."""
        settings = self.settings.engine
        identifier = params["HostCommandIdentifier"]
        if operation == "PutHostCommandAcknowledgement":

            def action(session: Session, command: Any, now: float) -> dict[str, Any]:
                return {"CommandStatus": engine.acknowledge(session, command, identifier, now, settings)}

        elif operation == "PutHostCommandComplete":
            status = params["CommandStatus"]
            if status not in (HostCommandStatus.SUCCEEDED, HostCommandStatus.FAILED):
                raise refused(f"A host command completes as Succeeded or Failed, not {status}")

            def action(session: Session, command: Any, now: float) -> dict[str, Any]:
                first = engine.complete(
                    session, command, identifier, status, params.get("Diagnostics"), now, settings
                )
                if not first:
                    log.info(
                        "completion of host command %s (%s) ignored: a duplicate, or of a hand-out that "
                        "did not run; the first one stands",
                        identifier,
                        command.command_name,
                    )
                return {}

        elif operation == "PostHostCommandUpdate":
            estimate = params.get("EstimatedCompletionTime")

            def action(session: Session, command: Any, now: float) -> dict[str, Any]:
                return {
                    "CommandStatus": engine.record_update(
                        session,
                        command,
                        identifier,
                        float(estimate) if estimate is not None else None,
                        now,
                        settings,
                    )
                }

        else:
            raise ApiError("UnknownOperationException", f"Unknown operation {TARGET_PREFIX}.{operation}")

        def step(session: Session) -> dict[str, Any]:
            identity = self._instance(session, key, None)
            try:
                command = engine.find_command(session, identifier, identity.host, lock=True)
            except engine.HostCommandNotFound as error:
                raise refused(str(error)) from None
            return action(session, command, time.time())

        return step

    async def _get_deployment_specification(
        self, key: StoredAccessKey, params: dict[str, Any]
    ) -> dict[str, Any]:
        execution = params["DeploymentExecutionId"]
        deployment_id = specification.deployment_id_of(execution)

        def check(session: Session) -> None:
            identity = self._instance(session, key, params["HostIdentifier"])
            if deployment_id is None:
                raise refused(f"DeploymentExecutionId {execution!r} does not name a deployment")
            target = _TARGET.first(
                session.connection(), {"deployment_id": deployment_id, "name": identity.name}
            )
            if target is None:
                raise refused(f"Deployment {deployment_id} has no work for instance {identity.name}")

        await self._step(check)
        assert deployment_id is not None
        payload = self._cached_specification(deployment_id)
        if payload is None:
            payload = await self._in_thread(self._signed_specification, deployment_id)
        return {
            "DeploymentSystem": specification.DEPLOYMENT_SYSTEM,
            "DeploymentSpecification": {"GenericEnvelope": {"Format": PKCS7_JSON, "Payload": payload}},
        }

    def _cached_specification(self, deployment_id: str) -> str | None:
        with self._specifications_lock:
            cached = self._specifications.get(deployment_id)
            if cached is not None:
                self._specifications.move_to_end(deployment_id)
            return cached

    def _signed_specification(self, deployment_id: str) -> str:
        def build(session: Session) -> dict[str, Any]:
            deployment = session.get(Deployment, deployment_id)
            if deployment is None:
                raise refused(f"Deployment {deployment_id} does not exist")
            try:
                return specification.specification_document(session, self.state.secrets, deployment)
            except specification.SpecificationUnavailable as error:
                raise refused(f"Deployment {deployment_id} cannot be described: {error}") from None

        # Every host of a deployment gets the same specification: build and sign it once, even when a
        # thousand hosts ask at the same moment.
        with self._building:
            cached = self._cached_specification(deployment_id)
            if cached is not None:
                return cached
            document = in_transaction(self.state.database, build, write=False)
            signed = self.signer.sign(specification.encode(document))
            if len(signed) > PAYLOAD_LIMIT:
                raise ApiError(
                    "ServerException",
                    f"The signed specification of {deployment_id} is {len(signed)} characters, over the "
                    f"protocol's limit of {PAYLOAD_LIMIT}",
                    status=500,
                )
            with self._specifications_lock:
                self._specifications[deployment_id] = signed
                while len(self._specifications) > SPECIFICATION_CACHE_SIZE:
                    self._specifications.popitem(last=False)
            return signed

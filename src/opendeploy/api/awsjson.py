"""The awsJson 1.1 protocol adapter: ``POST /`` with ``X-Amz-Target: <prefix>.<Operation>``.

For each request: check what of its SigV4 signature the headers alone decide (``sigv4.check_headers``:
present, well formed, in scope, recent, by a known key) before reading any of its body; receive the
body (``receive_body``: a ``Content-Length`` over the limit is refused before anything is read, and a
body beyond ``SMALL_BODY_BYTES`` waits in a temporary file, not in memory, until the signature that
covers it is verified); then, in a worker thread, verify the signature, find the operation, parse the
JSON body (``parse_json``: nesting deeper than ``MAX_NESTING_DEPTH`` is a ``SerializationException``),
validate it against botocore's model (when the service has one), and run the handler inside one
database transaction that is committed before the response is sent, so an acknowledged write is
durable. Errors are HTTP 400 ``{"__type": "<Name>", "message": "…"}`` (413 for a body over the
limit); only server faults are 5xx.

A ``JsonService`` describes one such service (CodeDeploy's API; RPC v2 CBOR requests run through the
same pipeline with ``rpcv2cbor.CborCodec``). The agent command service has its own asynchronous
adapter (``api/commands``); the pieces here that it shares are ``JSON.decode`` (the one awsJson body
decoder) and the same two-step signature check (``sigv4.check_headers``, then ``sigv4.verify``).
IAM's Query adapter (``api/iam``) receives its bodies with ``receive_body`` too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import IO, Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from opendeploy.api import sigv4
from opendeploy.api.authorization import (
    DEPLOYMENT_GROUPS,
    NAME_CHANGES,
    POLICIES,
    Caller,
    SessionLookup,
    principal_for,
    refusal,
    unmapped,
)
from opendeploy.api.codedeploy.registry import Handler, OperationContext, Principal
from opendeploy.api.errors import ApiError
from opendeploy.api.server_state import ServerState
from opendeploy.api.validation import operation_model, validate_request
from opendeploy.domain import cloudtrail_events
from opendeploy.domain.ids import new_request_id
from opendeploy.domain.json_text import NestingTooDeep, parse_json
from opendeploy.domain.permissions import Permission, Requirement, Scope, UnknownOperation
from opendeploy.store.audit_trail import AuditTrail, insert_events

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY_BYTES = 8 * 1024 * 1024
# How much of a body is kept in memory before its signature is verified; the rest waits in a file.
SMALL_BODY_BYTES = 64 * 1024
TOO_LARGE = "RequestEntityTooLargeException"
_READ_PREFIXES = ("Get", "List", "BatchGet")
# Operations that change which credentials are an instance's (and so what they may read).
_CHANGES_WHO_IS_AN_INSTANCE = frozenset({"RegisterOnPremisesInstance", "DeregisterOnPremisesInstance"})


@dataclass(frozen=True)
class JsonService:
    """One awsJson service: its target prefix, SigV4 signing name, handlers and authorisation rule."""

    target_prefix: str  # "CodeDeploy_20141006"
    signing_name: str  # "codedeploy"
    operations: Mapping[str, Handler]
    model_service_name: str | None = None  # botocore model to validate against, if any
    # What a request needs to be allowed (``domain/*_permissions``); by default ``<signing name>:<Op>``
    # on ``*``.
    required: Callable[[str, Mapping[str, Any], Scope, SessionLookup], list[Requirement]] | None = None
    # Condition keys the request itself sets (``aws:RequestTag/…``, ``aws:TagKeys``), if any.
    request_context: Callable[[str, Mapping[str, Any]], Mapping[str, Any]] | None = None

    def requirements(
        self, operation: str, params: Mapping[str, Any], scope: Scope, lookup: SessionLookup
    ) -> list[Requirement]:
        if self.required is None:
            return [Permission(f"{self.signing_name}:{operation}", "*")]
        try:
            return self.required(operation, params, scope, lookup)
        except UnknownOperation:
            return unmapped(f"{self.signing_name}:{operation}")

    def is_read_only(self, operation: str) -> bool:
        return operation.startswith(_READ_PREFIXES)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class Codec(Protocol):
    """How one wire protocol reads a request body and writes a response for the shared pipeline."""

    def decode(self, body: bytes) -> dict[str, Any]: ...

    def response(
        self, status: int, payload: Mapping[str, Any], operation: str, request_id: str
    ) -> Response: ...


class JsonCodec:
    """awsJson 1.1: JSON bodies, timestamps as epoch seconds."""

    def decode(self, body: bytes) -> dict[str, Any]:
        """The request's parameters: a JSON object, nested at most ``MAX_NESTING_DEPTH`` levels, or
        ``SerializationException``. The one JSON request decoder for every awsJson service."""
        if not body.strip():
            return {}
        try:
            params = parse_json(body, "The request body")
        except NestingTooDeep as error:
            raise ApiError("SerializationException", str(error)) from None
        except ValueError as error:  # json.JSONDecodeError, UnicodeDecodeError
            raise ApiError("SerializationException", f"The request body is not valid JSON: {error}") from None
        if not isinstance(params, dict):
            raise ApiError("SerializationException", "The request body must be a JSON object")
        return params

    def response(self, status: int, payload: Mapping[str, Any], operation: str, request_id: str) -> Response:
        body = json.dumps(payload, default=_json_default, separators=(",", ":"))
        return Response(
            body, status_code=status, media_type=CONTENT_TYPE, headers={"x-amzn-RequestId": request_id}
        )


JSON = JsonCodec()


def error_response(error: ApiError, request_id: str, codec: Codec = JSON, operation: str = "") -> Response:
    return codec.response(
        error.status, {"__type": error.code, "message": error.message}, operation, request_id
    )


@dataclass
class AuditFacts:
    """What the audit trail records of one request, filled in as the request is served: who signed it
    (once the signature is verified) and its parameters (once decoded)."""

    request_id: str
    source_ip: str
    user_agent: str
    caller: cloudtrail_events.Caller | None = None
    params: Mapping[str, Any] | None = None
    operation: str = ""  # when the operation is only known from the body (IAM's Query protocol)
    recorded: bool = False  # a successful write's event went into the write's own transaction

    @classmethod
    def of(cls, request: Request, request_id: str) -> AuditFacts:
        client = request.client.host if request.client else ""
        return cls(request_id, client, request.headers.get("user-agent", ""))

    def call(
        self,
        service: str,
        operation: str,
        settings: Any,
        *,
        result: Mapping[str, Any] | None = None,
        error: ApiError | None = None,
    ) -> cloudtrail_events.ApiCall:
        return cloudtrail_events.ApiCall(
            service=service,
            operation=operation or self.operation or "Unknown",
            time=time.time(),
            region=settings.region,
            account_id=settings.account_id,
            request_id=self.request_id,
            caller=self.caller or cloudtrail_events.Caller(None),
            source_ip=self.source_ip,
            user_agent=self.user_agent,
            request_parameters=self.params,
            response_elements=result,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
        )


async def record_in_trail(request: Request, call: cloudtrail_events.ApiCall) -> None:
    """Record ``call`` in the server's audit trail: a change or a refusal before the answer goes out; a
    read that succeeded is handed to the trail's writer, which builds its event and commits it with the
    next batch, within ``AuditTrail.linger`` (200 ms), without holding its answer back (reads are most
    requests, and waiting added a commit's latency to each). A trail that cannot record is logged: the
    request's own outcome stands."""
    await record_call(getattr(request.app.state, "audit_trail", None), call)


async def record_call(trail: AuditTrail | None, call: cloudtrail_events.ApiCall) -> None:
    """``record_in_trail`` with the trail at hand."""
    if trail is None:
        return
    if call.error_code is None and cloudtrail_events.is_read(call):
        trail.submit_reads([call])
        return
    try:
        await trail.record_async([cloudtrail_events.trail_event(call)])
    except Exception:
        log.exception("the audit trail could not record %s %s", call.service, call.operation)


@dataclass(frozen=True)
class ConnectionFacts:
    """What the server knows of the connection a request came over (for policies' condition keys)."""

    source_ip: str | None
    secure: bool

    @classmethod
    def of(cls, request: Request) -> ConnectionFacts:
        return cls(request.client.host if request.client else None, request.url.scheme == "https")


async def handle(
    request: Request, service: JsonService, state: ServerState, operation: str, codec: Codec = JSON
) -> Response:
    """Serve one request for ``operation`` of ``service``, in the wire format ``codec`` reads and writes."""
    request_id = new_request_id()
    started = time.monotonic()
    incoming = incoming_headers(request)
    body: ReceivedBody | None = None
    checked: sigv4.HeaderCheck | None = None
    audit = AuditFacts.of(request, request_id)
    try:
        check_declared_length(request, MAX_BODY_BYTES, TOO_LARGE)
        checked = await check_headers_soon(
            incoming, signing_name=service.signing_name, state=state, codes=sigv4.JSON_ERRORS
        )
        body = await receive_body(request, MAX_BODY_BYTES, TOO_LARGE)
        incoming = dataclasses.replace(incoming, body_sha256=body.sha256)
        connection = ConnectionFacts.of(request)
        result = await run_in_threadpool(
            _serve, service, state, operation, incoming, checked, body, codec, connection, audit
        )
        if not audit.recorded:
            await record_in_trail(request, audit.call(service.signing_name, operation, state.settings))
    except ApiError as error:
        log.info("%s %s -> %s: %s", service.target_prefix, operation, error.code, error.message)
        if audit.caller is None:  # refused before the signature was verified: the key it named, if any
            audit.caller = cloudtrail_events.Caller(None, checked.access_key_id if checked else None)
        await record_in_trail(
            request, audit.call(service.signing_name, operation, state.settings, error=error)
        )
        return closing_if_body_unread(
            error_response(error, request_id, codec, operation), request, error, body
        )
    except ClientDisconnect:
        log.info(
            "%s %s: the client disconnected before sending all its body", service.target_prefix, operation
        )
        return Response(status_code=400)
    except Exception:
        log.exception("%s %s failed (request %s)", service.target_prefix, operation, request_id)
        return error_response(
            ApiError(
                "InternalFailure",
                f"The server failed to process the request (request id {request_id})",
                status=500,
            ),
            request_id,
            codec,
            operation,
        )
    finally:
        if body is not None:
            body.close()
    log.debug("%s %s ok in %.1f ms", service.target_prefix, operation, (time.monotonic() - started) * 1000)
    return codec.response(200, result or {}, operation, request_id)


# --- receiving a body before its signature is verified ----------------------------------------------


def incoming_headers(request: Request) -> sigv4.IncomingRequest:
    """What the signature covers of ``request`` without its body (not read yet)."""
    return sigv4.IncomingRequest(
        method=request.method,
        raw_path=request.scope.get("raw_path", b"/").decode("latin-1").split("?", 1)[0],
        raw_query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
        body=None,
    )


def too_large(code: str, limit: int) -> ApiError:
    """The 413 refusal of a body longer than ``limit`` bytes, named ``code`` as the protocol names it."""
    return ApiError(code, f"The request body exceeds {limit} bytes", status=413)


def check_declared_length(request: Request, limit: int, code: str) -> None:
    """Refuse (``too_large``) a request whose ``Content-Length`` is over ``limit``, before reading any
    of its body."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(code, limit)


class ReceivedBody:
    """A request body received before its signature is verified: its SHA-256 (computed as it came in,
    for the signature check) and its bytes, in memory up to ``SMALL_BODY_BYTES`` and beyond that in an
    unlinked temporary file, so that clients who may not even hold a key cannot make the server keep
    megabytes in memory. ``close()`` releases the file."""

    def __init__(self) -> None:
        self.size = 0
        self._digest = hashlib.sha256()
        self._memory = bytearray()  # all of a small body; the part not yet written out of a large one
        self._file: IO[bytes] | None = None

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of the body received so far."""
        return self._digest.hexdigest()

    async def add(self, chunk: bytes) -> None:
        """Take the next piece of the body (writing to the file, in a worker thread, when it spills)."""
        self.size += len(chunk)
        self._digest.update(chunk)
        self._memory += chunk
        if len(self._memory) > SMALL_BODY_BYTES:
            await run_in_threadpool(self._spill)

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="opendeploy-body-")  # noqa: SIM115 (closed by close())
        self._file.write(self._memory)
        self._memory.clear()

    def read(self) -> bytes:
        """The whole body (from the temporary file, if it spilled: call this from a worker thread)."""
        if self._file is None:
            return bytes(self._memory)
        self._file.seek(0)
        return self._file.read() + self._memory

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._memory = bytearray()


async def receive_body(request: Request, limit: int, code: str) -> ReceivedBody:
    """Receive the body (``ReceivedBody``), refusing with ``too_large`` once it is known to be over
    ``limit`` bytes: from ``Content-Length`` before reading, else (chunked) as soon as it passes it."""
    check_declared_length(request, limit, code)
    body = ReceivedBody()
    try:
        async for chunk in request.stream():
            if body.size + len(chunk) > limit:
                raise too_large(code, limit)
            await body.add(chunk)
    except BaseException:
        body.close()
        raise
    return body


def closing_if_body_unread(
    response: Response, request: Request, error: ApiError, body: ReceivedBody | None
) -> Response:
    """Close the connection after a refusal that leaves the body unread: one too large to read at all
    (413), or one the client holds back until "100 Continue" (which it will now never send), so that
    neither is left to arrive on a connection that could carry another request."""
    waiting = body is None and request.headers.get("expect", "").lower() == "100-continue"
    if error.status == 413 or waiting:
        response.headers["Connection"] = "close"
    return response


class _KeyNotCached(Exception):
    """The signing key is not in the server's cache: looking it up needs the database."""


async def check_headers_soon(
    incoming: sigv4.IncomingRequest,
    *,
    signing_name: str,
    state: ServerState,
    codes: sigv4.ErrorCodes,
    regions: list[str] | None = None,
) -> sigv4.HeaderCheck:
    """``sigv4.check_headers`` for a request: in the event loop when its key is cached (most requests:
    a fraction of a millisecond of computing), else in a worker thread, which may look the key up."""
    regions = regions or [state.settings.region]

    def cached(access_key_id: str) -> Any:
        key = state.cached_key(access_key_id)
        if key is None:
            raise _KeyNotCached
        return key

    try:
        return sigv4.check_headers(
            incoming, signing_name=signing_name, lookup=cached, regions=regions, codes=codes
        )
    except _KeyNotCached:
        return await run_in_threadpool(
            lambda: sigv4.check_headers(
                incoming, signing_name=signing_name, lookup=state.find_key, regions=regions, codes=codes
            )
        )


def _serve(
    service: JsonService,
    state: ServerState,
    operation: str,
    incoming: sigv4.IncomingRequest,
    checked: sigv4.HeaderCheck,
    body: ReceivedBody,
    codec: Codec,
    connection: ConnectionFacts,
    audit: AuditFacts,
) -> dict[str, Any] | None:
    """Verify the signature, then parse and validate the request, authorize it with the caller's
    policies and run the handler (in a worker thread)."""
    settings = state.settings
    verified = sigv4.verify(
        incoming,
        signing_name=service.signing_name,
        lookup=state.find_key,
        regions=[settings.region],
        checked=checked,
    )
    key = verified.key
    principal = Principal(
        access_key_id=verified.access_key_id,
        arn=key.principal_arn,
        is_admin=key.is_admin,
        instance_name=key.instance_name,
    )
    handler = service.operations.get(operation)
    if handler is None:
        raise ApiError("UnknownOperationException", f"Unknown operation {service.target_prefix}.{operation}")
    audit.caller = cloudtrail_events.Caller(principal.arn, principal.access_key_id)
    params = codec.decode(body.read())
    audit.params = params
    if service.model_service_name:
        model = operation_model(operation, service.model_service_name)
        if model is not None:
            validate_request(model, params)
    now = time.time()
    with state.database.transaction(write=not service.is_read_only(operation)) as session:
        caller = Caller(principal.arn, principal.access_key_id, connection.source_ip, connection.secure)
        scope = Scope(settings.region, settings.account_id)
        allowed = principal_for(session, caller, now)
        refused = None
        if not allowed.unrestricted:  # AdministratorAccess: no lookups to name the resources
            lookup = SessionLookup(session)
            requirements = service.requirements(operation, params, scope, lookup)
            extra = service.request_context(operation, params) if service.request_context else None
            refused = refusal(allowed, requirements, extra, lookup.resource_tags)
        if refused is not None:
            raise ApiError("AccessDeniedException", refused.message(principal.arn))
        context = OperationContext(
            session=session,
            settings=settings,
            principal=principal,
            now=now,
            operation=operation,
            pagination_key=state.pagination_key,
        )
        result = handler(context, params)
        if not service.is_read_only(operation):
            # A change and its audit event commit together: neither is ever kept without the other.
            call = audit.call(service.signing_name, operation, settings, result=result)
            insert_events(session, [cloudtrail_events.trail_event(call)])
            audit.recorded = True
    if operation in _CHANGES_WHO_IS_AN_INSTANCE:  # committed: an instance's grant may have changed
        POLICIES.forget()
    if operation in NAME_CHANGES:  # committed: a deployment's group may now go by another name
        DEPLOYMENT_GROUPS.forget()
    return result

"""The awsJson 1.1 protocol adapter: ``POST /`` with ``X-Amz-Target: <prefix>.<Operation>``.

For each request: verify its SigV4 signature, find the operation, parse the JSON body, validate it
against botocore's model (when the service has one), and run the handler in a worker thread inside
one database transaction that is committed before the response is sent, so an acknowledged write is
durable. Errors are HTTP 400 ``{"__type": "<Name>", "message": "…"}``; only server faults are 5xx.

A ``JsonService`` describes one such service (CodeDeploy's API now; the agent command service uses
the same adapter with its own prefix, signing name and operations).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from opendeploy.api import sigv4
from opendeploy.api.codedeploy.registry import Handler, OperationContext, Principal
from opendeploy.api.errors import ApiError
from opendeploy.api.server_state import ServerState
from opendeploy.api.validation import operation_model, validate_request

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY_BYTES = 8 * 1024 * 1024
_READ_PREFIXES = ("Get", "List", "BatchGet")


@dataclass(frozen=True)
class JsonService:
    """One awsJson service: its target prefix, SigV4 signing name, handlers and authorisation rule."""

    target_prefix: str  # "CodeDeploy_20141006"
    signing_name: str  # "codedeploy"
    operations: Mapping[str, Handler]
    model_service_name: str | None = None  # botocore model to validate against, if any
    authorize: Callable[[Principal, str], bool] = lambda principal, operation: principal.is_admin

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
        if not body.strip():
            return {}
        try:
            params = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
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


async def handle(
    request: Request, service: JsonService, state: ServerState, operation: str, codec: Codec = JSON
) -> Response:
    """Serve one request for ``operation`` of ``service``, in the wire format ``codec`` reads and writes."""
    request_id = str(uuid.uuid4())
    body = await read_body(request, MAX_BODY_BYTES)
    if body is None:
        too_large = ApiError(
            "RequestEntityTooLargeException", f"The request body exceeds {MAX_BODY_BYTES} bytes", status=413
        )
        return error_response(too_large, request_id, codec, operation)
    incoming = sigv4.IncomingRequest(
        method=request.method,
        raw_path=request.scope.get("raw_path", b"/").decode("latin-1").split("?", 1)[0],
        raw_query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
        body=body,
    )
    started = time.monotonic()
    try:
        result = await run_in_threadpool(_serve, service, state, operation, incoming, codec)
    except ApiError as error:
        log.info("%s %s -> %s: %s", service.target_prefix, operation, error.code, error.message)
        return error_response(error, request_id, codec, operation)
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
    log.debug("%s %s ok in %.1f ms", service.target_prefix, operation, (time.monotonic() - started) * 1000)
    return codec.response(200, result or {}, operation, request_id)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or ``None`` as soon as it is known to be longer than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _serve(
    service: JsonService, state: ServerState, operation: str, incoming: sigv4.IncomingRequest, codec: Codec
) -> dict[str, Any] | None:
    """Authenticate, parse, validate and run the handler (in a worker thread)."""
    settings = state.settings
    verified = sigv4.verify(
        incoming, signing_name=service.signing_name, lookup=state.find_key, regions=[settings.region]
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
    if not service.authorize(principal, operation):
        raise ApiError(
            "AccessDeniedException",
            f"User: {principal.arn} is not authorized to perform: {service.signing_name}:{operation}",
        )
    params = codec.decode(incoming.body or b"")
    if service.model_service_name:
        model = operation_model(operation, service.model_service_name)
        if model is not None:
            validate_request(model, params)
    with state.database.transaction(write=not service.is_read_only(operation)) as session:
        context = OperationContext(
            session=session,
            settings=settings,
            principal=principal,
            now=time.time(),
            operation=operation,
            pagination_key=state.pagination_key,
        )
        return handler(context, params)

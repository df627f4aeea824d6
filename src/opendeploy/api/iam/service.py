"""The IAM API's adapter: ``POST /`` with a form-encoded Query request (``Action=…&Version=2010-05-08``).

For each request: check its SigV4 signature (signing name ``iam``; the scope may name the server's
region or ``us-east-1``, where AWS's SDKs sign IAM, a global service) as far as the headers alone
decide before reading any of the body, then receive the body as the awsJson adapter does (size
limit from ``Content-Length`` first; beyond a small size it waits in a temporary file until the
signature is verified), and, in a worker thread, verify the signature, read the action and its
parameters (``protocol.decode``), validate them against botocore's ``iam`` model, authorize the request
with the caller's policies (``api/authorization``; what it needs from ``domain/iam_permissions``), and
run the handler in one database transaction committed before the response is sent. Errors use IAM's
codes and XML error document; only server faults are 5xx.

A request whose credential scope names ``sts`` is STS's (``api/iam/sts``: GetCallerIdentity): the same
steps with signing name ``sts``, then STS answers it, in STS's XML namespace.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import pkgutil
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

import opendeploy.api.iam
from opendeploy.api import sigv4
from opendeploy.api.authorization import POLICIES, Caller, SessionLookup, principal_for, refusal, unmapped
from opendeploy.api.awsjson import (
    AuditFacts,
    ConnectionFacts,
    ReceivedBody,
    check_declared_length,
    closing_if_body_unread,
    incoming_headers,
    receive_body,
    record_in_trail,
)
from opendeploy.api.codedeploy.registry import Principal
from opendeploy.api.errors import ApiError
from opendeploy.api.iam import protocol, sts
from opendeploy.api.iam.registry import IAM_OPERATIONS, SERVICE_NAME, IamContext, iam_error
from opendeploy.api.server_state import ServerState
from opendeploy.api.validation import GENERIC_VALIDATION_ERROR, operation_model, validate_request
from opendeploy.domain import cloudtrail_events, iam_permissions
from opendeploy.domain.ids import new_request_id
from opendeploy.domain.permissions import Scope, UnknownOperation
from opendeploy.store.audit_trail import insert_events

log = logging.getLogger(__name__)

SIGNING_NAME = "iam"
API_VERSION = "2010-05-08"
GLOBAL_SIGNING_REGION = "us-east-1"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Inline policies may be 128 KiB, three times that once percent-encoded.
MAX_BODY_BYTES = 1024 * 1024
TOO_LARGE = "RequestEntityTooLarge"
SIGNATURE_ERRORS = sigv4.ErrorCodes(
    missing="MissingAuthenticationToken",
    incomplete="IncompleteSignature",
    unknown_key="InvalidClientTokenId",
    mismatch="SignatureDoesNotMatch",
    expired="SignatureDoesNotMatch",
    payload_mismatch="SignatureDoesNotMatch",
    status=403,
)
_READ_PREFIXES = ("Get", "List")


def is_iam_request(request: Request) -> bool:
    """A Query-protocol request: no ``X-Amz-Target`` and a form-encoded body."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return "x-amz-target" not in request.headers and content_type == FORM_CONTENT_TYPE


def import_handlers() -> None:
    """Import every module of ``api/iam`` so each registers its operations."""
    package = opendeploy.api.iam
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


class IamService:
    """Serves IAM's Query API for one server."""

    def __init__(self, state: ServerState) -> None:
        import_handlers()
        self.state = state

    async def handle(self, request: Request) -> Response:
        request_id = new_request_id()
        incoming = incoming_headers(request)
        signing_name = sts.SIGNING_NAME if sts.is_sts_request(incoming) else SIGNING_NAME
        namespace = sts.NAMESPACE if signing_name == sts.SIGNING_NAME else protocol.NAMESPACE
        body: ReceivedBody | None = None
        checked: sigv4.HeaderCheck | None = None
        audit = AuditFacts.of(request, request_id)
        try:
            check_declared_length(request, MAX_BODY_BYTES, TOO_LARGE)
            checked = await run_in_threadpool(self._check_headers, incoming, signing_name)
            body = await receive_body(request, MAX_BODY_BYTES, TOO_LARGE)
            incoming = dataclasses.replace(incoming, body_sha256=body.sha256)
            connection = ConnectionFacts.of(request)
            response = await run_in_threadpool(
                self._serve, incoming, checked, body, request_id, connection, signing_name, audit
            )
            if not audit.recorded:
                await record_in_trail(request, audit.call(signing_name, "", self.state.settings))
            return response
        except ApiError as error:
            log.info("%s -> %s: %s", signing_name.upper(), error.code, error.message)
            if audit.caller is None:  # refused before the signature was verified: the key it named
                audit.caller = cloudtrail_events.Caller(None, checked.access_key_id if checked else None)
            await record_in_trail(request, audit.call(signing_name, "", self.state.settings, error=error))
            response = protocol.error_response(error, request_id, namespace=namespace)
            return closing_if_body_unread(response, request, error, body)
        except ClientDisconnect:
            log.info("IAM: the client disconnected before sending all its body")
            return Response(status_code=400)
        except Exception:
            log.exception("IAM request %s failed", request_id)
            failure = ApiError(
                "ServiceFailure",
                f"The server failed to process the request (request id {request_id})",
                status=500,
            )
            return protocol.error_response(failure, request_id, namespace=namespace)
        finally:
            if body is not None:
                body.close()

    def _check_headers(self, incoming: sigv4.IncomingRequest, signing_name: str) -> sigv4.HeaderCheck:
        """The signature's checks that need no body (in a worker thread: the key is looked up)."""
        return sigv4.check_headers(incoming, **self._signature_options(signing_name))

    def _signature_options(self, signing_name: str) -> dict[str, Any]:
        """How a request signed for ``signing_name`` (``iam`` or ``sts``, both global services whose
        SDKs sign for ``us-east-1`` unless given a region) is checked."""
        return {
            "signing_name": signing_name,
            "lookup": self.state.find_key,
            "regions": {self.state.settings.region, GLOBAL_SIGNING_REGION},
            "codes": SIGNATURE_ERRORS,
        }

    def _serve(
        self,
        incoming: sigv4.IncomingRequest,
        checked: sigv4.HeaderCheck,
        body: ReceivedBody,
        request_id: str,
        connection: ConnectionFacts,
        signing_name: str,
        audit: AuditFacts,
    ) -> Response:
        """Verify the signature, then parse, validate and run the handler (in a worker thread)."""
        state = self.state
        verified = sigv4.verify(incoming, checked=checked, **self._signature_options(signing_name))
        key = verified.key
        audit.caller = cloudtrail_events.Caller(key.principal_arn, verified.access_key_id)
        if signing_name == sts.SIGNING_NAME:
            audit.operation = "GetCallerIdentity"
            return sts.serve(state, key, body.read(), request_id)
        form = protocol.parse_form(body.read())
        audit.operation = form.get("Action", "")
        action = protocol.read_action(form, "IAM", API_VERSION)
        handler = IAM_OPERATIONS.get(action)
        model = operation_model(action, SERVICE_NAME)
        if handler is None or model is None:
            raise iam_error(
                "InvalidAction",
                f"The action {action} is not valid for this endpoint: this server's IAM API offers "
                f"{', '.join(sorted(IAM_OPERATIONS))}.",
            )
        params = protocol.decode(form, model)
        audit.params = params
        try:
            validate_request(model, params)
        except ApiError as error:  # the model's checks, reported with IAM's code for them
            raise iam_error("ValidationError", error.message) from None
        principal = Principal(
            access_key_id=verified.access_key_id,
            arn=key.principal_arn,
            is_admin=key.is_admin,
            instance_name=key.instance_name,
        )
        started = time.monotonic()
        now = time.time()
        with state.database.transaction(write=not action.startswith(_READ_PREFIXES)) as session:
            caller = Caller(
                key.principal_arn, verified.access_key_id, connection.source_ip, connection.secure
            )
            scope = Scope(state.settings.region, state.settings.account_id)
            try:
                requirements = iam_permissions.required(
                    action, params, scope, SessionLookup(session), key.principal_arn
                )
            except UnknownOperation:
                requirements = unmapped(f"iam:{action}")
            refused = refusal(
                principal_for(session, caller, now),
                requirements,
                iam_permissions.request_context(action, params),
            )
            if refused is not None:
                raise iam_error("AccessDenied", refused.message(key.principal_arn))
            context = IamContext(
                session=session,
                settings=state.settings,
                principal=principal,
                now=now,
                operation=action,
                pagination_key=state.pagination_key,
                secrets=state.secrets,
            )
            try:
                result = handler(context, params) or {}
            except ApiError as error:
                if error.code != GENERIC_VALIDATION_ERROR:
                    raise
                # The shared pagination module's name for a bad token; IAM calls it ValidationError.
                raise iam_error("ValidationError", error.message) from None
            if not action.startswith(_READ_PREFIXES):
                # A change and its audit event commit together.
                call = audit.call(signing_name, action, state.settings, result=result)
                insert_events(session, [cloudtrail_events.trail_event(call)])
                audit.recorded = True
        if audit.recorded:  # a change to IAM: policies read before it may no longer hold
            POLICIES.forget()
        log.debug("IAM %s ok in %.1f ms", action, (time.monotonic() - started) * 1000)
        return protocol.response(model, result, request_id)

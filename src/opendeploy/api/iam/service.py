"""The IAM API's adapter: ``POST /`` with a form-encoded Query request (``Action=…&Version=2010-05-08``).

For each request: verify its SigV4 signature (signing name ``iam``; the scope may name the server's
region or ``us-east-1``, where AWS's SDKs sign IAM, a global service), allow the administrator key
only, read the action and its parameters (``protocol.decode``), validate them against botocore's
``iam`` model, and run the handler in a worker thread in one database transaction committed before
the response is sent. Errors use IAM's codes and XML error document; only server faults are 5xx.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import time
import uuid

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

import opendeploy.api.iam
from opendeploy.api import sigv4
from opendeploy.api.awsjson import read_body
from opendeploy.api.codedeploy.registry import Principal
from opendeploy.api.errors import ApiError
from opendeploy.api.iam import protocol
from opendeploy.api.iam.registry import IAM_OPERATIONS, SERVICE_NAME, IamContext, iam_error
from opendeploy.api.server_state import ServerState
from opendeploy.api.validation import GENERIC_VALIDATION_ERROR, operation_model, validate_request

log = logging.getLogger(__name__)

SIGNING_NAME = "iam"
API_VERSION = "2010-05-08"
GLOBAL_SIGNING_REGION = "us-east-1"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Inline policies may be 128 KiB, three times that once percent-encoded.
MAX_BODY_BYTES = 1024 * 1024
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
        request_id = str(uuid.uuid4())
        body = await read_body(request, MAX_BODY_BYTES)
        if body is None:
            too_large = ApiError(
                "RequestEntityTooLarge", f"The request body exceeds {MAX_BODY_BYTES} bytes", status=413
            )
            return protocol.error_response(too_large, request_id)
        incoming = sigv4.IncomingRequest(
            method=request.method,
            raw_path=request.scope.get("raw_path", b"/").decode("latin-1").split("?", 1)[0],
            raw_query=request.scope.get("query_string", b"").decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
            body=body,
        )
        try:
            return await run_in_threadpool(self._serve, incoming, request_id)
        except ApiError as error:
            log.info("IAM -> %s: %s", error.code, error.message)
            return protocol.error_response(error, request_id)
        except Exception:
            log.exception("IAM request %s failed", request_id)
            failure = ApiError(
                "ServiceFailure",
                f"The server failed to process the request (request id {request_id})",
                status=500,
            )
            return protocol.error_response(failure, request_id)

    def _serve(self, incoming: sigv4.IncomingRequest, request_id: str) -> Response:
        """Authenticate, parse, validate and run the handler (in a worker thread)."""
        state = self.state
        verified = sigv4.verify(
            incoming,
            signing_name=SIGNING_NAME,
            lookup=state.find_key,
            regions={state.settings.region, GLOBAL_SIGNING_REGION},
            codes=SIGNATURE_ERRORS,
        )
        key = verified.key
        form = protocol.parse_form(incoming.body or b"")
        action = _action(form)
        if not key.is_admin:
            raise iam_error(
                "AccessDenied",
                f"User: {key.principal_arn} is not authorized to perform: iam:{action} "
                "(only the administrator may call IAM on this server)",
            )
        handler = IAM_OPERATIONS.get(action)
        model = operation_model(action, SERVICE_NAME)
        if handler is None or model is None:
            raise iam_error(
                "InvalidAction",
                f"The action {action} is not valid for this endpoint: this server's IAM API offers "
                f"{', '.join(sorted(IAM_OPERATIONS))}.",
            )
        params = protocol.decode(form, model)
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
        with state.database.transaction(write=not action.startswith(_READ_PREFIXES)) as session:
            context = IamContext(
                session=session,
                settings=state.settings,
                principal=principal,
                now=time.time(),
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
        log.debug("IAM %s ok in %.1f ms", action, (time.monotonic() - started) * 1000)
        return protocol.response(model, result, request_id)


def _action(form: dict[str, str]) -> str:
    action = form.get("Action", "")
    if not action:
        raise iam_error("MissingAction", "The request must contain the parameter Action.")
    version = form.get("Version")
    if version is None:
        raise iam_error("MissingParameter", "The request must contain the parameter Version.")
    if version != API_VERSION:
        raise iam_error(
            "NoSuchVersion",
            f"The requested version ({version}) of service IAM does not exist; use {API_VERSION}.",
        )
    return action

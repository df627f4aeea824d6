"""The S3 REST adapter's entry point: which requests are S3's, and which operation each one is.

``S3Route`` claims path-style requests ``/<bucket>[/<key>]`` (any method) and ``GET /`` (ListBuckets),
except ``POST /`` (the awsJson APIs) and paths whose first segment is reserved for the server's own
routes (``reserved.py``): those it matches only partially, so every other route matching them wins
wherever it sits in the route list. For each request it works out
the operation from the method, the bucket/key and the query's sub-resource, checks the signature
(SigV4 for ``s3``) and the caller's rights, and runs the handler. Every failure is S3's XML error.

No body is read before the signature is verified: S3's signature covers the body's SHA-256 as the
``x-amz-content-sha256`` header declares it, so the headers suffice. Then an object's bytes stream to
disk (``payload``), and the small XML body of any other operation is read (at most
``MAX_SMALL_BODY``, refused from ``Content-Length`` before reading when larger) and checked against
the declared hash.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from opendeploy.api import sigv4
from opendeploy.api.awsjson import AuditFacts, record_in_trail
from opendeploy.api.errors import ApiError
from opendeploy.api.s3 import buckets, copying, listing, multipart, objects
from opendeploy.api.s3.auth import authenticate, authorize
from opendeploy.api.s3.context import S3Context, parse_query
from opendeploy.api.s3.errors import S3Error, error_response, not_implemented
from opendeploy.api.s3.payload import check_body_integrity, check_signed_payload
from opendeploy.api.s3.reserved import is_reserved
from opendeploy.api.server_state import ServerState
from opendeploy.domain import cloudtrail_events
from opendeploy.store.blob_store.base import BlobStoreError, check_bucket_name, check_key
from opendeploy.store.blob_store.filesystem import FilesystemBlobStore

log = logging.getLogger(__name__)

Handler = Callable[[S3Context], Awaitable[Response]]
# The most the (XML) body of an operation other than an upload may hold; read into memory once the
# request is authenticated and authorised.
MAX_SMALL_BODY = 4 * 1024 * 1024
STREAMING_OPERATIONS = frozenset({"PutObject", "UploadPart"})
# Small bodies whose Content-MD5 / x-amz-checksum-* describe the body itself (for CompleteMultipartUpload
# an x-amz-checksum-* header is the whole object's).
CHECKSUMMED_BODIES = frozenset({"CreateBucket", "DeleteObjects"})
# Sub-resources S3 has and this server does not implement (answered with NotImplemented).
_UNSUPPORTED_SUBRESOURCES = (
    "acl", "analytics", "accelerate", "attributes", "cors", "encryption", "intelligent-tiering", "inventory",
    "legal-hold", "lifecycle", "logging", "metadataConfiguration", "metrics", "notification", "object-lock",
    "ownershipControls", "policy", "policyStatus", "publicAccessBlock", "replication", "requestPayment",
    "restore", "retention", "select", "tagging", "torrent", "versions", "website",
)  # fmt: skip

HANDLERS: dict[str, Handler] = {
    "ListBuckets": buckets.list_buckets,
    "CreateBucket": buckets.create_bucket,
    "HeadBucket": buckets.head_bucket,
    "DeleteBucket": buckets.delete_bucket,
    "GetBucketLocation": buckets.get_bucket_location,
    "GetBucketVersioning": buckets.get_bucket_versioning,
    "ListObjects": listing.list_objects,
    "ListObjectsV2": listing.list_objects_v2,
    "PutObject": objects.put_object,
    "CopyObject": copying.copy_object,
    "UploadPartCopy": copying.upload_part_copy,
    "GetObject": objects.get_object,
    "HeadObject": objects.head_object,
    "DeleteObject": objects.delete_object,
    "DeleteObjects": objects.delete_objects,
    "CreateMultipartUpload": multipart.create_multipart_upload,
    "UploadPart": multipart.upload_part,
    "CompleteMultipartUpload": multipart.complete_multipart_upload,
    "AbortMultipartUpload": multipart.abort_multipart_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_multipart_uploads,
}


def split_path(raw_path: str) -> tuple[str, str]:
    """``(bucket, key)`` of a path-style request path, percent-decoded (UTF-8)."""
    path = raw_path[1:] if raw_path.startswith("/") else raw_path
    bucket, _, key = path.partition("/")
    try:
        return unquote(bucket, errors="strict"), unquote(key, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI: it is not valid UTF-8.") from None


def operation_for(method: str, bucket: str, key: str, query: dict[str, str], *, copy: bool = False) -> str:
    """The S3 operation a request names (raises NotImplemented / MethodNotAllowed for the rest).

    ``copy``: the request has an ``x-amz-copy-source`` header.
    """
    for name in _UNSUPPORTED_SUBRESOURCES:
        if name in query:
            raise not_implemented(f"The {name!r} sub-resource")
    if not bucket:
        if method == "GET":
            return "ListBuckets"
        raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
    if not key:
        table = {
            ("GET", "location"): "GetBucketLocation",
            ("GET", "versioning"): "GetBucketVersioning",
            ("GET", "uploads"): "ListMultipartUploads",
            ("POST", "delete"): "DeleteObjects",
        }
        for (verb, subresource), operation in table.items():
            if method == verb and subresource in query:
                return operation
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
        simple = {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}
        if method in simple and not (method == "PUT" and "versioning" in query):
            return simple[method]
        if method == "PUT" and "versioning" in query:
            raise not_implemented("PutBucketVersioning (object versions)")
    else:
        upload = "uploadId" in query
        if method == "PUT":
            if upload or "partNumber" in query:
                return "UploadPartCopy" if copy else "UploadPart"
            return "CopyObject" if copy else "PutObject"
        if method == "GET":
            return "ListParts" if upload else "GetObject"
        if method == "HEAD":
            return "HeadObject"
        if method == "DELETE":
            return "AbortMultipartUpload" if upload else "DeleteObject"
        if method == "POST":
            if "uploads" in query:
                return "CreateMultipartUpload"
            if upload:
                return "CompleteMultipartUpload"
    raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)


# The query parameters worth recording (which version, which upload, which listing).
_RECORDED_QUERY = frozenset({"versionId", "uploadId", "partNumber", "prefix", "delimiter", "max-keys"})


class S3Route(BaseRoute):
    """The S3 API as a Starlette route (see the module docstring for which requests it claims)."""

    def __init__(self, state: ServerState, store: FilesystemBlobStore) -> None:
        self.state = state
        self.store = store

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path: str = scope["path"]
        if path == "/":
            return (Match.FULL, {}) if scope["method"] in ("GET", "HEAD") else (Match.NONE, {})
        first = path[1:].split("/", 1)[0]
        # A reserved name is only a fallback: any route of the server's own that matches wins, and what
        # no route takes gets S3's InvalidBucketName rather than a bare 404.
        return (Match.PARTIAL, {}) if is_reserved(first) else (Match.FULL, {})

    def url_path_for(self, name: str, /, **path_params: object) -> object:
        raise NotImplementedError("the S3 route has no named paths")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.serve(request)
        await response(scope, receive, send)

    async def serve(self, request: Request) -> Response:
        request_id = secrets.token_hex(8).upper()
        context: S3Context | None = None
        raw_path = request.scope.get("raw_path", b"/").decode("latin-1").split("?", 1)[0]
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        method = request.method
        resource = raw_path
        operation = "?"
        try:
            bucket, key = split_path(raw_path)
            query = parse_query(raw_query)
            context = S3Context(request, self.state, self.store, request_id, bucket, key, query)
            try:
                copy = "x-amz-copy-source" in request.headers
                operation = operation_for(method, bucket, key, query, copy=copy)
                refused: S3Error | None = None
            except S3Error as error:
                refused = error  # answered only after the signature check, so strangers learn nothing
            incoming = sigv4.IncomingRequest(
                method=method,
                raw_path=raw_path,
                raw_query=raw_query,
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
                body=None,  # the signature covers the declared x-amz-content-sha256, checked below
            )
            context.verified = await run_in_threadpool(authenticate, self.state, incoming)
            if refused is not None:
                raise refused
            await run_in_threadpool(
                lambda: authorize(
                    self.state,
                    context.verified,
                    operation,
                    bucket,
                    key,
                    version_id=query.get("versionId"),
                    copy_source=request.headers.get("x-amz-copy-source"),
                    source_ip=request.client.host if request.client else None,
                    secure=request.url.scheme == "https",
                )
            )
            if is_reserved(bucket):
                raise S3Error(
                    "InvalidBucketName",
                    f"The specified bucket is not valid: {bucket!r} is reserved for the server's own routes.",
                    BucketName=bucket,
                )
            if bucket:
                check_bucket_name(bucket)
            if key:
                check_key(key)
            if operation not in STREAMING_OPERATIONS:
                context.body_started = True
                context.body = await _small_body(request)
                check_signed_payload(context)
            if operation in CHECKSUMMED_BODIES:
                check_body_integrity(context)
            response = await HANDLERS[operation](context)
        except BlobStoreError as error:
            failure = S3Error.from_store_error(error)
            await self._record(request, request_id, operation, context, failure)
            return self._failed(failure, request_id, method, resource, operation, context)
        except S3Error as error:
            await self._record(request, request_id, operation, context, error)
            return self._failed(error, request_id, method, resource, operation, context)
        except ClientDisconnect:
            log.info("S3 %s %s: client disconnected; nothing stored", operation, resource)
            return Response(status_code=400)
        except Exception:
            log.exception("S3 %s %s failed (request %s)", operation, resource, request_id)
            error = S3Error("InternalError", "We encountered an internal error. Please try again.", 500)
            return _closing_if_body_unread(
                error_response(error, request_id, method=method, resource=resource), context
            )
        log.debug("S3 %s %s -> %s", operation, resource, response.status_code)
        await self._record(request, request_id, operation, context, None)
        return response

    async def _record(
        self,
        request: Request,
        request_id: str,
        operation: str,
        context: S3Context | None,
        error: S3Error | None,
    ) -> None:
        """Put the request on the audit trail (S3 object operations are CloudTrail's data events)."""
        if operation == "?":  # not even a request S3 knows: nothing to say about it
            return
        audit = AuditFacts.of(request, request_id)
        verified = context.verified if context is not None else None
        if verified is not None:
            arn = getattr(verified.key, "principal_arn", None)
            audit.caller = cloudtrail_events.Caller(arn, verified.access_key_id)
        if context is not None:
            audit.params = {
                **({"bucketName": context.bucket} if context.bucket else {}),
                **({"key": context.key} if context.key else {}),
                **{name: value for name, value in context.query.items() if name in _RECORDED_QUERY},
            }
        failure = ApiError(error.code, error.message, status=error.status) if error is not None else None
        await record_in_trail(request, audit.call("s3", operation, self.state.settings, error=failure))

    @staticmethod
    def _failed(
        error: S3Error, request_id: str, method: str, resource: str, operation: str, context: S3Context | None
    ) -> Response:
        log.info("S3 %s %s -> %s %s: %s", operation, resource, error.status, error.code, error.message)
        return _closing_if_body_unread(
            error_response(error, request_id, method=method, resource=resource), context
        )


def _closing_if_body_unread(response: Response, context: S3Context | None) -> Response:
    """Close the connection after answering a client still holding its body back for "100 Continue".

    It will never send that body now, so the connection cannot carry another request.
    """
    waiting = context is not None and not context.body_started
    if waiting and (context.header("expect") or "").lower() == "100-continue":  # type: ignore[union-attr]
        response.headers["Connection"] = "close"
    return response


async def _small_body(request: Request) -> bytes:
    """The body of an operation other than an upload; ``MaxMessageLengthExceeded`` beyond
    ``MAX_SMALL_BODY`` (from ``Content-Length``, before reading, when the client sends one)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_SMALL_BODY:
        raise S3Error("MaxMessageLengthExceeded", "Your request was too big.", close_connection=True)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_SMALL_BODY:
            raise S3Error("MaxMessageLengthExceeded", "Your request was too big.", close_connection=True)
    return bytes(body)

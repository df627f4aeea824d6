"""AWS Signature Version 4 verification, for every protocol the server speaks.

The expected signature is recomputed with botocore's own signer (``SigV4Auth``) over a request rebuilt
from what the client sent: its method, raw path and query, exactly the headers it listed as signed,
and its payload hash. One function serves every signing name (``codedeploy``,
``codedeploy-commands``, ``s3``): the caller says which, how to find a key's secret, and whether
S3's variants are allowed (unnormalised paths, ``UNSIGNED-PAYLOAD``, streaming ``aws-chunked``
payloads, presigned query-string URLs).

The check comes in two steps, so an adapter can refuse a request before reading its body:
``check_headers`` checks everything the headers alone decide (an Authorization header or presigned
query that is well formed, scoped to this service and region, signed within 15 minutes of now, by a
key the server knows, with a well-formed ``x-amz-content-sha256``); ``verify`` does that (or takes its
result) and then recomputes the signature, which covers the payload's hash, so it needs the body or
its SHA-256 (``IncomingRequest.body_sha256``, for a body hashed as it streamed in) unless the
signature covers a declared hash (S3's ``x-amz-content-sha256``), which the adapter then checks
against the body it reads.

Failures raise ``ApiError`` with the codes AWS uses for JSON protocols (``ErrorCodes``); the S3 adapter
passes its own codes. A streaming payload's chunk signatures are checked by ``decode_aws_chunked``
with the ``VerifiedSignature`` this module returns.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl

from botocore.auth import EMPTY_SHA256_HASH, SigV4Auth
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from opendeploy.api.errors import ApiError

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_PRESIGNED_EXPIRY = 7 * 24 * 3600
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_PAYLOADS = frozenset({STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER})
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_AUTH_FIELD = re.compile(r"\s*(Credential|SignedHeaders|Signature)\s*=\s*([^,\s]*)\s*")


@dataclass(frozen=True)
class ErrorCodes:
    """The error names a protocol uses for each way a signature can fail."""

    missing: str = "MissingAuthenticationTokenException"
    incomplete: str = "IncompleteSignatureException"
    unknown_key: str = "UnrecognizedClientException"
    mismatch: str = "InvalidSignatureException"
    expired: str = "InvalidSignatureException"
    payload_mismatch: str = "InvalidSignatureException"
    status: int = 400


JSON_ERRORS = ErrorCodes()
S3_ERRORS = ErrorCodes(
    missing="AccessDenied",
    incomplete="AuthorizationHeaderMalformed",
    unknown_key="InvalidAccessKeyId",
    mismatch="SignatureDoesNotMatch",
    expired="RequestTimeTooSkewed",
    payload_mismatch="XAmzContentSHA256Mismatch",
    status=403,
)


class SecretLookup(Protocol):
    """What a key lookup returns: at least the secret (``StoredAccessKey`` fits)."""

    secret_access_key: str


@dataclass(frozen=True)
class IncomingRequest:
    """The parts of an HTTP request a signature covers, as the client sent them."""

    method: str
    raw_path: str  # percent-encoded, as on the request line
    raw_query: str
    headers: Sequence[tuple[str, str]]  # every header, names in any case, repeats kept
    body: bytes | None  # None when the body is not in memory (streamed, or not read yet)
    body_sha256: str | None = None  # hex SHA-256 of a body hashed as it streamed in (``body`` is None)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        return self._first_values.get(name.lower())

    @functools.cached_property
    def _first_values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for key, value in self.headers:
            values.setdefault(key.lower(), value)
        return values


@dataclass(frozen=True)
class VerifiedSignature:
    """A request whose signature checked out, and what chunk verification needs."""

    access_key_id: str
    key: Any  # what the lookup returned for this key (e.g. a StoredAccessKey)
    timestamp: str  # the request's X-Amz-Date
    scope: str  # date/region/service/aws4_request
    signature: str  # the request's signature: the seed of a streaming payload's chunk signatures
    signing_key: bytes
    payload_hash: str  # the hex hash, UNSIGNED-PAYLOAD or a STREAMING-* marker
    presigned: bool = False


@dataclass(frozen=True)
class HeaderCheck:
    """A request whose headers passed ``check_headers``: what ``verify`` needs to finish the check."""

    access_key_id: str
    key: Any  # what the lookup returned for this key (e.g. a StoredAccessKey)
    authorization: _Authorization
    query: list[tuple[str, str]]  # the query the signature covers (a presigned URL's, without its signature)
    declared_payload_hash: str | None  # x-amz-content-sha256 (or a presigned URL's), if any


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    timestamp: str
    presigned: bool
    expires: int | None = None


def _fail(codes: ErrorCodes, kind: str, message: str) -> ApiError:
    return ApiError(getattr(codes, kind), message, status=codes.status)


def _parse_credential(credential: str, codes: ErrorCodes) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        raise _fail(
            codes,
            "incomplete",
            f"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{credential}'",
        )
    return parts[0], parts[1], parts[2], parts[3]


def _parse_header_authorization(request: IncomingRequest, value: str, codes: ErrorCodes) -> _Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _fail(
            codes, "incomplete", f"Unsupported authorization algorithm {algorithm!r}; use {ALGORITHM}"
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        match = _AUTH_FIELD.fullmatch(part)
        if match:
            fields[match.group(1)] = match.group(2)
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if missing:
        raise _fail(
            codes, "incomplete", f"Authorization header requires {', '.join(missing)} parameter(s): {value!r}"
        )
    key_id, date, region, service = _parse_credential(fields["Credential"], codes)
    timestamp = request.header("x-amz-date")
    if timestamp is None:
        http_date = request.header("date")
        timestamp = _from_http_date(http_date) if http_date else None
    if not timestamp:
        raise _fail(
            codes,
            "incomplete",
            "Authorization header requires existence of either an X-Amz-Date or a Date header",
        )
    return _Authorization(
        key_id,
        date,
        region,
        service,
        fields["SignedHeaders"].split(";"),
        fields["Signature"],
        timestamp,
        False,
    )


def _from_http_date(value: str) -> str | None:
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).astimezone(UTC).strftime(AMZ_DATE_FORMAT)
    except (TypeError, ValueError):
        return None


def _parse_query_authorization(query: list[tuple[str, str]], codes: ErrorCodes) -> _Authorization:
    params = dict(query)
    missing = [
        name
        for name in (
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
            "X-Amz-Expires",
        )
        if not params.get(name)
    ]
    if params.get("X-Amz-Algorithm") != ALGORITHM or missing:
        raise _fail(
            codes,
            "incomplete",
            f"Query-string authentication requires X-Amz-Algorithm={ALGORITHM} and "
            f"{', '.join(missing) or 'the other X-Amz-* parameters'}",
        )
    key_id, date, region, service = _parse_credential(params["X-Amz-Credential"], codes)
    try:
        expires = int(params["X-Amz-Expires"])
    except ValueError:
        expires = -1
    if not 0 < expires <= MAX_PRESIGNED_EXPIRY:
        raise _fail(
            codes, "incomplete", f"X-Amz-Expires must be between 1 and {MAX_PRESIGNED_EXPIRY} seconds"
        )
    return _Authorization(
        key_id,
        date,
        region,
        service,
        params["X-Amz-SignedHeaders"].split(";"),
        params["X-Amz-Signature"],
        params["X-Amz-Date"],
        True,
        expires,
    )


class _SignedHeaders(dict[str, list[str]]):
    """The signed headers (lower-case name -> values in order) in the shape botocore's canonical form
    reads them: iterating names and ``get_all(name)``, without building a full HTTPHeaders per request."""

    def get_all(self, name: str, failobj: Any = None) -> list[str] | Any:
        return self.get(name.lower(), failobj)


class _ExpectedSignature(SigV4Auth):
    """botocore's SigV4 signer, told exactly which headers and payload hash the client signed, with the
    day's signing key (derived by ``signing_key``, remembered) instead of deriving it again."""

    def __init__(
        self,
        credentials: Credentials,
        service: str,
        region: str,
        signed_headers: _SignedHeaders,
        payload_hash: str,
        normalize_path: bool,
        key: bytes,
    ) -> None:
        super().__init__(credentials, service, region)
        self._signed_headers = signed_headers
        self._payload_hash = payload_hash
        self._normalize_path = normalize_path
        self._key = key

    def headers_to_sign(self, request: Any) -> _SignedHeaders:  # type: ignore[override]
        return self._signed_headers

    def _normalize_url_path(self, path: str) -> str:
        return super()._normalize_url_path(path) if self._normalize_path else path

    def payload(self, request: Any) -> str:
        return self._payload_hash

    def signature(self, string_to_sign: str, request: Any) -> str:
        return hmac.new(self._key, string_to_sign.encode(), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=4096)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The SigV4 signing key of a secret for one day, region and service (remembered: a key signs many
    requests a day, and deriving it takes four HMACs)."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@dataclass
class _SigningView:
    """What botocore's signer reads of a request: building a full AWSRequest for each verification
    cost more than the signature arithmetic."""

    method: str
    url: str
    headers: Any  # only x-amz-content-sha256 (case-insensitively), which the canonical request reads
    params: list[tuple[str, str]]
    context: dict[str, Any]


def _parse_amz_date(value: str) -> datetime:
    """``YYYYMMDD'T'HHMMSS'Z'`` as a UTC datetime (a strict, quicker ``strptime``)."""
    if len(value) != 16 or value[8] != "T" or value[15] != "Z" or not (value[:8] + value[9:15]).isdigit():
        raise ValueError(value)
    return datetime(
        int(value[0:4]),
        int(value[4:6]),
        int(value[6:8]),
        int(value[9:11]),
        int(value[11:13]),
        int(value[13:15]),
        tzinfo=UTC,
    )


def check_headers(
    request: IncomingRequest,
    *,
    signing_name: str,
    lookup: Callable[[str], SecretLookup | None],
    regions: Iterable[str] | None = None,
    now: datetime | None = None,
    s3: bool = False,
    codes: ErrorCodes = JSON_ERRORS,
) -> HeaderCheck:
    """Check all of ``request``'s signature that does not need its body, or raise (the first step of
    ``verify``, for adapters that refuse a request before reading its body).

    ``lookup(access_key_id)`` returns the key (with ``secret_access_key``) or ``None``; ``regions``
    limits the regions a credential scope may name (``None``: any). ``request.body`` is not read.
    """
    now = now or datetime.now(UTC)
    query = parse_qsl(request.raw_query, keep_blank_values=True)
    authorization = request.header("authorization")
    if authorization:
        auth = _parse_header_authorization(request, authorization, codes)
    elif s3 and any(name == "X-Amz-Signature" for name, _ in query):
        auth = _parse_query_authorization(query, codes)
        query = [(name, value) for name, value in query if name != "X-Amz-Signature"]
    else:
        raise _fail(codes, "missing", "Missing Authentication Token")

    if "host" not in [name.lower() for name in auth.signed_headers]:
        raise _fail(codes, "incomplete", "'Host' must be a 'SignedHeader' in the AWS Authorization.")
    if auth.service != signing_name:
        raise _fail(codes, "incomplete", f"Credential should be scoped to correct service: '{signing_name}'.")
    allowed_regions = set(regions) if regions is not None else None
    if allowed_regions is not None and auth.region not in allowed_regions:
        raise _fail(
            codes,
            "mismatch",
            f"Credential should be scoped to a valid region: '{auth.region}' is not this server's region "
            f"({', '.join(sorted(allowed_regions))}).",
        )
    try:
        signed_at = _parse_amz_date(auth.timestamp)
    except ValueError:
        raise _fail(
            codes, "incomplete", f"Invalid X-Amz-Date {auth.timestamp!r}; expected YYYYMMDD'T'HHMMSS'Z'"
        ) from None
    if auth.date != auth.timestamp[:8]:
        raise _fail(
            codes,
            "mismatch",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{auth.date}' != '{auth.timestamp[:8]}'",
        )
    _check_time(auth, signed_at, now, codes)

    key = lookup(auth.access_key_id)
    if key is None:
        raise _fail(codes, "unknown_key", "The security token included in the request is invalid.")
    declared = _declared_payload_hash(request, auth, s3, codes)
    return HeaderCheck(auth.access_key_id, key, auth, query, declared)


def verify(
    request: IncomingRequest,
    *,
    signing_name: str,
    lookup: Callable[[str], SecretLookup | None],
    regions: Iterable[str] | None = None,
    now: datetime | None = None,
    s3: bool = False,
    codes: ErrorCodes = JSON_ERRORS,
    checked: HeaderCheck | None = None,
) -> VerifiedSignature:
    """Check ``request``'s SigV4 signature (header or, with ``s3``, presigned query) or raise.

    ``checked`` is what ``check_headers`` returned for this request's headers, if that step was
    done already; otherwise it is done here, with the same arguments. The payload hash the signature
    covers is the declared ``x-amz-content-sha256`` (which the body, when given, must match) or else
    the body's own: ``request.body_sha256``, the SHA-256 of ``request.body``, or, with neither, that
    of an empty body.
    """
    if checked is None:
        checked = check_headers(
            request, signing_name=signing_name, lookup=lookup, regions=regions, now=now, s3=s3, codes=codes
        )
    auth, key, query = checked.authorization, checked.key, checked.query
    payload_hash = _payload_hash(request, checked.declared_payload_hash, codes)
    signed_names = {name.lower() for name in auth.signed_headers}
    signed = _SignedHeaders({name: [] for name in signed_names})
    # botocore's canonical request reads only the signed headers (and x-amz-content-sha256, if sent).
    headers: Any = {}
    for name, value in request.headers:
        lower = name.lower()
        if lower in signed_names:
            signed[lower].append(value)
        if lower == "x-amz-content-sha256":
            if not headers:
                headers = HTTPHeaders()
            headers[lower] = value
    for name in [name for name, values in signed.items() if not values]:
        del signed[name]  # listed as signed but not sent: botocore leaves it out as well
    aws_request = _SigningView(
        method=request.method.upper(),
        url=f"http://signed{request.raw_path or '/'}",
        headers=headers,
        params=query,
        context={"timestamp": auth.timestamp},
    )
    key_bytes = signing_key(key.secret_access_key, auth.date, auth.region, auth.service)
    signer = _ExpectedSignature(
        Credentials(auth.access_key_id, key.secret_access_key),
        auth.service,
        auth.region,
        signed,
        payload_hash,
        normalize_path=not s3,
        key=key_bytes,
    )
    string_to_sign = signer.string_to_sign(aws_request, signer.canonical_request(aws_request))
    expected = signer.signature(string_to_sign, aws_request)
    if not hmac.compare_digest(expected, auth.signature):
        raise _fail(
            codes,
            "mismatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. "
            "Consult the service documentation for details.",
        )
    scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
    return VerifiedSignature(
        access_key_id=auth.access_key_id,
        key=key,
        timestamp=auth.timestamp,
        scope=scope,
        signature=auth.signature,
        signing_key=key_bytes,
        payload_hash=payload_hash,
        presigned=auth.presigned,
    )


def _check_time(auth: _Authorization, signed_at: datetime, now: datetime, codes: ErrorCodes) -> None:
    fmt = AMZ_DATE_FORMAT
    if auth.presigned:
        if signed_at - now > MAX_CLOCK_SKEW:
            raise _fail(codes, "expired", "Request is not yet valid")
        if now > signed_at + timedelta(seconds=auth.expires or 0):
            raise _fail(codes, "expired", "Request has expired")
        return
    if now - signed_at > MAX_CLOCK_SKEW:
        raise _fail(
            codes,
            "expired",
            f"Signature expired: {auth.timestamp} is now earlier than {(now - MAX_CLOCK_SKEW).strftime(fmt)} "
            f"({now.strftime(fmt)} - 15 min.)",
        )
    if signed_at - now > MAX_CLOCK_SKEW:
        raise _fail(
            codes,
            "expired",
            f"Signature not yet current: {auth.timestamp} is still later than "
            f"{(now + MAX_CLOCK_SKEW).strftime(fmt)} ({now.strftime(fmt)} + 15 min.)",
        )


def _declared_payload_hash(
    request: IncomingRequest, auth: _Authorization, s3: bool, codes: ErrorCodes
) -> str | None:
    """The payload hash the headers declare (checked for form), or ``None``: the body's own hash."""
    declared = request.header("x-amz-content-sha256")
    if auth.presigned:
        return declared or UNSIGNED_PAYLOAD
    if declared is None:
        if s3:
            raise _fail(codes, "incomplete", "Missing required header for this request: x-amz-content-sha256")
        return None
    if declared == UNSIGNED_PAYLOAD or declared in STREAMING_PAYLOADS:
        if not s3:
            raise _fail(codes, "payload_mismatch", f"x-amz-content-sha256 {declared} is only accepted by S3")
        return declared
    if not _HEX_SHA256.match(declared):
        raise _fail(
            codes,
            "payload_mismatch",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or a SHA-256 hex digest",
        )
    return declared


def _payload_hash(request: IncomingRequest, declared: str | None, codes: ErrorCodes) -> str:
    """The payload hash the signature covers: the declared one (which the body, if given, must match),
    else the body's SHA-256 (that of an empty body when the request has none)."""
    if request.body_sha256 is not None:
        actual: str | None = request.body_sha256
    elif request.body is not None:
        actual = hashlib.sha256(request.body).hexdigest()
    else:
        actual = None
    if declared is None:
        return actual or EMPTY_SHA256_HASH
    if actual is not None and _HEX_SHA256.match(declared) and actual != declared:
        raise _fail(
            codes,
            "payload_mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    return declared


# --- streaming payloads (aws-chunked) --------------------------------------------------------------


class ChunkedPayloadError(ValueError):
    """A streaming payload is malformed or one of its chunk signatures is wrong."""


def decode_aws_chunked(body: bytes, verified: VerifiedSignature) -> tuple[bytes, dict[str, str]]:
    """The object data of an ``aws-chunked`` body, with its trailing headers (checksums), if any.

    For ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD*`` every chunk's signature is checked, chained from the
    request's signature; ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` chunks carry none.
    """
    signed = verified.payload_hash in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
    previous = verified.signature
    data = bytearray()
    position = 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            raise ChunkedPayloadError("chunk header is not terminated by CRLF")
        header = body[position:line_end].decode("ascii", "replace")
        size_text, _, extension = header.partition(";")
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ChunkedPayloadError(f"chunk size {size_text!r} is not hexadecimal") from None
        start, end = line_end + 2, line_end + 2 + size
        chunk = body[start:end]
        if len(chunk) != size:
            raise ChunkedPayloadError("chunk is shorter than its declared size")
        if signed:
            name, _, signature = extension.partition("=")
            if name.strip() != "chunk-signature":
                raise ChunkedPayloadError("chunk has no chunk-signature")
            string_to_sign = "\n".join(
                [
                    "AWS4-HMAC-SHA256-PAYLOAD",
                    verified.timestamp,
                    verified.scope,
                    previous,
                    EMPTY_SHA256_HASH,
                    hashlib.sha256(chunk).hexdigest(),
                ]
            )
            expected = hmac.new(verified.signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature.strip()):
                raise ChunkedPayloadError("a chunk signature does not match")
            previous = expected
        data += chunk
        if size == 0:
            trailers = _parse_trailers(body[start:])
            return bytes(data), trailers
        if body[end : end + 2] != b"\r\n":
            raise ChunkedPayloadError("chunk data is not followed by CRLF")
        position = end + 2


def _parse_trailers(rest: bytes) -> dict[str, str]:
    trailers: dict[str, str] = {}
    for line in rest.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.decode("latin-1").partition(":")
        if sep and name.lower() != "x-amz-trailer-signature":
            trailers[name.strip().lower()] = value.strip()
    return trailers

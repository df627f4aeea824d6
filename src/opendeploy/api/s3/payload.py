"""Receiving an object's bytes (PutObject, UploadPart): streamed to disk, every integrity check applied.

The body arrives as plain bytes or ``aws-chunked`` (see ``aws_chunked``) and is written to the store's
pending file in batches from a worker thread, which also hashes it, so a large upload never sits in
memory. Before anything is committed the bytes are checked against what the client declared: the
signed payload hash (``x-amz-content-sha256``), ``Content-Length`` or ``x-amz-decoded-content-length``,
``Content-MD5`` and any ``x-amz-checksum-*`` value (header or trailer). A failed check, a client that
disconnects, or a server crash leaves no object behind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

import anyio
from starlette.concurrency import run_in_threadpool

from opendeploy.api import sigv4
from opendeploy.api.s3.aws_chunked import AwsChunkedDecoder, ChunkedPayloadError
from opendeploy.api.s3.context import S3Context
from opendeploy.api.s3.errors import S3Error
from opendeploy.store.blob_store import checksums
from opendeploy.store.blob_store.record import PendingFile

MAX_OBJECT_SIZE = 5 * 1024**3  # S3's limit for one PutObject or one part
WRITE_BATCH = 1024 * 1024
# An upload that sends nothing for this long is abandoned (S3's RequestTimeout), so a stalled client
# cannot hold a pending write open forever. OPENDEPLOY_S3_IDLE_TIMEOUT (seconds) changes it.
BODY_IDLE_TIMEOUT = float(os.environ.get("OPENDEPLOY_S3_IDLE_TIMEOUT", "60"))
CHECKSUM_HEADER_PREFIX = "x-amz-checksum-"


@dataclass(frozen=True)
class UploadPlan:
    """What the request says about its body, worked out before any byte is read."""

    streaming: bool  # aws-chunked
    length: int | None  # the object's length as declared
    algorithms: frozenset[str]  # checksums to compute (requested by the client, plus sha256 to verify)
    checksum_algorithm: str | None  # the one S3 checksum the client asked for
    declared_checksum: str | None  # its value, when sent as a header (a trailer comes later)


def plan_upload(context: S3Context) -> UploadPlan:
    """Check the headers of an upload and decide how to receive it (raises S3 errors)."""
    verified = context.verified
    assert verified is not None
    headers = context.headers
    streaming = verified.payload_hash in sigv4.STREAMING_PAYLOADS or "aws-chunked" in headers.get(
        "content-encoding", ""
    )
    length_header = "x-amz-decoded-content-length" if streaming else "content-length"
    length_text = headers.get(length_header)
    length = None
    if length_text is not None:
        if not length_text.isdigit():
            raise S3Error("InvalidArgument", f"{length_header} must be a non-negative integer")
        length = int(length_text)
    elif "chunked" not in headers.get("transfer-encoding", "").lower():
        raise S3Error("MissingContentLength", "You must provide the Content-Length HTTP header.", 411)
    if length is not None and length > MAX_OBJECT_SIZE:
        raise S3Error(
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
            ProposedSize=str(length),
            MaxSizeAllowed=str(MAX_OBJECT_SIZE),
        )

    sent = [name for name in headers if name.startswith(CHECKSUM_HEADER_PREFIX)]
    sent = [name for name in sent if name[len(CHECKSUM_HEADER_PREFIX) :] not in ("algorithm", "type", "mode")]
    trailer = headers.get("x-amz-trailer", "").strip().lower()
    if trailer:
        if not streaming:
            raise S3Error("InvalidRequest", "x-amz-trailer requires an aws-chunked payload")
        if not trailer.startswith(CHECKSUM_HEADER_PREFIX):
            raise S3Error("InvalidRequest", f"unsupported trailing header {trailer!r}")
        sent.append(trailer)
    if len(sent) > 1:
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    algorithm = sent[0][len(CHECKSUM_HEADER_PREFIX) :] if sent else None
    requested = headers.get("x-amz-sdk-checksum-algorithm") or headers.get("x-amz-checksum-algorithm")
    if algorithm is None and requested:
        raise S3Error(
            "InvalidRequest",
            f"x-amz-sdk-checksum-algorithm specified {requested}, but no x-amz-checksum-"
            f"{requested.lower()} header or trailer was sent.",
        )
    if algorithm and requested and requested.lower() != algorithm:
        raise S3Error(
            "InvalidRequest",
            f"Value for x-amz-sdk-checksum-algorithm header ({requested}) does not match the "
            f"checksum sent ({algorithm}).",
        )
    algorithms = set()
    if algorithm:
        try:
            checksums.new_checksum(algorithm)
        except checksums.UnsupportedChecksum as error:
            raise S3Error("InvalidRequest", str(error)) from None
        algorithms.add(algorithm)
    if signed_payload_hash(verified.payload_hash):
        algorithms.add("sha256")  # the signed payload hash is SHA-256 of the body
    declared = headers.get(f"{CHECKSUM_HEADER_PREFIX}{algorithm}") if algorithm and not trailer else None
    return UploadPlan(streaming, length, frozenset(algorithms), algorithm, declared)


async def receive(context: S3Context, plan: UploadPlan, pending: PendingFile) -> dict[str, str]:
    """Stream the body into ``pending`` and check it; returns the S3 checksums to store with it."""
    verified = context.verified
    assert verified is not None
    decoder = AwsChunkedDecoder(verified) if plan.streaming else None
    context.body_started = True
    batch = bytearray()
    received = 0
    stream = context.request.stream().__aiter__()
    try:
        while True:
            try:
                with anyio.fail_after(BODY_IDLE_TIMEOUT):
                    piece = await stream.__anext__()
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise S3Error(
                    "RequestTimeout",
                    "Your socket connection to the server was not read from or written to within the timeout "
                    f"period ({BODY_IDLE_TIMEOUT:g} s). Idle connections will be closed.",
                    close_connection=True,
                ) from None
            pieces = decoder.feed(piece) if decoder else [piece]
            for data in pieces:
                received += len(data)
                batch += data
            if received > MAX_OBJECT_SIZE or (plan.length is not None and received > plan.length):
                raise S3Error(
                    "IncompleteBody" if plan.length is not None else "EntityTooLarge",
                    "The request body is longer than the declared length.",
                    close_connection=True,
                )
            if len(batch) >= WRITE_BATCH:
                await run_in_threadpool(pending.write, bytes(batch))
                batch.clear()
        if batch:
            await run_in_threadpool(pending.write, bytes(batch))
        trailers = decoder.finish() if decoder else {}
    except ChunkedPayloadError as error:
        code = "SignatureDoesNotMatch" if "signature" in str(error) else "IncompleteBody"
        status = 403 if code == "SignatureDoesNotMatch" else 400
        raise S3Error(
            code, f"The aws-chunked payload is invalid: {error}", status, close_connection=True
        ) from None

    if plan.length is not None and received != plan.length:
        raise S3Error(
            "IncompleteBody",
            f"You did not provide the number of bytes specified by the Content-Length HTTP header "
            f"({received} of {plan.length}).",
        )
    if signed_payload_hash(verified.payload_hash) and pending.digest("sha256").hex() != verified.payload_hash:
        raise S3Error(
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ClientComputedContentSHA256=verified.payload_hash,
            S3ComputedContentSHA256=pending.digest("sha256").hex(),
        )
    check_content_md5(context.header("content-md5"), pending.digest("md5"))
    stored: dict[str, str] = {}
    if plan.checksum_algorithm:
        name = plan.checksum_algorithm
        expected = plan.declared_checksum or trailers.get(f"{CHECKSUM_HEADER_PREFIX}{name}")
        if expected is None:
            raise S3Error("InvalidRequest", f"The x-amz-checksum-{name} trailer was declared but not sent.")
        actual = pending.b64(name)
        if expected != actual:
            raise S3Error(
                "BadDigest", f"The {name.upper()} you specified did not match the calculated checksum."
            )
        stored[name] = actual
    return stored


def signed_payload_hash(payload_hash: str) -> bool:
    """Whether the signature covers the body's SHA-256 (rather than UNSIGNED-PAYLOAD or STREAMING-*)."""
    return len(payload_hash) == 64 and all(c in "0123456789abcdef" for c in payload_hash)


def check_content_md5(header: str | None, md5: bytes) -> None:
    """``InvalidDigest`` for a malformed Content-MD5, ``BadDigest`` when it does not match."""
    if header is None:
        return
    try:
        declared = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        declared = b""
    if len(declared) != 16:
        raise S3Error("InvalidDigest", "The Content-MD5 you specified is not valid.")
    if declared != md5:
        raise S3Error(
            "BadDigest",
            "The Content-MD5 you specified did not match what we received.",
            ExpectedDigest=header,
        )


def check_signed_payload(context: S3Context) -> None:
    """``XAmzContentSHA256Mismatch`` unless a small body, read after the signature was verified, has
    the SHA-256 the signature covers (when it covers one, not ``UNSIGNED-PAYLOAD``)."""
    verified = context.verified
    if verified is None or not signed_payload_hash(verified.payload_hash):
        return
    computed = hashlib.sha256(context.body or b"").hexdigest()
    if computed != verified.payload_hash:
        raise S3Error(
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ClientComputedContentSHA256=verified.payload_hash,
            S3ComputedContentSHA256=computed,
        )


def check_body_integrity(context: S3Context) -> None:
    """Check a small body (``context.body``) against its Content-MD5 and any ``x-amz-checksum-*`` header."""
    body = context.body or b""
    check_content_md5(context.header("content-md5"), hashlib.md5(body, usedforsecurity=False).digest())
    for name in checksums.ALGORITHMS:
        declared = context.header(f"{CHECKSUM_HEADER_PREFIX}{name}")
        if declared is None:
            continue
        try:
            checksum = checksums.new_checksum(name)
        except checksums.UnsupportedChecksum as error:
            raise S3Error("InvalidRequest", str(error)) from None
        checksum.update(body)
        if checksum.b64digest() != declared:
            raise S3Error(
                "BadDigest", f"The {name.upper()} you specified did not match the calculated checksum."
            )

"""Server-side copies: CopyObject and UploadPartCopy (``x-amz-copy-source``), as ``aws s3 cp`` / ``mv``
between S3 locations use them.

The source is read in place and streamed into a new pending write in one worker thread; the copy is
a new single-part object (its ETag is the MD5 of its bytes, as in S3) whose whole-object checksums are
recomputed. ``x-amz-metadata-directive`` chooses the source's metadata (COPY) or the request's
(REPLACE); the ``x-amz-copy-source-if-*`` conditions are honoured.
"""

from __future__ import annotations

from typing import BinaryIO
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from opendeploy.api.s3 import xml
from opendeploy.api.s3.context import S3Context
from opendeploy.api.s3.errors import S3Error, invalid_argument
from opendeploy.api.s3.multipart import part_number, upload_id
from opendeploy.api.s3.objects import (
    attributes_from_headers,
    check_conditions,
    if_none_match_star,
    parse_range,
)
from opendeploy.store.blob_store.base import ByteRange, ObjectInfo, check_bucket_name, check_key
from opendeploy.store.blob_store.record import PendingFile

COPY_CHUNK = 1024 * 1024
COPY_SOURCE_PREFIX = "x-amz-copy-source-"


def copy_source(context: S3Context) -> tuple[str, str]:
    """``(bucket, key)`` named by ``x-amz-copy-source`` (``[/]bucket/key[?versionId=…]``, URL-encoded)."""
    raw = context.header("x-amz-copy-source") or ""
    path, _, query = raw.partition("?")
    bucket, _, key = unquote(path.lstrip("/")).partition("/")
    if not bucket or not key:
        raise invalid_argument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                               "x-amz-copy-source", raw)  # fmt: skip
    check_bucket_name(bucket)
    check_key(key)
    version = query.removeprefix("versionId=") if query.startswith("versionId=") else None
    if version not in (None, "null"):
        raise S3Error(
            "NoSuchVersion", "The specified version does not exist.", 404, Key=key, VersionId=version
        )
    return bucket, key


def _copy(reader: BinaryIO, pending: PendingFile, selected: ByteRange) -> None:
    """Stream ``selected`` bytes of ``reader`` into ``pending`` (in a worker thread)."""
    with reader:
        reader.seek(selected.start)
        remaining = selected.length
        while remaining > 0:
            chunk = reader.read(min(COPY_CHUNK, remaining))
            if not chunk:
                raise S3Error("InternalError", "The copy source ended early.", 500)
            pending.write(chunk)
            remaining -= len(chunk)


async def _open_source(context: S3Context) -> tuple[ObjectInfo, BinaryIO]:
    bucket, key = copy_source(context)
    info, reader = await run_in_threadpool(context.store.open_object, bucket, key)
    if check_conditions(context, info, COPY_SOURCE_PREFIX) is not None:
        reader.close()
        raise S3Error(
            "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412
        )
    return info, reader


def _result(root_tag: str, etag: str, last_modified: float, checksums: dict[str, str]) -> xml.Element:
    root = xml.document(root_tag)
    xml.child(root, "ETag", f'"{etag}"')
    xml.child(root, "LastModified", xml.iso8601(last_modified))
    for name, value in checksums.items():
        xml.child(root, f"Checksum{name.upper()}", value)
    return root


async def copy_object(context: S3Context) -> Response:
    directive = (context.header("x-amz-metadata-directive") or "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise invalid_argument("Unknown metadata directive.", "x-amz-metadata-directive", directive)
    source, reader = await _open_source(context)
    if (source.bucket, source.key) == (context.bucket, context.key) and directive == "COPY":
        reader.close()
        raise S3Error(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself without changing "
            "the object's metadata, storage class, website redirect location or encryption attributes.",
        )
    attributes = source.attributes if directive == "COPY" else attributes_from_headers(context)
    algorithms = {name for name in source.checksums if "-" not in source.checksums[name]}
    requested = (context.header("x-amz-checksum-algorithm") or "").lower()
    if requested:
        algorithms = {requested}
    try:
        pending = await run_in_threadpool(
            context.store.begin_object, context.bucket, context.key, algorithms=algorithms
        )
    except BaseException:
        reader.close()
        raise
    try:
        await run_in_threadpool(_copy, reader, pending, ByteRange(0, source.size - 1))
        info = await run_in_threadpool(
            context.store.commit_object,
            pending,
            attributes=attributes,
            checksums={name: pending.b64(name) for name in algorithms},
            now=context.now,
            if_none_match=if_none_match_star(context),
        )
    finally:
        await run_in_threadpool(pending.abort)
    headers = context.base_headers()
    return xml.xml_response(
        _result("CopyObjectResult", info.etag, info.last_modified, dict(info.checksums)), headers
    )


async def upload_part_copy(context: S3Context) -> Response:
    number = part_number(context)
    source, reader = await _open_source(context)
    try:
        text = context.header("x-amz-copy-source-range")
        selected = parse_range(text, source.size) if text else None
        if text and selected is None:
            raise invalid_argument("The x-amz-copy-source-range value must be of the form bytes=first-last.",
                                   "x-amz-copy-source-range", text)  # fmt: skip
        selected = selected or ByteRange(0, source.size - 1)
        pending = await run_in_threadpool(
            context.store.begin_part, context.bucket, context.key, upload_id(context), number
        )
    except BaseException:
        reader.close()
        raise
    try:
        await run_in_threadpool(_copy, reader, pending, selected)
        part = await run_in_threadpool(context.store.commit_part, pending, checksums={}, now=context.now)
    finally:
        await run_in_threadpool(pending.abort)
    return xml.xml_response(
        _result("CopyPartResult", part.etag, part.last_modified, {}), context.base_headers()
    )

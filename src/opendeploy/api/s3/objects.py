"""Object operations: PutObject, GetObject (ranges, part numbers, conditions), HeadObject,
DeleteObject and DeleteObjects (CopyObject is in ``copying.py``).

Downloads stream from the stored file in a worker thread, a chunk at a time. The store keeps no
versions: the current object's version id is ``null`` (S3's id for unversioned objects); any other
``versionId`` gets ``NoSuchVersion`` on reads and is a no-op on delete, as S3 does when the version
is absent.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from opendeploy.api.s3 import xml
from opendeploy.api.s3.context import S3Context
from opendeploy.api.s3.errors import S3Error, invalid_argument
from opendeploy.api.s3.payload import plan_upload, receive
from opendeploy.store.blob_store.base import (
    DEFAULT_CONTENT_TYPE,
    STORED_HEADERS,
    BlobStoreError,
    ByteRange,
    ObjectAttributes,
    ObjectInfo,
    check_key,
)

READ_CHUNK = 256 * 1024
MAX_DELETE_KEYS = 1000
MAX_DELETE_BODY = 2 * 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def attributes_from_headers(context: S3Context) -> ObjectAttributes:
    """The Content-Type, standard headers and ``x-amz-meta-*`` a writer sent, to store with the object."""
    headers = context.headers
    stored = {name: headers[name.lower()] for name in STORED_HEADERS if name.lower() in headers}
    if "Content-Encoding" in stored:
        # aws-chunked describes the transfer, not the object (S3 drops it).
        encodings = [e.strip() for e in stored["Content-Encoding"].split(",") if e.strip() != "aws-chunked"]
        if encodings:
            stored["Content-Encoding"] = ",".join(encodings)
        else:
            del stored["Content-Encoding"]
    metadata = {
        name[len("x-amz-meta-") :]: value for name, value in headers.items() if name.startswith("x-amz-meta-")
    }
    if sum(len(k) + len(v) for k, v in metadata.items()) > 2048:
        raise S3Error(
            "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size (2 KB)."
        )
    return ObjectAttributes(
        content_type=headers.get("content-type") or DEFAULT_CONTENT_TYPE, headers=stored, metadata=metadata
    )


def if_none_match_star(context: S3Context) -> bool:
    value = context.header("if-none-match")
    if value is None:
        return False
    if value.strip() != "*":
        raise S3Error("NotImplemented", "Conditional writes support only If-None-Match: *", 501)
    return True


async def put_object(context: S3Context) -> Response:
    plan = plan_upload(context)
    attributes = attributes_from_headers(context)
    no_overwrite = if_none_match_star(context)
    pending = await run_in_threadpool(
        context.store.begin_object, context.bucket, context.key, algorithms=plan.algorithms
    )
    try:
        stored_checksums = await receive(context, plan, pending)
        info = await run_in_threadpool(
            context.store.commit_object,
            pending,
            attributes=attributes,
            checksums=stored_checksums,
            now=context.now,
            if_none_match=no_overwrite,
        )
    finally:
        await run_in_threadpool(pending.abort)  # no-op once committed
    headers = context.base_headers()
    headers["ETag"] = info.quoted_etag
    headers.update(checksum_headers(info))
    return Response(status_code=200, headers=headers)


def checksum_headers(info: ObjectInfo) -> dict[str, str]:
    headers = {f"x-amz-checksum-{name}": value for name, value in info.checksums.items()}
    if info.checksums and info.checksum_type:
        headers["x-amz-checksum-type"] = info.checksum_type
    return headers


def _check_version(context: S3Context) -> None:
    version = context.query.get("versionId")
    if version is not None and version != "null":
        raise S3Error(
            "NoSuchVersion",
            "The specified version does not exist (this store keeps only the current version, 'null').",
            404,
            Key=context.key,
            VersionId=version,
        )


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The byte range of a ``Range`` header, ``None`` for the whole object; ``InvalidRange`` if unsatisfiable.

    As S3 does, a header that is not a single ``bytes=`` range is ignored (the whole object is sent).
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise _invalid_range(header, size)
        return ByteRange(max(0, size - length), size - 1)
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        raise _invalid_range(header, size)
    return ByteRange(start, end)


def _invalid_range(header: str, size: int) -> S3Error:
    return S3Error(
        "InvalidRange",
        "The requested range is not satisfiable",
        416,
        RangeRequested=header,
        ActualObjectSize=str(size),
    )


def _part_range(info: ObjectInfo, part_text: str) -> ByteRange:
    if not part_text.isdigit() or not 1 <= int(part_text) <= 10_000:
        raise invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive", "partNumber", part_text
        )
    number = int(part_text)
    sizes = info.part_sizes or (info.size,)
    if number > len(sizes):
        raise S3Error(
            "InvalidPartNumber",
            "The requested partnumber is not satisfiable",
            416,
            PartNumberRequested=part_text,
            ActualPartCount=str(len(sizes)),
        )
    start = sum(sizes[: number - 1])
    return ByteRange(start, start + sizes[number - 1] - 1)


def _http_time(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [item.strip() for item in header.split(",")]
    return "*" in candidates or any(candidate.strip('"') == etag for candidate in candidates)


def check_conditions(context: S3Context, info: ObjectInfo, prefix: str = "") -> int | None:
    """412 or 304 as S3 (RFC 7232) decides from If-Match, If-Unmodified-Since, If-None-Match and
    If-Modified-Since (each named with ``prefix``, e.g. ``x-amz-copy-source-``); ``None`` to go on."""
    modified = int(info.last_modified)
    if_match = context.header(f"{prefix}if-match")
    if if_match is not None:
        if not _etag_matches(if_match, info.etag):
            return 412
    else:
        since = context.header(f"{prefix}if-unmodified-since")
        moment = _http_time(since) if since else None
        if moment is not None and modified > moment:
            return 412
    if_none_match = context.header(f"{prefix}if-none-match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, info.etag):
            return 304
    else:
        since = context.header(f"{prefix}if-modified-since")
        moment = _http_time(since) if since else None
        if moment is not None and modified <= moment:
            return 304
    return None


def _object_headers(context: S3Context, info: ObjectInfo) -> dict[str, str]:
    headers = context.base_headers()
    headers.update(
        {
            "ETag": info.quoted_etag,
            "Last-Modified": xml.http_date(info.last_modified),
            "Accept-Ranges": "bytes",
            "Content-Type": info.attributes.content_type,
        }
    )
    headers.update(info.attributes.headers)
    for name, value in info.attributes.metadata.items():
        headers[f"x-amz-meta-{name}"] = value
    for parameter, header in _RESPONSE_OVERRIDES.items():
        if parameter in context.query:
            headers[header] = context.query[parameter]
    if "partNumber" in context.query:
        headers["x-amz-mp-parts-count"] = str(len(info.part_sizes) or 1)
    return headers


async def _read_chunks(reader: BinaryIO, selected: ByteRange) -> AsyncIterator[bytes]:
    try:
        await run_in_threadpool(reader.seek, selected.start)
        remaining = selected.length
        while remaining > 0:
            chunk = await run_in_threadpool(reader.read, min(READ_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        reader.close()


async def get_object(context: S3Context, *, head: bool = False) -> Response:
    _check_version(context)
    info, reader = await run_in_threadpool(context.store.open_object, context.bucket, context.key)
    try:
        headers = _object_headers(context, info)
        condition = check_conditions(context, info)
        if condition == 412:
            raise S3Error(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                412,
                Condition="If-Match",
            )
        if condition == 304:
            reader.close()
            not_modified = {
                k: v
                for k, v in headers.items()
                if k in ("ETag", "Last-Modified", "x-amz-request-id", "x-amz-id-2")
            }
            return Response(status_code=304, headers=not_modified)
        part = context.query.get("partNumber")
        selected = (
            _part_range(info, part) if part is not None else parse_range(context.header("range"), info.size)
        )
        status = 200
        if selected is None:
            selected = ByteRange(0, info.size - 1)
            # Whole-object checksums only when asked for, and only for the whole object.
            if (context.header("x-amz-checksum-mode") or "").upper() == "ENABLED":
                headers.update(checksum_headers(info))
        else:
            status = 206
            headers["Content-Range"] = f"bytes {selected.start}-{selected.end}/{info.size}"
        headers["Content-Length"] = str(max(selected.length, 0))
        if head or selected.length <= 0:
            reader.close()
            return Response(status_code=status, headers=headers)
    except BaseException:
        reader.close()
        raise
    return StreamingResponse(_read_chunks(reader, selected), status_code=status, headers=headers)


async def head_object(context: S3Context) -> Response:
    return await get_object(context, head=True)


async def delete_object(context: S3Context) -> Response:
    version = context.query.get("versionId")
    if version is None or version == "null":
        await run_in_threadpool(context.store.delete_object, context.bucket, context.key)
    else:
        await run_in_threadpool(context.store.head_bucket, context.bucket)  # other versions: nothing to do
    return Response(status_code=204, headers=context.base_headers())


async def delete_objects(context: S3Context) -> Response:
    """``POST /<bucket>?delete``: up to 1000 keys; per-key errors are reported, not raised."""
    root = xml.parse(context.body or b"", "Delete")
    quiet = (xml.text_of(root, "Quiet") or "").strip().lower() == "true"
    entries = root.findall("Object")
    if not entries:
        raise xml.malformed("a Delete request names at least one Object")
    if len(entries) > MAX_DELETE_KEYS:
        raise xml.malformed(f"a Delete request names at most {MAX_DELETE_KEYS} objects")
    await run_in_threadpool(context.store.head_bucket, context.bucket)
    result = xml.document("DeleteResult")
    for entry in entries:
        key = xml.text_of(entry, "Key")
        if key is None:
            raise xml.malformed("every Object needs a Key")
        version = xml.text_of(entry, "VersionId")
        try:
            check_key(key)
            if version in (None, "null"):
                await run_in_threadpool(context.store.delete_object, context.bucket, key)
        except BlobStoreError as error:
            failed = xml.child(result, "Error")
            xml.child(failed, "Key", key)
            xml.child(failed, "Code", error.code)
            xml.child(failed, "Message", error.message)
            continue
        if not quiet:
            deleted = xml.child(result, "Deleted")
            xml.child(deleted, "Key", key)
            if version:
                xml.child(deleted, "VersionId", version)
    return xml.xml_response(result, context.base_headers())

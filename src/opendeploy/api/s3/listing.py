"""ListObjectsV2 and ListObjects (v1): prefix, delimiter, paging (continuation token / marker),
``max-keys`` and ``encoding-type=url``.

A continuation token is the last key (or common prefix) returned, base64url-encoded: opaque to
clients, meaningful to every server replica, and harmless if forged (it only chooses where the
listing resumes).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from opendeploy.api.s3 import xml
from opendeploy.api.s3.context import OWNER_DISPLAY_NAME, S3Context
from opendeploy.api.s3.errors import invalid_argument
from opendeploy.store.blob_store.base import ListPage, ObjectInfo

MAX_KEYS = 1000

Encode = Callable[[str], str]


def encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def decode_token(token: str) -> str:
    try:
        key = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
        if not key:
            raise ValueError("empty")
        return key
    except (ValueError, UnicodeError):
        raise invalid_argument(
            "The continuation token provided is incorrect", "continuation-token", token
        ) from None


def _max_keys(context: S3Context) -> int:
    text = context.query.get("max-keys", str(MAX_KEYS))
    if not text.isdigit():
        raise invalid_argument("Provided max-keys not an integer or within integer range", "max-keys", text)
    return min(int(text), MAX_KEYS)


def _encoder(context: S3Context) -> tuple[str | None, Encode]:
    encoding = context.query.get("encoding-type")
    if encoding is None:
        return None, lambda value: value
    if encoding != "url":
        raise invalid_argument("Invalid Encoding Method specified in Request", "encoding-type", encoding)
    # botocore decodes with unquote_plus, so a literal '+' must arrive as %2B.
    return encoding, lambda value: quote(value, safe="/")


async def _page(context: S3Context, *, after: str, max_keys: int) -> ListPage:
    if max_keys == 0:
        await run_in_threadpool(context.store.head_bucket, context.bucket)
        return ListPage([], [], False, None)
    return await run_in_threadpool(
        context.store.list_objects,
        context.bucket,
        prefix=context.query.get("prefix", ""),
        delimiter=context.query.get("delimiter", ""),
        after=after,
        max_keys=max_keys,
    )


def _contents(context: S3Context, parent: xml.Element, info: ObjectInfo, encode: Encode, owner: bool) -> None:
    entry = xml.child(parent, "Contents")
    xml.child(entry, "Key", encode(info.key))
    xml.child(entry, "LastModified", xml.iso8601(info.last_modified))
    xml.child(entry, "ETag", info.quoted_etag)
    for name in info.checksums:
        xml.child(entry, "ChecksumAlgorithm", name.upper())
    if info.checksums and info.checksum_type:
        xml.child(entry, "ChecksumType", info.checksum_type)
    xml.child(entry, "Size", info.size)
    if owner:
        element = xml.child(entry, "Owner")
        xml.child(element, "ID", context.owner_id)
        xml.child(element, "DisplayName", OWNER_DISPLAY_NAME)
    xml.child(entry, "StorageClass", "STANDARD")


def _common(root: xml.Element, page: ListPage, encode: Encode) -> None:
    for prefix in page.common_prefixes:
        xml.child(xml.child(root, "CommonPrefixes"), "Prefix", encode(prefix))


async def list_objects_v2(context: S3Context) -> Response:
    encoding, encode = _encoder(context)
    max_keys = _max_keys(context)
    token = context.query.get("continuation-token")
    start_after = context.query.get("start-after", "")
    after = decode_token(token) if token is not None else start_after
    page = await _page(context, after=after, max_keys=max_keys)
    root = xml.document("ListBucketResult")
    xml.child(root, "Name", context.bucket)
    xml.child(root, "Prefix", encode(context.query.get("prefix", "")))
    if "delimiter" in context.query:
        xml.child(root, "Delimiter", encode(context.query["delimiter"]))
    xml.child(root, "MaxKeys", max_keys)
    xml.child(root, "KeyCount", len(page.objects) + len(page.common_prefixes))
    xml.child(root, "IsTruncated", page.truncated)
    if token is not None:
        xml.child(root, "ContinuationToken", token)
    if page.truncated and page.next_marker is not None:
        xml.child(root, "NextContinuationToken", encode_token(page.next_marker))
    if start_after:
        xml.child(root, "StartAfter", encode(start_after))
    if encoding:
        xml.child(root, "EncodingType", encoding)
    owner = context.query.get("fetch-owner", "").lower() == "true"
    for info in page.objects:
        _contents(context, root, info, encode, owner)
    _common(root, page, encode)
    return xml.xml_response(root, context.base_headers())


async def list_objects(context: S3Context) -> Response:
    """ListObjects (version 1): ``marker`` and, with a delimiter, ``NextMarker``."""
    encoding, encode = _encoder(context)
    max_keys = _max_keys(context)
    marker = context.query.get("marker", "")
    page = await _page(context, after=marker, max_keys=max_keys)
    root = xml.document("ListBucketResult")
    xml.child(root, "Name", context.bucket)
    xml.child(root, "Prefix", encode(context.query.get("prefix", "")))
    xml.child(root, "Marker", encode(marker))
    if "delimiter" in context.query:
        xml.child(root, "Delimiter", encode(context.query["delimiter"]))
    xml.child(root, "MaxKeys", max_keys)
    xml.child(root, "IsTruncated", page.truncated)
    if page.truncated and page.next_marker is not None and context.query.get("delimiter"):
        xml.child(root, "NextMarker", encode(page.next_marker))
    if encoding:
        xml.child(root, "EncodingType", encoding)
    for info in page.objects:
        _contents(context, root, info, encode, True)
    _common(root, page, encode)
    return xml.xml_response(root, context.base_headers())

"""Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
AbortMultipartUpload, ListParts and ListMultipartUploads.

A part's ETag is its MD5; the object's is the MD5 of the parts' binary MD5s followed by ``-N``.
Parts may carry an S3 checksum; an upload created with ``x-amz-checksum-algorithm`` gets a COMPOSITE
(checksum of the part checksums, ``-N``) or FULL_OBJECT checksum, as the client asked.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from opendeploy.api.s3 import xml
from opendeploy.api.s3.context import OWNER_DISPLAY_NAME, S3Context
from opendeploy.api.s3.errors import S3Error, invalid_argument
from opendeploy.api.s3.objects import attributes_from_headers, checksum_headers, if_none_match_star
from opendeploy.api.s3.payload import CHECKSUM_HEADER_PREFIX, plan_upload, receive
from opendeploy.store.blob_store import checksums
from opendeploy.store.blob_store.base import MAX_PART_NUMBER, CompletedPart, UploadInfo

MAX_COMPLETE_BODY = 4 * 1024 * 1024
MAX_PARTS_LISTED = 1000
MAX_UPLOADS_LISTED = 1000
_CHECKSUM_ELEMENTS = {f"Checksum{name.upper()}": name for name in checksums.ALGORITHMS}


def _owner(context: S3Context, parent: xml.Element, tag: str) -> None:
    element = xml.child(parent, tag)
    xml.child(element, "ID", context.owner_id)
    xml.child(element, "DisplayName", OWNER_DISPLAY_NAME)


def upload_id(context: S3Context) -> str:
    return context.query.get("uploadId", "")


async def create_multipart_upload(context: S3Context) -> Response:
    algorithm = (context.header("x-amz-checksum-algorithm") or "").lower() or None
    kind = (context.header("x-amz-checksum-type") or "").upper() or None
    if kind not in (None, checksums.COMPOSITE, checksums.FULL_OBJECT):
        raise invalid_argument("Invalid checksum type", "x-amz-checksum-type", kind or "")
    if kind and not algorithm:
        raise S3Error("InvalidRequest", "x-amz-checksum-type requires x-amz-checksum-algorithm")
    if algorithm:
        try:
            checksums.new_checksum(algorithm)
        except checksums.UnsupportedChecksum as error:
            raise S3Error("InvalidRequest", str(error)) from None
        if algorithm.startswith("sha") and kind == checksums.FULL_OBJECT:
            raise S3Error(
                "InvalidRequest", f"The FULL_OBJECT checksum type cannot be used with {algorithm.upper()}"
            )
    upload = await run_in_threadpool(
        context.store.create_multipart_upload,
        context.bucket,
        context.key,
        attributes=attributes_from_headers(context),
        checksum_algorithm=algorithm,
        checksum_type=kind,
        now=context.now,
    )
    root = xml.document("InitiateMultipartUploadResult")
    xml.child(root, "Bucket", upload.bucket)
    xml.child(root, "Key", upload.key)
    xml.child(root, "UploadId", upload.upload_id)
    headers = context.base_headers()
    if upload.checksum_algorithm:
        headers["x-amz-checksum-algorithm"] = upload.checksum_algorithm.upper()
        headers["x-amz-checksum-type"] = upload.checksum_type or checksums.COMPOSITE
    return xml.xml_response(root, headers)


def part_number(context: S3Context) -> int:
    text = context.query.get("partNumber", "")
    if not text.isdigit() or not 1 <= int(text) <= MAX_PART_NUMBER:
        raise invalid_argument(
            f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive", "partNumber", text
        )
    return int(text)


async def upload_part(context: S3Context) -> Response:
    number = part_number(context)
    plan = plan_upload(context)
    pending = await run_in_threadpool(
        context.store.begin_part,
        context.bucket,
        context.key,
        upload_id(context),
        number,
        algorithms=plan.algorithms,
    )
    try:
        stored = await receive(context, plan, pending)
        part = await run_in_threadpool(context.store.commit_part, pending, checksums=stored, now=context.now)
    finally:
        await run_in_threadpool(pending.abort)
    headers = context.base_headers()
    headers["ETag"] = f'"{part.etag}"'
    headers.update({f"x-amz-checksum-{name}": value for name, value in part.checksums.items()})
    return Response(status_code=200, headers=headers)


def _completed_parts(body: bytes) -> list[CompletedPart]:
    root = xml.parse(body, "CompleteMultipartUpload")
    parts = []
    for element in root.findall("Part"):
        number = (xml.text_of(element, "PartNumber") or "").strip()
        etag = (xml.text_of(element, "ETag") or "").strip()
        if not number.isdigit() or not etag:
            raise xml.malformed("every Part needs a PartNumber and an ETag")
        sent = {
            name: (element.findtext(tag) or "").strip()
            for tag, name in _CHECKSUM_ELEMENTS.items()
            if element.find(tag) is not None
        }
        parts.append(CompletedPart(int(number), etag, sent))
    if not parts:
        raise xml.malformed("a CompleteMultipartUpload request names at least one Part")
    return parts


async def complete_multipart_upload(context: S3Context) -> Response:
    parts = _completed_parts(context.body or b"")
    expected = None
    for name in checksums.ALGORITHMS:
        value = context.header(f"{CHECKSUM_HEADER_PREFIX}{name}")
        if value:
            expected = (name, value)
    info = await run_in_threadpool(
        context.store.complete_multipart_upload,
        context.bucket,
        context.key,
        upload_id(context),
        parts,
        expected_checksum=expected,
        now=context.now,
        if_none_match=if_none_match_star(context),
    )
    root = xml.document("CompleteMultipartUploadResult")
    xml.child(root, "Location", f"{context.request.base_url}{context.bucket}/{quote(context.key)}")
    xml.child(root, "Bucket", context.bucket)
    xml.child(root, "Key", context.key)
    xml.child(root, "ETag", info.quoted_etag)
    for name, value in info.checksums.items():
        xml.child(root, f"Checksum{name.upper()}", value)
    if info.checksums and info.checksum_type:
        xml.child(root, "ChecksumType", info.checksum_type)
    headers = context.base_headers()
    headers.update({k: v for k, v in checksum_headers(info).items() if k == "x-amz-checksum-type"})
    return xml.xml_response(root, headers)


async def abort_multipart_upload(context: S3Context) -> Response:
    await run_in_threadpool(
        context.store.abort_multipart_upload, context.bucket, context.key, upload_id(context)
    )
    return Response(status_code=204, headers=context.base_headers())


def _bounded(context: S3Context, name: str, default: int) -> int:
    text = context.query.get(name, str(default))
    if not text.isdigit():
        raise invalid_argument(f"Provided {name} not an integer or within integer range", name, text)
    return min(int(text), default)


async def list_parts(context: S3Context) -> Response:
    upload, parts = await run_in_threadpool(
        context.store.list_parts, context.bucket, context.key, upload_id(context)
    )
    max_parts = _bounded(context, "max-parts", MAX_PARTS_LISTED)
    marker_text = context.query.get("part-number-marker", "0")
    if not marker_text.isdigit():
        raise invalid_argument("Invalid part number marker", "part-number-marker", marker_text)
    after = [part for part in parts if part.part_number > int(marker_text)]
    shown, truncated = after[:max_parts], len(after) > max_parts
    root = xml.document("ListPartsResult")
    xml.child(root, "Bucket", context.bucket)
    xml.child(root, "Key", context.key)
    xml.child(root, "UploadId", upload.upload_id)
    xml.child(root, "PartNumberMarker", int(marker_text))
    xml.child(root, "NextPartNumberMarker", shown[-1].part_number if shown else 0)
    xml.child(root, "MaxParts", max_parts)
    xml.child(root, "IsTruncated", truncated)
    _owner(context, root, "Initiator")
    _owner(context, root, "Owner")
    xml.child(root, "StorageClass", "STANDARD")
    if upload.checksum_algorithm:
        xml.child(root, "ChecksumAlgorithm", upload.checksum_algorithm.upper())
        xml.child(root, "ChecksumType", upload.checksum_type)
    for part in shown:
        element = xml.child(root, "Part")
        xml.child(element, "PartNumber", part.part_number)
        xml.child(element, "LastModified", xml.iso8601(part.last_modified))
        xml.child(element, "ETag", f'"{part.etag}"')
        xml.child(element, "Size", part.size)
        for name, value in part.checksums.items():
            xml.child(element, f"Checksum{name.upper()}", value)
    return xml.xml_response(root, context.base_headers())


async def list_multipart_uploads(context: S3Context) -> Response:
    prefix = context.query.get("prefix", "")
    uploads: list[UploadInfo] = await run_in_threadpool(
        context.store.list_multipart_uploads, context.bucket, prefix=prefix
    )
    max_uploads = _bounded(context, "max-uploads", MAX_UPLOADS_LISTED)
    key_marker = context.query.get("key-marker", "")
    id_marker = context.query.get("upload-id-marker", "")
    if key_marker:
        uploads = [
            u
            for u in uploads
            if u.key.encode() > key_marker.encode()
            or (id_marker and u.key == key_marker and u.upload_id > id_marker)
        ]
    shown, truncated = uploads[:max_uploads], len(uploads) > max_uploads
    root = xml.document("ListMultipartUploadsResult")
    xml.child(root, "Bucket", context.bucket)
    xml.child(root, "KeyMarker", key_marker)
    xml.child(root, "UploadIdMarker", id_marker)
    if truncated and shown:
        xml.child(root, "NextKeyMarker", shown[-1].key)
        xml.child(root, "NextUploadIdMarker", shown[-1].upload_id)
    xml.child(root, "Prefix", prefix)
    xml.child(root, "MaxUploads", max_uploads)
    xml.child(root, "IsTruncated", truncated)
    for upload in shown:
        element = xml.child(root, "Upload")
        xml.child(element, "Key", upload.key)
        xml.child(element, "UploadId", upload.upload_id)
        _owner(context, element, "Initiator")
        _owner(context, element, "Owner")
        xml.child(element, "StorageClass", "STANDARD")
        xml.child(element, "Initiated", xml.iso8601(upload.initiated))
        if upload.checksum_algorithm:
            xml.child(element, "ChecksumAlgorithm", upload.checksum_algorithm.upper())
    return xml.xml_response(root, context.base_headers())

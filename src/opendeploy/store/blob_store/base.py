"""The bundle store's interface: buckets, objects and multipart uploads, independent of where bytes live.

The filesystem store (``filesystem.py``) implements it under the server's data directory; an external
S3-compatible store can implement the same interface later. Everything here is synchronous (call it
from a worker thread in async code). Names follow S3's (bucket, key, ETag, part); errors carry S3's
error codes so the S3 adapter can answer with them unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

DEFAULT_CONTENT_TYPE = "binary/octet-stream"  # what S3 stores when a PutObject names none
MAX_KEY_BYTES = 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # every part but the last (S3's limit)
MAX_PART_NUMBER = 10_000
# Standard HTTP headers S3 stores with an object and returns on GET/HEAD.
STORED_HEADERS = ("Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires")

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
# XML 1.0 cannot carry these, so no S3 response could name a key containing them.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class BlobStoreError(Exception):
    """A failure with an S3 error code (``code``) and HTTP status (``status``)."""

    code = "InternalError"
    status = 500

    def __init__(self, message: str, **details: str) -> None:
        super().__init__(message)
        self.message = message
        self.details = details  # extra S3 error fields, e.g. BucketName, Key, UploadId


class NoSuchBucket(BlobStoreError):
    code, status = "NoSuchBucket", 404


class BucketAlreadyOwnedByYou(BlobStoreError):
    code, status = "BucketAlreadyOwnedByYou", 409


class BucketNotEmpty(BlobStoreError):
    code, status = "BucketNotEmpty", 409


class InvalidBucketName(BlobStoreError):
    code, status = "InvalidBucketName", 400


class NoSuchKey(BlobStoreError):
    code, status = "NoSuchKey", 404


class KeyTooLong(BlobStoreError):
    code, status = "KeyTooLongError", 400


class InvalidKey(BlobStoreError):
    code, status = "InvalidArgument", 400


class NoSuchUpload(BlobStoreError):
    code, status = "NoSuchUpload", 404


class InvalidPart(BlobStoreError):
    code, status = "InvalidPart", 400


class InvalidPartOrder(BlobStoreError):
    code, status = "InvalidPartOrder", 400


class EntityTooSmall(BlobStoreError):
    code, status = "EntityTooSmall", 400


class BadDigest(BlobStoreError):
    code, status = "BadDigest", 400


class PreconditionFailed(BlobStoreError):
    code, status = "PreconditionFailed", 412


@dataclass(frozen=True)
class BucketInfo:
    name: str
    created: float  # epoch seconds


@dataclass(frozen=True)
class ObjectAttributes:
    """What a writer says about an object besides its bytes."""

    content_type: str = DEFAULT_CONTENT_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)  # STORED_HEADERS only
    metadata: Mapping[str, str] = field(default_factory=dict)  # x-amz-meta-<name> -> value


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str  # without quotes: MD5 hex, or md5-of-part-md5s-N for multipart objects
    last_modified: float
    attributes: ObjectAttributes = field(default_factory=ObjectAttributes)
    checksums: Mapping[str, str] = field(default_factory=dict)  # algorithm -> base64 value
    checksum_type: str | None = None  # FULL_OBJECT or COMPOSITE when checksums are present
    part_sizes: tuple[int, ...] = ()  # multipart objects: each part's size, in order

    @property
    def quoted_etag(self) -> str:
        return f'"{self.etag}"'


@dataclass(frozen=True)
class UploadInfo:
    bucket: str
    key: str
    upload_id: str
    initiated: float
    attributes: ObjectAttributes = field(default_factory=ObjectAttributes)
    checksum_algorithm: str | None = None
    checksum_type: str | None = None


@dataclass(frozen=True)
class PartInfo:
    part_number: int
    size: int
    etag: str  # MD5 hex, without quotes
    last_modified: float
    checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CompletedPart:
    """One entry of a CompleteMultipartUpload request."""

    part_number: int
    etag: str  # quotes allowed
    checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ListPage:
    objects: list[ObjectInfo]
    common_prefixes: list[str]
    truncated: bool
    next_marker: str | None  # the last key or common prefix returned, when truncated


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive, as in an HTTP Range header."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class PendingWrite(Protocol):
    """Bytes being written for one object or part: nothing is visible until the store commits it."""

    size: int

    def write(self, data: bytes) -> None: ...
    def digest(self, algorithm: str) -> bytes: ...  # "md5" or an algorithm requested at begin
    def abort(self) -> None: ...


class BlobStore(Protocol):
    """What the S3 adapter and the engines need from a bundle store."""

    def create_bucket(self, name: str, *, now: float) -> BucketInfo: ...
    def head_bucket(self, name: str) -> BucketInfo: ...
    def list_buckets(self) -> list[BucketInfo]: ...
    def delete_bucket(self, name: str) -> None: ...

    def begin_object(self, bucket: str, key: str, *, algorithms: Iterable[str] = ()) -> PendingWrite: ...
    def commit_object(
        self,
        pending: PendingWrite,
        *,
        attributes: ObjectAttributes,
        checksums: Mapping[str, str],
        now: float,
        if_none_match: bool = False,
    ) -> ObjectInfo: ...
    def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes | BinaryIO,
        *,
        attributes: ObjectAttributes | None = None,
        now: float,
    ) -> ObjectInfo: ...
    def head_object(self, bucket: str, key: str) -> ObjectInfo: ...
    def open(self, bucket: str, key: str) -> BinaryIO: ...
    def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, BinaryIO]: ...
    def delete_object(self, bucket: str, key: str) -> None: ...
    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str = "",
        max_keys: int = 1000,
    ) -> ListPage: ...

    def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        *,
        attributes: ObjectAttributes,
        checksum_algorithm: str | None,
        checksum_type: str | None,
        now: float,
    ) -> UploadInfo: ...
    def begin_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, *, algorithms: Iterable[str] = ()
    ) -> PendingWrite: ...
    def commit_part(self, pending: PendingWrite, *, checksums: Mapping[str, str], now: float) -> PartInfo: ...
    def list_parts(self, bucket: str, key: str, upload_id: str) -> tuple[UploadInfo, list[PartInfo]]: ...
    def list_multipart_uploads(self, bucket: str, *, prefix: str = "") -> list[UploadInfo]: ...
    def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[CompletedPart],
        *,
        expected_checksum: tuple[str, str] | None = None,
        now: float,
        if_none_match: bool = False,
    ) -> ObjectInfo: ...
    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None: ...


def check_bucket_name(name: str) -> None:
    """Raise ``InvalidBucketName`` unless ``name`` follows S3's bucket naming rules."""
    problem = None
    if not 3 <= len(name) <= 63:
        problem = "must be between 3 and 63 characters long"
    elif not _BUCKET_NAME.match(name):
        problem = (
            "may contain only lowercase letters, digits, dots and hyphens, "
            "and must begin and end with a letter or digit"
        )
    elif ".." in name or ".-" in name or "-." in name:
        problem = "must not contain two adjacent periods or a period next to a hyphen"
    elif _IP_ADDRESS.match(name):
        problem = "must not be formatted as an IP address"
    elif name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3")):
        problem = "uses a prefix or suffix S3 reserves"
    if problem:
        raise InvalidBucketName(f"The specified bucket is not valid: {name!r} {problem}.", BucketName=name)


def check_key(key: str) -> None:
    """Raise unless ``key`` is a key S3 accepts: 1 to 1024 bytes of UTF-8 that XML can carry."""
    if not key:
        raise InvalidKey("An object key must not be empty.")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise KeyTooLong(f"Your key is too long: the maximum is {MAX_KEY_BYTES} bytes of UTF-8.")
    bad = _XML_FORBIDDEN.search(key)
    if bad or any("\ud800" <= c <= "\udfff" for c in key):
        char = bad.group() if bad else "a lone surrogate"
        raise InvalidKey(
            f"Object key {key!r} contains {char!r}, which S3's XML responses cannot represent.", Key=key
        )

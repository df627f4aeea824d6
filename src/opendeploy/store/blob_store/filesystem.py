"""The filesystem bundle store: buckets and objects under the server's data directory.

Layout under ``root`` (``<data_dir>/bundle-store``)::

    buckets/<bucket>/bucket.json                    the bucket (its creation time)
    buckets/<bucket>/objects/<hh>/<sha256(key)>     one record file per object (record.py)
    buckets/<bucket>/uploads/<upload-id>/upload.json, part-00001 …   multipart uploads in progress
    locks/<bucket>.lock                             flock: object commits (shared) vs DeleteBucket
    tmp/                                            writes in progress
    trash/                                          removed buckets and uploads being deleted

File names never come from keys: a key names its file through its SHA-256, so ``../``, absolute
paths, NUL or 1024-byte keys cannot reach outside the bucket. Bucket names and upload ids are
checked against S3's rules before they become path components. Every write goes to ``tmp/``, is
fsynced, and is renamed into place (then the directory is fsynced), so a crash leaves either the old
object or the new one; ``recover()`` (at server start) empties ``tmp/`` and ``trash/``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

from opendeploy.store.blob_store.base import (
    MIN_PART_SIZE,
    BadDigest,
    BucketAlreadyOwnedByYou,
    BucketInfo,
    BucketNotEmpty,
    CompletedPart,
    EntityTooSmall,
    InvalidPart,
    InvalidPartOrder,
    ListPage,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    ObjectAttributes,
    ObjectInfo,
    PartInfo,
    PendingWrite,
    PreconditionFailed,
    UploadInfo,
    check_bucket_name,
    check_key,
)
from opendeploy.store.blob_store.checksums import (
    COMPOSITE,
    FULL_OBJECT,
    composite,
    default_type,
    new_checksum,
)
from opendeploy.store.blob_store.record import PendingFile, open_data, read_meta

STORE_DIRNAME = "bundle-store"
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_COPY_CHUNK = 1024 * 1024
_DIRECTORY_MODE = 0o700  # the store is the server's alone (record.py's files are mkstemp's 0600)
_FILE_MODE = 0o600


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomically(path: Path, data: Mapping[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    # Private whatever the process's umask: bundles and their metadata are the server's alone.
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE), "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _attributes_to_json(attributes: ObjectAttributes) -> dict[str, Any]:
    return {
        "content_type": attributes.content_type,
        "headers": dict(attributes.headers),
        "metadata": dict(attributes.metadata),
    }


def _attributes_from_json(data: Mapping[str, Any]) -> ObjectAttributes:
    return ObjectAttributes(
        content_type=data["content_type"], headers=data.get("headers", {}), metadata=data.get("metadata", {})
    )


def _object_info(bucket: str, meta: Mapping[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        bucket=bucket,
        key=meta["key"],
        size=meta["size"],
        etag=meta["etag"],
        last_modified=meta["last_modified"],
        attributes=_attributes_from_json(meta["attributes"]),
        checksums=meta.get("checksums", {}),
        checksum_type=meta.get("checksum_type"),
        part_sizes=tuple(meta.get("part_sizes", ())),
    )


def _part_info(meta: Mapping[str, Any]) -> PartInfo:
    return PartInfo(
        part_number=meta["part_number"],
        size=meta["size"],
        etag=meta["etag"],
        last_modified=meta["last_modified"],
        checksums=meta.get("checksums", {}),
    )


def _upload_info(bucket: str, upload_id: str, data: Mapping[str, Any]) -> UploadInfo:
    return UploadInfo(
        bucket=bucket,
        key=data["key"],
        upload_id=upload_id,
        initiated=data["initiated"],
        attributes=_attributes_from_json(data["attributes"]),
        checksum_algorithm=data.get("checksum_algorithm"),
        checksum_type=data.get("checksum_type"),
    )


class FilesystemBlobStore:
    """The ``BlobStore`` on a local filesystem (see the module docstring for the layout)."""

    def __init__(self, root: Path, *, min_part_size: int = MIN_PART_SIZE) -> None:
        self.root = Path(root)
        self.min_part_size = min_part_size
        self.root.mkdir(parents=True, exist_ok=True, mode=_DIRECTORY_MODE)
        for name in ("buckets", "locks", "tmp", "trash"):
            (self.root / name).mkdir(parents=True, exist_ok=True, mode=_DIRECTORY_MODE)

    # --- paths and locks ---------------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        check_bucket_name(bucket)
        return self.root / "buckets" / bucket

    def _object_path(self, bucket: str, key: str) -> Path:
        check_key(key)
        digest = _key_hash(key)
        return self._bucket_dir(bucket) / "objects" / digest[:2] / digest

    def _upload_dir(self, bucket: str, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise NoSuchUpload("The specified upload does not exist.", UploadId=upload_id)
        return self._bucket_dir(bucket) / "uploads" / upload_id

    def _require_bucket(self, bucket: str) -> Path:
        directory = self._bucket_dir(bucket)
        if not (directory / "bucket.json").is_file():
            raise NoSuchBucket("The specified bucket does not exist", BucketName=bucket)
        return directory

    @contextmanager
    def _bucket_lock(self, bucket: str, *, exclusive: bool) -> Iterator[None]:
        """Object commits hold it shared, DeleteBucket exclusive: no object lands in a deleted bucket."""
        fd = os.open(self.root / "locks" / f"{bucket}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _discard(self, path: Path) -> None:
        """Remove a directory tree atomically from readers' view, then delete it."""
        destination = self.root / "trash" / uuid.uuid4().hex
        try:
            os.rename(path, destination)
        except FileNotFoundError:
            return
        _fsync_dir(path.parent)
        shutil.rmtree(destination, ignore_errors=True)

    def recover(self) -> None:
        """Delete what crashed writes and deletions left behind (call before serving requests)."""
        for name in ("tmp", "trash"):
            for entry in (self.root / name).iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    # --- buckets -----------------------------------------------------------------------------------

    def create_bucket(self, name: str, *, now: float) -> BucketInfo:
        final = self._bucket_dir(name)
        staging = self.root / "tmp" / f"bucket-{uuid.uuid4().hex}"
        staging.mkdir(mode=_DIRECTORY_MODE)
        for sub in ("objects", "uploads"):
            (staging / sub).mkdir(mode=_DIRECTORY_MODE)
        _write_json_atomically(staging / "bucket.json", {"name": name, "created": now})
        _fsync_dir(staging)
        try:
            os.rename(staging, final)  # fails if the bucket exists: creation is atomic
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise BucketAlreadyOwnedByYou(
                    "Your previous request to create the named bucket succeeded and you already own it.",
                    BucketName=name,
                ) from None
            raise
        _fsync_dir(final.parent)
        return BucketInfo(name, now)

    def head_bucket(self, name: str) -> BucketInfo:
        directory = self._bucket_dir(name)
        try:
            data = json.loads((directory / "bucket.json").read_text())
        except FileNotFoundError:
            raise NoSuchBucket("The specified bucket does not exist", BucketName=name) from None
        return BucketInfo(name, data["created"])

    def list_buckets(self) -> list[BucketInfo]:
        buckets = []
        for entry in sorted((self.root / "buckets").iterdir()):
            with suppress(FileNotFoundError, NotADirectoryError):
                data = json.loads((entry / "bucket.json").read_text())
                buckets.append(BucketInfo(entry.name, data["created"]))
        return buckets

    def delete_bucket(self, name: str) -> None:
        directory = self._require_bucket(name)
        with self._bucket_lock(name, exclusive=True):
            self._require_bucket(name)
            if any(True for _ in self._object_files(directory)):
                raise BucketNotEmpty("The bucket you tried to delete is not empty", BucketName=name)
            # Unfinished multipart uploads go with the bucket.
            self._discard(directory)

    # --- objects -----------------------------------------------------------------------------------

    def begin_object(self, bucket: str, key: str, *, algorithms: Iterable[str] = ()) -> PendingFile:
        self._object_path(bucket, key)  # checks the names before any byte is received
        self._require_bucket(bucket)
        pending = PendingFile(self.root / "tmp", set(algorithms))
        pending.target = ("object", bucket, key)
        return pending

    def commit_object(
        self,
        pending: PendingWrite,
        *,
        attributes: ObjectAttributes,
        checksums: Mapping[str, str],
        now: float,
        if_none_match: bool = False,
        part_sizes: Sequence[int] = (),
        etag: str | None = None,
        checksum_type: str | None = None,
    ) -> ObjectInfo:
        """Make ``pending`` the object it was begun for; ``if_none_match`` refuses to replace one."""
        assert isinstance(pending, PendingFile) and pending.target[0] == "object"
        _, bucket, key = pending.target
        meta: dict[str, Any] = {
            "key": key,
            "size": pending.size,
            "etag": etag or pending.md5_hex,
            "last_modified": now,
            "attributes": _attributes_to_json(attributes),
            "checksums": dict(checksums),
        }
        if checksums:
            meta["checksum_type"] = checksum_type or FULL_OBJECT
        if part_sizes:
            meta["part_sizes"] = list(part_sizes)
        temporary = pending.finish(meta)
        try:
            final = self._object_path(bucket, key)
            with self._bucket_lock(bucket, exclusive=False):
                self._require_bucket(bucket)
                final.parent.mkdir(exist_ok=True, mode=_DIRECTORY_MODE)
                if if_none_match:
                    try:
                        os.link(temporary, final)  # atomic "create only if absent"
                    except FileExistsError:
                        raise PreconditionFailed(
                            "At least one of the pre-conditions you specified did not hold",
                            Condition="If-None-Match",
                        ) from None
                    temporary.unlink()
                else:
                    os.replace(temporary, final)
                _fsync_dir(final.parent)
        finally:
            pending.abort()  # removes the temporary file if it is still there
        return _object_info(bucket, meta)

    def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes | BinaryIO,
        *,
        attributes: ObjectAttributes | None = None,
        now: float,
    ) -> ObjectInfo:
        """Store ``data`` (bytes or a binary file, copied in chunks) as ``bucket/key``."""
        pending = self.begin_object(bucket, key)
        try:
            if isinstance(data, bytes | bytearray):
                pending.write(bytes(data))
            else:
                for chunk in iter(lambda: data.read(_COPY_CHUNK), b""):
                    pending.write(chunk)
            return self.commit_object(
                pending, attributes=attributes or ObjectAttributes(), checksums={}, now=now
            )
        except BaseException:
            pending.abort()
            raise

    def _open_record(self, bucket: str, key: str) -> tuple[dict[str, Any], int, BinaryIO]:
        path = self._object_path(bucket, key)
        try:
            file: BinaryIO = open(path, "rb", buffering=0)  # noqa: SIM115 - handed to the caller
        except FileNotFoundError:
            self._require_bucket(bucket)
            raise NoSuchKey("The specified key does not exist.", Key=key) from None
        try:
            meta, size = read_meta(file)
            if meta["key"] != key:  # a SHA-256 collision: as good as absent
                raise NoSuchKey("The specified key does not exist.", Key=key)
        except BaseException:
            file.close()
            raise
        return meta, size, file

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        meta, _, file = self._open_record(bucket, key)
        file.close()
        return _object_info(bucket, meta)

    def open_object(self, bucket: str, key: str) -> tuple[ObjectInfo, BinaryIO]:
        """The object's metadata and a seekable binary file of its bytes (a consistent snapshot)."""
        meta, size, file = self._open_record(bucket, key)
        return _object_info(bucket, meta), open_data(file, size)

    def open(self, bucket: str, key: str) -> BinaryIO:
        """A seekable binary file of the object's bytes, for server-side readers (e.g. a bundle's AppSpec)."""
        return self.open_object(bucket, key)[1]

    def delete_object(self, bucket: str, key: str) -> None:
        path = self._object_path(bucket, key)
        self._require_bucket(bucket)
        try:
            path.unlink()
        except FileNotFoundError:
            return  # S3 answers success for a key that is not there
        _fsync_dir(path.parent)

    def _object_files(self, bucket_dir: Path) -> Iterator[Path]:
        objects = bucket_dir / "objects"
        with suppress(FileNotFoundError):
            for shard in objects.iterdir():
                with suppress(FileNotFoundError, NotADirectoryError):
                    yield from shard.iterdir()

    def _all_objects(self, bucket: str) -> list[ObjectInfo]:
        directory = self._require_bucket(bucket)
        found = []
        for path in self._object_files(directory):
            try:
                with open(path, "rb", buffering=0) as file:
                    meta, _ = read_meta(file)
            except FileNotFoundError:
                continue  # deleted or replaced while listing
            found.append(_object_info(bucket, meta))
        found.sort(key=lambda info: info.key.encode("utf-8"))  # S3 lists in UTF-8 binary order
        return found

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        """Keys after ``after`` that start with ``prefix``, rolled up at ``delimiter``, S3's way.

        Keys and common prefixes both count towards ``max_keys``; a common prefix is returned once
        and ``after`` equal to a common prefix skips every key under it.
        """
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        after_bytes = after.encode("utf-8")
        returned = 0
        truncated = False
        last: str | None = None
        for info in self._all_objects(bucket):
            key = info.key
            if not key.startswith(prefix) or key.encode("utf-8") <= after_bytes:
                continue
            common = None
            if delimiter:
                position = key.find(delimiter, len(prefix))
                if position >= 0:
                    common = key[: position + len(delimiter)]
            if common is not None and common in (last, after):
                continue
            if returned >= max_keys:
                truncated = True
                break
            if common is not None:
                prefixes.append(common)
                last = common
            else:
                objects.append(info)
                last = key
            returned += 1
        return ListPage(objects, prefixes, truncated, last if truncated else None)

    # --- multipart uploads -------------------------------------------------------------------------

    def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        *,
        attributes: ObjectAttributes,
        checksum_algorithm: str | None,
        checksum_type: str | None,
        now: float,
    ) -> UploadInfo:
        check_key(key)
        directory = self._require_bucket(bucket)
        if checksum_algorithm:
            new_checksum(checksum_algorithm)  # refuse an algorithm we could not verify
            checksum_type = checksum_type or default_type(checksum_algorithm)
        upload_id = secrets.token_urlsafe(48)
        staging = self.root / "tmp" / f"upload-{uuid.uuid4().hex}"
        staging.mkdir(mode=_DIRECTORY_MODE)
        record = {
            "key": key,
            "initiated": now,
            "attributes": _attributes_to_json(attributes),
            "checksum_algorithm": checksum_algorithm,
            "checksum_type": checksum_type if checksum_algorithm else None,
        }
        _write_json_atomically(staging / "upload.json", record)
        _fsync_dir(staging)
        with self._bucket_lock(bucket, exclusive=False):
            self._require_bucket(bucket)
            os.rename(staging, directory / "uploads" / upload_id)
            _fsync_dir(directory / "uploads")
        return _upload_info(bucket, upload_id, record)

    def _read_upload(self, bucket: str, key: str, upload_id: str) -> UploadInfo:
        directory = self._upload_dir(bucket, upload_id)
        try:
            data = json.loads((directory / "upload.json").read_text())
        except FileNotFoundError:
            self._require_bucket(bucket)
            raise NoSuchUpload(
                "The specified upload does not exist. The upload ID may be invalid, "
                "or the upload may have been aborted or completed.",
                UploadId=upload_id,
            ) from None
        if data["key"] != key:
            raise NoSuchUpload(
                f"The specified upload does not exist for key {key!r}.", UploadId=upload_id, Key=key
            )
        return _upload_info(bucket, upload_id, data)

    @contextmanager
    def _upload_lock(self, bucket: str, key: str, upload_id: str) -> Iterator[UploadInfo]:
        """Complete and Abort of one upload exclude each other (flock on its upload.json)."""
        path = self._upload_dir(bucket, upload_id) / "upload.json"
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            self._read_upload(bucket, key, upload_id)  # raises the right error
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self._read_upload(bucket, key, upload_id)  # still there once we hold the lock?
        finally:
            os.close(fd)

    def begin_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, *, algorithms: Iterable[str] = ()
    ) -> PendingFile:
        self._read_upload(bucket, key, upload_id)
        pending = PendingFile(self.root / "tmp", set(algorithms))
        pending.target = ("part", bucket, key, upload_id, str(part_number))
        return pending

    def commit_part(self, pending: PendingWrite, *, checksums: Mapping[str, str], now: float) -> PartInfo:
        assert isinstance(pending, PendingFile) and pending.target[0] == "part"
        _, bucket, key, upload_id, number = pending.target
        meta = {
            "part_number": int(number),
            "size": pending.size,
            "etag": pending.md5_hex,
            "last_modified": now,
            "checksums": dict(checksums),
        }
        temporary = pending.finish(meta)
        try:
            directory = self._upload_dir(bucket, upload_id)
            try:
                os.replace(temporary, directory / f"part-{int(number):05d}")
            except FileNotFoundError:
                self._read_upload(bucket, key, upload_id)  # aborted or completed meanwhile
                raise
            _fsync_dir(directory)
        finally:
            pending.abort()
        return _part_info(meta)

    def _parts(self, directory: Path) -> dict[int, PartInfo]:
        parts: dict[int, PartInfo] = {}
        with suppress(FileNotFoundError):
            for path in directory.iterdir():
                if path.name.startswith("part-"):
                    with suppress(FileNotFoundError), open(path, "rb", buffering=0) as file:
                        meta, _ = read_meta(file)
                        parts[meta["part_number"]] = _part_info(meta)
        return parts

    def list_parts(self, bucket: str, key: str, upload_id: str) -> tuple[UploadInfo, list[PartInfo]]:
        upload = self._read_upload(bucket, key, upload_id)
        parts = self._parts(self._upload_dir(bucket, upload_id))
        return upload, [parts[number] for number in sorted(parts)]

    def list_multipart_uploads(self, bucket: str, *, prefix: str = "") -> list[UploadInfo]:
        directory = self._require_bucket(bucket) / "uploads"
        uploads = []
        for entry in directory.iterdir():
            with suppress(FileNotFoundError, NotADirectoryError):
                data = json.loads((entry / "upload.json").read_text())
                if data["key"].startswith(prefix):
                    uploads.append(_upload_info(bucket, entry.name, data))
        uploads.sort(key=lambda upload: (upload.key.encode("utf-8"), upload.initiated))
        return uploads

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
    ) -> ObjectInfo:
        """Join the named parts into the object, in one atomic step, and end the upload.

        ``expected_checksum`` is the whole object's (algorithm, value) a client sent, checked before
        anything becomes visible (``BadDigest``).
        """
        with self._upload_lock(bucket, key, upload_id) as upload:
            directory = self._upload_dir(bucket, upload_id)
            chosen = self._check_parts(upload, self._parts(directory), parts)
            algorithm, kind = upload.checksum_algorithm, upload.checksum_type
            stored: dict[str, str] = {}
            if algorithm and kind == COMPOSITE:
                values = [part.checksums.get(algorithm) for part in chosen]
                if all(values):
                    stored[algorithm] = composite(algorithm, [v for v in values if v])
                else:
                    algorithm = None  # parts were sent without it: the object gets none
            computed = set()
            if algorithm and kind == FULL_OBJECT:
                computed.add(algorithm)
            if expected_checksum and expected_checksum[0] not in stored:
                computed.add(expected_checksum[0])
            pending = self.begin_object(bucket, key, algorithms=computed)
            try:
                for part in chosen:
                    with open(directory / f"part-{part.part_number:05d}", "rb", buffering=0) as file:
                        _, size = read_meta(file)
                        file.seek(0)
                        remaining = size
                        while remaining:
                            chunk = file.read(min(_COPY_CHUNK, remaining))
                            if not chunk:
                                raise InvalidPart(f"part {part.part_number} is shorter than recorded")
                            pending.write(chunk)
                            remaining -= len(chunk)
                for name in computed:
                    value = pending.b64(name)
                    if name == algorithm or (expected_checksum and name == expected_checksum[0]):
                        stored[name] = value
                if expected_checksum:
                    name, value = expected_checksum
                    actual = stored[name]
                    if value != actual and value != actual.split("-")[0]:
                        raise BadDigest(
                            f"The {name.upper()} you specified for the object did not match what we "
                            f"calculated ({actual})."
                        )
                md5s = b"".join(bytes.fromhex(part.etag) for part in chosen)
                etag = f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(chosen)}"
                is_composite = algorithm is not None and kind == COMPOSITE
                result_type = COMPOSITE if is_composite else FULL_OBJECT
                info = self.commit_object(
                    pending,
                    attributes=upload.attributes,
                    checksums=stored,
                    now=now,
                    if_none_match=if_none_match,
                    part_sizes=[part.size for part in chosen],
                    etag=etag,
                    checksum_type=result_type,
                )
            except BaseException:
                pending.abort()
                raise
            self._discard(directory)
        return info

    def _check_parts(
        self, upload: UploadInfo, stored: Mapping[int, PartInfo], requested: Sequence[CompletedPart]
    ) -> list[PartInfo]:
        chosen: list[PartInfo] = []
        previous = 0
        for entry in requested:
            if entry.part_number <= previous:
                raise InvalidPartOrder(
                    "The list of parts was not in ascending order. Parts must be ordered by part number.",
                    UploadId=upload.upload_id,
                )
            previous = entry.part_number
            part = stored.get(entry.part_number)
            if part is None or entry.etag.strip('"') != part.etag:
                raise InvalidPart(
                    "One or more of the specified parts could not be found. The part may not have been "
                    f"uploaded, or the specified entity tag may not match the part's entity tag "
                    f"(part {entry.part_number}).",
                    UploadId=upload.upload_id,
                    PartNumber=str(entry.part_number),
                )
            for name, value in entry.checksums.items():
                if part.checksums.get(name) not in (None, value):
                    raise InvalidPart(
                        f"The {name.upper()} checksum of part {entry.part_number} does not match the "
                        "checksum it was uploaded with.",
                        UploadId=upload.upload_id,
                        PartNumber=str(entry.part_number),
                    )
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < self.min_part_size:
                raise EntityTooSmall(
                    f"Your proposed upload is smaller than the minimum allowed size: part "
                    f"{part.part_number} is {part.size} bytes; every part but the last must be at least "
                    f"{self.min_part_size} bytes.",
                    ProposedSize=str(part.size),
                    MinSizeAllowed=str(self.min_part_size),
                )
        return chosen

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with self._upload_lock(bucket, key, upload_id):
            self._discard(self._upload_dir(bucket, upload_id))

"""One stored object (or multipart part) as one file: its bytes, then its metadata, then a footer.

Keeping data and metadata in a single file makes a write atomic with one ``rename``: a reader sees
either the old file or the new one, never bytes without their ETag or an ETag without its bytes, and a
crash (``kill -9``, power loss) before the rename leaves only a temporary file that recovery removes.
The footer is the metadata's length (8 bytes, big-endian) and a magic number, so a reader finds the
metadata from the end of the file; the data is bytes ``0 .. size-1`` and is read in place (ranges are
seeks, nothing is buffered whole).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from opendeploy.store.blob_store import checksums
from opendeploy.store.blob_store.base import BlobStoreError

MAGIC = b"ODBLOB01"
_FOOTER = struct.Struct(">Q8s")
_MAX_META_BYTES = 1024 * 1024
WRITE_BUFFER = 1024 * 1024


class CorruptRecord(BlobStoreError):
    code, status = "InternalError", 500


class PendingFile:
    """A temporary file receiving one object's bytes, hashing them as they arrive.

    MD5 (the ETag) is always computed; ``algorithms`` adds S3 checksums (``crc32``, ``sha256`` …).
    ``finish`` appends the metadata and makes the file durable; the store then renames it into place.
    """

    def __init__(self, directory: Path, algorithms: set[str] | frozenset[str] = frozenset()) -> None:
        self._checksums = {name: checksums.new_checksum(name) for name in sorted(algorithms)}
        self._md5 = hashlib.md5(usedforsecurity=False)
        fd, name = tempfile.mkstemp(prefix="write-", dir=directory)
        self.path = Path(name)
        self._file: BinaryIO | None = os.fdopen(fd, "wb", buffering=WRITE_BUFFER)
        self.size = 0
        self.target: tuple[str, ...] = ()  # set by the store: what this write will become

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError("write to a finished or aborted upload")
        self._file.write(data)
        self._md5.update(data)
        for checksum in self._checksums.values():
            checksum.update(data)
        self.size += len(data)

    def digest(self, algorithm: str) -> bytes:
        if algorithm == "md5":
            return self._md5.digest()
        return self._checksums[algorithm].digest()

    def b64(self, algorithm: str) -> str:
        return self._checksums[algorithm].b64digest()

    @property
    def md5_hex(self) -> str:
        return self._md5.hexdigest()

    def finish(self, meta: dict[str, Any]) -> Path:
        """Append ``meta`` and the footer, flush and fsync; returns the temporary file's path."""
        if self._file is None:
            raise ValueError("upload already finished or aborted")
        encoded = json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode()
        self._file.write(encoded)
        self._file.write(_FOOTER.pack(len(encoded), MAGIC))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        return self.path

    def abort(self) -> None:
        """Discard everything written (safe to call more than once, and after ``finish``)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)


def read_meta(file: BinaryIO) -> tuple[dict[str, Any], int]:
    """A record's metadata and the size of its data, from an open record file."""
    total = os.fstat(file.fileno()).st_size
    if total < _FOOTER.size:
        raise CorruptRecord(f"stored record {getattr(file, 'name', '?')} is truncated")
    file.seek(total - _FOOTER.size)
    length, magic = _FOOTER.unpack(file.read(_FOOTER.size))
    data_size = total - _FOOTER.size - length
    if magic != MAGIC or length > _MAX_META_BYTES or data_size < 0:
        raise CorruptRecord(f"stored record {getattr(file, 'name', '?')} has no valid footer")
    file.seek(data_size)
    meta = json.loads(file.read(length))
    if meta.get("size") != data_size:
        raise CorruptRecord(f"stored record {getattr(file, 'name', '?')} has the wrong size")
    return meta, data_size


class RecordData(io.RawIOBase):
    """The data bytes of an open record file, as a seekable read-only binary file."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        super().__init__()
        self._file = file
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = base + offset
        if position < 0:
            raise ValueError("negative seek position")
        self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._size - self._position)
        if wanted <= 0:
            return 0
        self._file.seek(self._position)
        count = self._file.readinto(view[:wanted])  # type: ignore[attr-defined]
        self._position += count or 0
        return count or 0

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def open_data(file: BinaryIO, size: int) -> BinaryIO:
    """A buffered, seekable reader over the data of ``file`` (closing it closes ``file``)."""
    return io.BufferedReader(RecordData(file, size), buffer_size=256 * 1024)  # type: ignore[return-value]

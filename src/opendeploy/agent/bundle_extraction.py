"""Safe unpacking of revision bundles (tar, tgz, zip, plain directory) into a deployment archive.

A bundle comes from outside the host, so nothing in it may write outside the directory it is unpacked
into. Each entry is checked before anything is written for it, and the unpacking stops at the first
hostile one with an error naming the entry and what is wrong:

- absolute paths, ``..`` components and drive letters (zip-slip, including ``..\\`` spellings);
- symbolic links whose target is absolute or resolves outside the archive;
- hard links to anything but a regular file already unpacked from the same bundle;
- device files, FIFOs and sockets;
- entries that would be written through a symbolic link.

A bundle may also be hostile by its size (a 10 MB zip of zeros that unpacks to 10 GiB). Unpacking stops
with an error naming the bundle, the size found, the limit and the ``codedeployagent.yml`` key to change:

- once it would write more than ``:archive_max_extraction_size:`` — counted on the bytes actually written,
  since zip and tar headers can lie and a gzip stream says nothing of its size (a zip's central
  directory is also checked first, so a zip that declares too much is refused before any write);
- before writing a file that would leave less than ``:extraction_free_space_reserve:`` free on the
  filesystem (again a zip's whole declared size first).

On any error the partly unpacked directory is removed, so a failed download leaves nothing behind.
File modes are kept (permission bits only: setuid, setgid and sticky bits are dropped) and modification
times are kept; owners recorded in the archive are not restored — files belong to the agent's user, and
the AppSpec's ``permissions`` section says who should own what.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import stat
import tarfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from opendeploy.agent.agent_config import (
    DEFAULT_ARCHIVE_MAX_EXTRACTION_SIZE,
    DEFAULT_EXTRACTION_FREE_SPACE_RESERVE,
    format_size,
)
from opendeploy.agent.file_copy import COPY_BUFFER, copy_file_data, write_all

PERMISSION_BITS = 0o777
LINK_TARGET_MAX = 4096  # PATH_MAX: no symbolic link target can be longer
CONFIG_FILE = "codedeployagent.yml"


class BundleError(Exception):
    """The bundle cannot be fetched or unpacked; the message names the entry and the problem."""


@contextlib.contextmanager
def disk_errors(writing: str) -> Iterator[None]:
    """Report this host's disk failing (full, read-only) while ``writing`` as a ``BundleError``: downloads
    retry plain OSErrors, which are mostly network trouble, and trying this one again would not help."""
    try:
        yield
    except OSError as error:
        raise BundleError(f"cannot write {writing}: {error.strerror or error}") from None


@dataclass(frozen=True)
class ExtractionLimits:
    """How much a bundle may unpack to, and how much free space unpacking must leave (bytes)."""

    max_size: int = DEFAULT_ARCHIVE_MAX_EXTRACTION_SIZE
    free_space_reserve: int = DEFAULT_EXTRACTION_FREE_SPACE_RESERVE


class _SpaceBudget:
    """Counts what an unpacking writes and refuses what would pass the size limit or the free-space reserve.

    The free space is asked of the filesystem at the start and again whenever the running estimate says
    the next file may not fit, or after every ``_RESTAT_BYTES`` written (other processes use the disk too).
    """

    _RESTAT_BYTES = 64 * 1024 * 1024

    def __init__(self, limits: ExtractionLimits, directory: Path, label: str) -> None:
        self.limits = limits
        self.directory = directory
        self.label = label
        self.written = 0
        self._free = self._statvfs()
        self._since_stat = 0

    def _statvfs(self) -> int:
        st = os.statvfs(self.directory)
        return st.f_bavail * st.f_frsize  # what an unprivileged writer may still use

    @property
    def remaining(self) -> int:
        return max(self.limits.max_size - self.written, 0)

    def _too_big(self, found: str) -> BundleError:
        return BundleError(
            f"{self.label}: refusing to unpack the bundle: {found}, more than the limit of "
            f"{format_size(self.limits.max_size)}; raise :archive_max_extraction_size: in {CONFIG_FILE} "
            f"if the revision really is that big"
        )

    def _check_space(self, size: int, what: str) -> None:
        reserve = self.limits.free_space_reserve
        if reserve <= 0:
            return
        if self._since_stat >= self._RESTAT_BYTES or self._free - size < reserve:
            self._free, self._since_stat = self._statvfs(), 0
        if self._free - size < reserve:
            raise BundleError(
                f"{self.label}: refusing to unpack the bundle: {what} {format_size(size)}, which would leave "
                f"{format_size(max(self._free - size, 0))} of the {format_size(self._free, exact=False)} now "
                f"free on the filesystem holding {self.directory}, less than the reserve of "
                f"{format_size(reserve)}; "
                f"free some disk space, or lower :extraction_free_space_reserve: in {CONFIG_FILE}"
            )

    def declared(self, total: int) -> None:
        """Check an archive's declared unpacked size (a zip's central directory) before any write."""
        if total > self.limits.max_size:
            raise self._too_big(f"its entries declare {format_size(total)} unpacked")
        self._check_space(total, "its entries declare")

    def entry(self, name: str, size: int) -> None:
        """Check a file entry's declared size before it is written."""
        if self.written + size > self.limits.max_size:
            total = format_size(self.written + size)
            raise self._too_big(
                f"entry {name!r} is {format_size(size)}, bringing it to at least {total} unpacked"
            )
        self._check_space(size, f"entry {name!r} needs")

    def wrote(self, name: str, count: int) -> None:
        """Count ``count`` bytes of entry ``name`` (call before writing them): refused once past the limit."""
        self.written += count
        self._free -= count
        self._since_stat += count
        if self.written > self.limits.max_size:
            raise self._too_big(
                f"while writing entry {name!r} it had unpacked more than {format_size(self.written - count)} "
                f"and was still going"
            )


class _GunzipReader:
    """A gzip file decompressed by a background thread, read as a file that only moves forwards.

    zlib releases the GIL while it inflates, so decompressing and writing the unpacked files proceed
    side by side on two processors (as ``tar -xzf`` does with a ``gzip`` process). ``tarfile`` reads it
    like a file: ``read``, ``tell`` and forward ``seek`` (by skipping).
    """

    _CHUNK = 1024 * 1024
    _QUEUED_CHUNKS = 8  # at most this much decompressed data waits: memory stays bounded

    def __init__(self, path: Path) -> None:
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(self._QUEUED_CHUNKS)
        self._stop = threading.Event()
        self._buffer = bytearray()
        self._position = 0
        self._finished = False
        self._thread = threading.Thread(target=self._decompress, args=(path,), daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decompress(self, path: Path) -> None:
        try:
            with open(path, "rb") as compressed:
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                started = False
                while data := compressed.read(self._CHUNK):
                    while data:
                        started = True
                        out = inflater.decompress(data, self._CHUNK)
                        if out and not self._put(out):
                            return
                        data = inflater.unconsumed_tail
                        if inflater.eof:
                            # Concatenated gzip members form one stream, as gzip -d reads them.
                            data = inflater.unused_data
                            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                            started = False
                if started and not inflater.eof:
                    raise EOFError("the compressed data ends before its end-of-stream marker (truncated)")
            self._put(None)
        except (OSError, EOFError, zlib.error) as exc:
            self._put(exc)

    def _fill(self, size: int) -> None:
        while not self._finished and (size < 0 or len(self._buffer) < size):
            item = self._queue.get()
            if item is None:
                self._finished = True
            elif isinstance(item, BaseException):
                self._finished = True
                raise item
            else:
                self._buffer += item

    def read(self, size: int = -1) -> bytes:
        self._fill(size)
        if size < 0 or size >= len(self._buffer):
            data = bytes(self._buffer)
            self._buffer.clear()
        else:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]  # cheap: bytearray drops a prefix without moving the rest
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position

    def seek(self, position: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            position += self._position
        elif whence != os.SEEK_SET:
            raise OSError("a compressed stream cannot seek from its end")
        if position < self._position:
            raise OSError("the archive's entries are out of order (it would have to be read backwards)")
        while self._position < position:
            if not self.read(min(position - self._position, self._CHUNK)):
                break
        return self._position

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get_nowait()  # a producer blocked on a full queue sees the stop
            self._thread.join(timeout=0.05)


class _ArchiveWriter:
    """Writes entries below ``root`` after checking each one; never follows a link while writing."""

    def __init__(self, root: Path, label: str, limits: ExtractionLimits) -> None:
        self.root = root
        self.label = label
        self.budget = _SpaceBudget(limits, root, label)
        self._real_root = os.path.realpath(root)
        # What this writer has put under root: rel path -> "dir" | "file" | "link". The directory starts
        # empty and nothing else writes to it, so this says what is on disk without asking it.
        self._entries: dict[str, str] = {"": "dir"}
        self._dir_attributes: list[tuple[str, int, float | None]] = []
        self._symlinks: list[str] = []

    # -- names ---------------------------------------------------------------------------------------

    def relative_name(self, name: str, *, backslashes: bool = False) -> str:
        """The entry's path relative to the archive root, or an error if it could leave the archive."""
        if "\0" in name:
            raise self._refuse(name, "its name contains a NUL character")
        if backslashes:
            name = name.replace("\\", "/")
        if name.startswith("/") or (len(name) >= 2 and name[1] == ":" and name[0].isalpha()):
            raise self._refuse(name, "it has an absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self._refuse(name, "its path has a '..' component that could leave the archive")
        return "/".join(parts)

    def _refuse(self, name: str, why: str) -> BundleError:
        return BundleError(f"{self.label}: refusing to unpack entry {name!r}: {why}")

    # -- directories ---------------------------------------------------------------------------------

    def _ensure_parents(self, rel: str, original: str) -> None:
        parent = rel.rpartition("/")[0]
        if self._entries.get(parent) == "dir":
            return
        built = ""
        for part in parent.split("/"):
            built = f"{built}/{part}" if built else part
            kind = self._entries.get(built)
            if kind == "dir":
                continue
            if kind == "link":
                raise self._refuse(original, f"it would be written through the symbolic link {built!r}")
            if kind == "file":
                raise self._refuse(original, f"{built!r} is a file, not a directory")
            os.mkdir(os.path.join(self.root, built), 0o755)
            self._entries[built] = "dir"

    def _clear(self, rel: str, original: str, *, for_directory: bool = False) -> str:
        """Make way for a new entry at ``rel``; a later entry replaces an earlier one, as tar does."""
        path = os.path.join(self.root, rel)
        kind = self._entries.get(rel)
        if kind is None:
            return path
        if kind == "dir":
            if for_directory:
                return path
            raise self._refuse(original, "a directory of the same name is already in the archive")
        os.unlink(path)
        del self._entries[rel]
        return path

    def directory(self, name: str, mode: int | None, mtime: float | None) -> None:
        rel = self.relative_name(name)
        if not rel:
            return
        self._ensure_parents(rel, name)
        path = self._clear(rel, name, for_directory=True)
        if rel not in self._entries:
            os.mkdir(path, 0o755)
            self._entries[rel] = "dir"
        # Modes and times go on last: a read-only directory must not stop its own entries being written.
        self._dir_attributes.append((rel, (mode if mode else 0o755) & PERMISSION_BITS, mtime))

    # -- files and links -----------------------------------------------------------------------------

    def regular_file(
        self, name: str, source: BinaryIO | str, mode: int, mtime: float | None, *, size: int | None = None
    ) -> None:
        """Write a file entry from a stream (``size`` bytes of it, or all of it), or (a directory
        bundle's file) from a path on disk."""
        rel = self.relative_name(name)
        if not rel:
            raise self._refuse(name, "a file entry has no name")
        self._ensure_parents(rel, name)
        path = self._clear(rel, name)
        budget = self.budget
        if size is not None:
            budget.entry(name, size)
        # O_EXCL | O_NOFOLLOW: the new file is ours, never an existing one or a link's target.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self._entries[rel] = "file"
        try:
            if isinstance(source, str):
                source_fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    budget.entry(name, os.fstat(source_fd).st_size)
                    # One byte past the limit at most: enough to tell that a growing file went past it.
                    budget.wrote(name, copy_file_data(source_fd, fd, budget.remaining + 1))
                finally:
                    os.close(source_fd)
            elif size is None:
                while chunk := source.read(COPY_BUFFER):
                    budget.wrote(name, len(chunk))
                    write_all(fd, chunk)
            else:
                remaining = size
                while remaining:
                    chunk = source.read(min(remaining, COPY_BUFFER))
                    if not chunk:
                        raise EOFError(f"the archive ends inside the data of {name!r} (truncated)")
                    budget.wrote(name, len(chunk))
                    write_all(fd, chunk)
                    remaining -= len(chunk)
            os.fchmod(fd, mode & PERMISSION_BITS)
            if mtime is not None:
                os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)

    def symlink(self, name: str, target: str) -> None:
        rel = self.relative_name(name)
        if not rel:
            raise self._refuse(name, "a link entry has no name")
        if not target or "\0" in target:
            raise self._refuse(name, "its link target is empty")
        if len(target) > LINK_TARGET_MAX:
            raise self._refuse(name, f"its link target is longer than {LINK_TARGET_MAX} bytes")
        if target.startswith("/"):
            raise self._refuse(name, f"it is a symbolic link to the absolute path {target!r}")
        resolved = os.path.normpath(os.path.join(os.path.dirname(rel), target))
        if resolved == ".." or resolved.startswith("../"):
            raise self._refuse(name, f"it is a symbolic link to {target!r}, outside the archive")
        self._ensure_parents(rel, name)
        path = self._clear(rel, name)
        os.symlink(target, path)
        self._entries[rel] = "link"
        self._symlinks.append(rel)

    def hard_link(self, name: str, target_name: str) -> None:
        rel = self.relative_name(name)
        target_rel = self.relative_name(target_name)
        if not rel or not target_rel:
            raise self._refuse(name, "a link entry has no name")
        target = os.path.join(self.root, target_rel)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            raise self._refuse(
                name, f"it is a hard link to {target_name!r}, which is not in the archive"
            ) from None
        if not stat.S_ISREG(st.st_mode) or not self._inside(os.path.realpath(target)):
            raise self._refuse(name, f"it is a hard link to {target_name!r}, which is not a regular file")
        self._ensure_parents(rel, name)
        path = self._clear(rel, name)
        os.link(target, path, follow_symlinks=False)
        self._entries[rel] = "file"

    def special(self, name: str, kind: str) -> None:
        raise self._refuse(name, f"it is a {kind}; bundles may hold only files, directories and links")

    # -- completion ----------------------------------------------------------------------------------

    def _inside(self, real: str) -> bool:
        return real == self._real_root or real.startswith(self._real_root + os.sep)

    def finish(self) -> None:
        # A link may be harmless on its own yet escape through another link (a -> b/.., b -> ..):
        # check where each one really leads once everything is in place.
        for rel in self._symlinks:
            real = os.path.realpath(os.path.join(self.root, rel))
            if not self._inside(real):
                target = os.readlink(os.path.join(self.root, rel))
                raise self._refuse(
                    rel, f"it is a symbolic link to {target!r}, which leads outside the archive"
                )
        for rel, mode, mtime in sorted(
            self._dir_attributes, key=lambda item: item[0].count("/"), reverse=True
        ):
            path = os.path.join(self.root, rel)
            os.chmod(path, mode)
            if mtime is not None:
                os.utime(path, (mtime, mtime))


def _prepare(destination: Path) -> None:
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)


def _guarded(
    destination: Path, label: str, limits: ExtractionLimits | None, unpack: Callable[[_ArchiveWriter], None]
) -> None:
    _prepare(destination)
    try:
        writer = _ArchiveWriter(destination, label, limits or ExtractionLimits())
        unpack(writer)
        writer.finish()
    except BundleError:
        shutil.rmtree(destination, ignore_errors=True)
        raise
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, RuntimeError, ValueError) as exc:
        shutil.rmtree(destination, ignore_errors=True)
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BundleError(f"{label}: cannot unpack the bundle: {detail}") from exc


def _unpack_tar_members(archive: tarfile.TarFile, writer: _ArchiveWriter) -> None:
    for member in archive:
        if member.isdir():
            writer.directory(member.name, member.mode, member.mtime)
        elif member.isreg():
            stream = archive.fileobj
            if stream is not None and not member.issparse() and stream.tell() == member.offset_data:
                # The data follows the header just read: copy it straight from the stream.
                source: BinaryIO | None = stream
            else:
                source = archive.extractfile(member)
            assert source is not None  # a regular member always has data
            writer.regular_file(member.name, source, member.mode, member.mtime, size=member.size)
        elif member.issym():
            writer.symlink(member.name, member.linkname)
        elif member.islnk():
            writer.hard_link(member.name, member.linkname)
        elif member.ischr() or member.isblk():
            writer.special(member.name, "device file")
        elif member.isfifo():
            writer.special(member.name, "FIFO")
        else:
            writer.special(member.name, f"tar entry of unsupported type {member.type!r}")


GZIP_MAGIC = b"\x1f\x8b"


def extract_tar(
    bundle: Path, destination: Path, label: str = "bundle", *, limits: ExtractionLimits | None = None
) -> None:
    """Unpack a tar archive (plain or compressed; the compression is detected) into ``destination``."""
    with open(bundle, "rb") as handle:
        gzipped = handle.read(2) == GZIP_MAGIC

    def unpack(writer: _ArchiveWriter) -> None:
        if not gzipped:
            with tarfile.open(bundle, mode="r:*") as archive:
                _unpack_tar_members(archive, writer)
            return
        reader = _GunzipReader(bundle)
        try:
            with tarfile.open(fileobj=reader, mode="r:") as archive:  # type: ignore[call-overload]
                _unpack_tar_members(archive, writer)
            while reader.read(COPY_BUFFER):
                pass  # read to the end, so a corrupt or truncated stream is reported
        finally:
            reader.close()

    _guarded(destination, label, limits, unpack)


def _zip_mtime(info: zipfile.ZipInfo) -> float | None:
    try:
        return time.mktime((*info.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return None


def extract_zip(
    bundle: Path, destination: Path, label: str = "bundle", *, limits: ExtractionLimits | None = None
) -> None:
    """Unpack a zip archive into ``destination``; backslash separators are read as directory separators."""

    def unpack(writer: _ArchiveWriter) -> None:
        with zipfile.ZipFile(bundle) as archive:
            # The central directory says what the entries unpack to: refuse a bundle that admits it is too
            # big before writing anything. What is written is still counted, in case it lies.
            writer.budget.declared(sum(info.file_size for info in archive.infolist() if not info.is_dir()))
            for info in archive.infolist():
                unix_mode = (info.external_attr >> 16) & 0xFFFF
                file_type = stat.S_IFMT(unix_mode) if info.create_system == 3 else 0
                name = info.filename.replace("\\", "/")
                mtime = _zip_mtime(info)
                if info.is_dir() or file_type == stat.S_IFDIR:
                    writer.directory(name, unix_mode & PERMISSION_BITS or 0o755, mtime)
                elif file_type == stat.S_IFLNK:
                    with archive.open(info) as source:
                        # A link's target is its data: read no more than a target can be, not a bomb.
                        target = source.read(LINK_TARGET_MAX + 1)
                    writer.symlink(name, target.decode("utf-8", "surrogateescape"))
                elif file_type in (stat.S_IFCHR, stat.S_IFBLK):
                    writer.special(name, "device file")
                elif file_type == stat.S_IFIFO:
                    writer.special(name, "FIFO")
                elif file_type == stat.S_IFSOCK:
                    writer.special(name, "socket")
                else:
                    writer.relative_name(name)  # refuse a hostile name before opening its data
                    writer.budget.entry(name, info.file_size)
                    with archive.open(info) as source:
                        writer.regular_file(name, source, unix_mode & PERMISSION_BITS or 0o644, mtime)

    _guarded(destination, label, limits, unpack)


def copy_directory(
    source: Path, destination: Path, label: str = "bundle", *, limits: ExtractionLimits | None = None
) -> None:
    """Copy a directory bundle into ``destination`` with the same checks as an archive's entries."""
    if not source.is_dir():
        raise BundleError(f"{label}: {source} is not a directory")
    real_source = os.path.realpath(source)

    def unpack(writer: _ArchiveWriter) -> None:
        for directory, dirnames, filenames in os.walk(real_source):
            rel_dir = os.path.relpath(directory, real_source)
            rel_dir = "" if rel_dir == "." else rel_dir
            for name in sorted(dirnames + filenames):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                path = os.path.join(directory, name)
                st = os.lstat(path)
                if stat.S_ISDIR(st.st_mode):
                    writer.directory(rel, stat.S_IMODE(st.st_mode), st.st_mtime)
                elif stat.S_ISLNK(st.st_mode):
                    writer.symlink(rel, os.readlink(path))
                elif stat.S_ISREG(st.st_mode):
                    writer.regular_file(rel, path, stat.S_IMODE(st.st_mode), st.st_mtime)
                elif stat.S_ISFIFO(st.st_mode):
                    writer.special(rel, "FIFO")
                elif stat.S_ISSOCK(st.st_mode):
                    writer.special(rel, "socket")
                else:
                    writer.special(rel, "device file")

    _guarded(destination, label, limits, unpack)

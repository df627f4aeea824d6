"""Safe unpacking of revision bundles (tar, tgz, zip, plain directory) into a deployment archive.

A bundle comes from outside the host, so nothing in it may write outside the directory it is unpacked
into. Each entry is checked before anything is written for it, and the unpacking stops at the first
hostile one with an error naming the entry and what is wrong:

- absolute paths, ``..`` components and drive letters (zip-slip, including ``..\\`` spellings);
- symbolic links whose target is absolute or resolves outside the archive;
- hard links to anything but a regular file already unpacked from the same bundle;
- device files, FIFOs and sockets;
- entries that would be written through a symbolic link.

On any error the partly unpacked directory is removed, so a failed download leaves nothing behind.
File modes are kept (permission bits only: setuid, setgid and sticky bits are dropped) and modification
times are kept; owners recorded in the archive are not restored — files belong to the agent's user, and
the AppSpec's ``permissions`` section says who should own what.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from opendeploy.agent.file_copy import COPY_BUFFER, copy_file_data

PERMISSION_BITS = 0o777


class BundleError(Exception):
    """The bundle cannot be fetched or unpacked; the message names the entry and the problem."""


class _ArchiveWriter:
    """Writes entries below ``root`` after checking each one; never follows a link while writing."""

    def __init__(self, root: Path, label: str) -> None:
        self.root = root
        self.label = label
        self._real_root = os.path.realpath(root)
        self._checked_dirs: set[str] = {""}
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
        if parent in self._checked_dirs:
            return
        built = ""
        for part in parent.split("/"):
            built = f"{built}/{part}" if built else part
            if built in self._checked_dirs:
                continue
            path = os.path.join(self.root, built)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
            else:
                if stat.S_ISLNK(st.st_mode):
                    raise self._refuse(original, f"it would be written through the symbolic link {built!r}")
                if not stat.S_ISDIR(st.st_mode):
                    raise self._refuse(original, f"{built!r} is a file, not a directory")
            self._checked_dirs.add(built)

    def _clear(self, rel: str, original: str, *, for_directory: bool = False) -> str:
        """Make way for a new entry at ``rel``; a later entry replaces an earlier one, as tar does."""
        path = os.path.join(self.root, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return path
        if stat.S_ISDIR(st.st_mode):
            if for_directory:
                return path
            raise self._refuse(original, "a directory of the same name is already in the archive")
        os.unlink(path)
        return path

    def directory(self, name: str, mode: int | None, mtime: float | None) -> None:
        rel = self.relative_name(name)
        if not rel:
            return
        self._ensure_parents(rel, name)
        path = self._clear(rel, name, for_directory=True)
        if not os.path.isdir(path):
            os.mkdir(path, 0o755)
        self._checked_dirs.add(rel)
        # Modes and times go on last: a read-only directory must not stop its own entries being written.
        self._dir_attributes.append((rel, (mode if mode else 0o755) & PERMISSION_BITS, mtime))

    # -- files and links -----------------------------------------------------------------------------

    def regular_file(self, name: str, source: BinaryIO | str, mode: int, mtime: float | None) -> None:
        """Write a file entry from a stream, or (a directory bundle's file) from a path on disk."""
        rel = self.relative_name(name)
        if not rel:
            raise self._refuse(name, "a file entry has no name")
        self._ensure_parents(rel, name)
        path = self._clear(rel, name)
        # O_EXCL | O_NOFOLLOW: the new file is ours, never an existing one or a link's target.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb", buffering=0) as out:
            if isinstance(source, str):
                with open(source, "rb") as handle:
                    copy_file_data(handle.fileno(), out.fileno())
            else:
                shutil.copyfileobj(source, out, COPY_BUFFER)
            os.fchmod(out.fileno(), mode & PERMISSION_BITS)
            if mtime is not None:
                os.utime(out.fileno(), (mtime, mtime))

    def symlink(self, name: str, target: str) -> None:
        rel = self.relative_name(name)
        if not rel:
            raise self._refuse(name, "a link entry has no name")
        if not target or "\0" in target:
            raise self._refuse(name, "its link target is empty")
        if target.startswith("/"):
            raise self._refuse(name, f"it is a symbolic link to the absolute path {target!r}")
        resolved = os.path.normpath(os.path.join(os.path.dirname(rel), target))
        if resolved == ".." or resolved.startswith("../"):
            raise self._refuse(name, f"it is a symbolic link to {target!r}, outside the archive")
        self._ensure_parents(rel, name)
        path = self._clear(rel, name)
        os.symlink(target, path)
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


def _guarded(destination: Path, label: str, unpack: Callable[[_ArchiveWriter], None]) -> None:
    _prepare(destination)
    writer = _ArchiveWriter(destination, label)
    try:
        unpack(writer)
        writer.finish()
    except BundleError:
        shutil.rmtree(destination, ignore_errors=True)
        raise
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, RuntimeError, ValueError) as exc:
        shutil.rmtree(destination, ignore_errors=True)
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BundleError(f"{label}: cannot unpack the bundle: {detail}") from exc


def extract_tar(bundle: Path, destination: Path, label: str = "bundle") -> None:
    """Unpack a tar archive (plain or compressed; the compression is detected) into ``destination``."""

    def unpack(writer: _ArchiveWriter) -> None:
        with tarfile.open(bundle, mode="r|*", bufsize=COPY_BUFFER) as archive:
            for member in archive:
                if member.isdir():
                    writer.directory(member.name, member.mode, member.mtime)
                elif member.isreg():
                    source = archive.extractfile(member)
                    assert source is not None  # a regular member always has data
                    writer.regular_file(member.name, source, member.mode, member.mtime)
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

    _guarded(destination, label, unpack)


def _zip_mtime(info: zipfile.ZipInfo) -> float | None:
    try:
        return time.mktime((*info.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return None


def extract_zip(bundle: Path, destination: Path, label: str = "bundle") -> None:
    """Unpack a zip archive into ``destination``; backslash separators are read as directory separators."""

    def unpack(writer: _ArchiveWriter) -> None:
        with zipfile.ZipFile(bundle) as archive:
            for info in archive.infolist():
                unix_mode = (info.external_attr >> 16) & 0xFFFF
                file_type = stat.S_IFMT(unix_mode) if info.create_system == 3 else 0
                name = info.filename.replace("\\", "/")
                mtime = _zip_mtime(info)
                if info.is_dir() or file_type == stat.S_IFDIR:
                    writer.directory(name, unix_mode & PERMISSION_BITS or 0o755, mtime)
                elif file_type == stat.S_IFLNK:
                    writer.symlink(name, archive.read(info).decode("utf-8", "surrogateescape"))
                elif file_type in (stat.S_IFCHR, stat.S_IFBLK):
                    writer.special(name, "device file")
                elif file_type == stat.S_IFIFO:
                    writer.special(name, "FIFO")
                elif file_type == stat.S_IFSOCK:
                    writer.special(name, "socket")
                else:
                    writer.relative_name(name)  # refuse a hostile name before opening its data
                    with archive.open(info) as source:
                        writer.regular_file(name, source, unix_mode & PERMISSION_BITS or 0o644, mtime)

    _guarded(destination, label, unpack)


def copy_directory(source: Path, destination: Path, label: str = "bundle") -> None:
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

    _guarded(destination, label, unpack)

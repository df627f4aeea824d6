"""The server's data at rest is its owner's alone: the data directory 0700, everything in it 0600/0700.

The data directory holds the database (SQLite and its ``-wal``/``-shm`` files), the bundle store, the
specification signing key, the TLS key and possibly the master key: nothing in it is for other users.
``private_umask()`` makes everything the server process creates private from the start (SQLite, the
blob store, temporary files), and the stores also pass explicit modes where they create files.
``tighten()`` fixes, at start, a data directory made by an older version or loosened by hand, and says
what it changed.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from opendeploy.store.db import is_sqlite, normalize_url

PRIVATE_UMASK = 0o077
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def write_private(path: Path, content: bytes) -> None:
    """Replace ``path`` with ``content`` in one step (readers see the old file or the new), mode 0600,
    synced to disk before it takes the name."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def private_umask() -> int:
    """Make files and directories this process creates readable by its user only; the old umask."""
    return os.umask(PRIVATE_UMASK)


@dataclass(frozen=True)
class Tightened:
    """One path whose mode was narrowed."""

    path: Path
    before: int
    after: int

    def __str__(self) -> str:
        return f"{self.path} {self.before:04o}->{self.after:04o}"


def _tighten_one(path: Path, mode: int, *, is_dir: bool) -> Tightened | None:
    current = stat.S_IMODE(mode)
    # Only group and other bits are taken away; the owner keeps what it had (an executable bit, say).
    wanted = current & ~0o077
    if is_dir:
        wanted |= DIRECTORY_MODE
    if wanted == current:
        return None
    try:
        os.chmod(path, wanted)
    except FileNotFoundError:
        return None  # removed meanwhile (a finished upload, a replaced object)
    return Tightened(path, current, wanted)


def tighten(data_dir: Path, extra_files: Iterable[Path] = ()) -> list[Tightened]:
    """Take group and other permissions away from ``data_dir``, everything under it, and ``extra_files``
    (e.g. a SQLite database kept elsewhere, with its ``-wal``/``-shm``); what was changed.

    Symbolic links are neither followed nor changed: what they point to is not the server's to fix.
    """
    changed: list[Tightened] = []
    root = Path(data_dir)
    if root.is_dir() and not root.is_symlink():
        found = _tighten_one(root, root.stat().st_mode, is_dir=True)
        if found:
            changed.append(found)
        for directory, subdirectories, files in os.walk(root):
            base = Path(directory)
            for name in [*files, *subdirectories]:  # a directory's own files first: they say the most
                path = base / name
                try:
                    info = path.lstat()
                except FileNotFoundError:
                    continue
                if stat.S_ISLNK(info.st_mode):
                    continue
                found = _tighten_one(path, info.st_mode, is_dir=stat.S_ISDIR(info.st_mode))
                if found:
                    changed.append(found)
    for path in extra_files:
        try:
            info = Path(path).lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode):
            found = _tighten_one(Path(path), info.st_mode, is_dir=False)
            if found:
                changed.append(found)
    return changed


def sqlite_files(url: str) -> list[Path]:
    """The files of a SQLite database URL (the database, its ``-wal``, ``-shm`` and ``-journal``); none
    for other databases."""
    url = normalize_url(url)
    database = make_url(url).database if is_sqlite(url) else None
    if not database or database == ":memory:":
        return []
    return [Path(database + suffix) for suffix in ("", "-wal", "-shm", "-journal")]


def describe(changed: list[Tightened], limit: int = 20) -> str:
    """A log line's worth: the first ``limit`` changes and how many more."""
    shown = ", ".join(map(str, changed[:limit]))
    more = len(changed) - limit
    return shown + (f" and {more} more" if more > 0 else "")

"""Build bundles for tests: directory trees, and tar / tgz / zip archives with any (also hostile) entries."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One archive entry. ``kind``: file, dir, symlink, hardlink, chr, fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""
    mtime: int = 1_700_000_000


def file(name: str, data: str | bytes = "", mode: int = 0o644) -> Entry:
    return Entry(name, "file", data.encode() if isinstance(data, str) else data, mode)


def directory(name: str, mode: int = 0o755) -> Entry:
    return Entry(name, "dir", mode=mode)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, "symlink", target=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, "hardlink", target=target)


def write_tar(path: Path, entries: list[Entry], *, gzip: bool = False) -> Path:
    with tarfile.open(path, "w:gz" if gzip else "w") as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mode = entry.mode
            info.mtime = entry.mtime
            info.uid = info.gid = 4242  # a build machine's ids, meaningless on the host
            if entry.kind == "file":
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[entry.kind]
            info.linkname = entry.target
            archive.addfile(info)
    return path


def write_zip(path: Path, entries: list[Entry]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, date_time=(2023, 11, 14, 22, 13, 20))
            info.create_system = 3
            file_type = {
                "file": stat.S_IFREG,
                "dir": stat.S_IFDIR,
                "symlink": stat.S_IFLNK,
                "chr": stat.S_IFCHR,
                "fifo": stat.S_IFIFO,
            }[entry.kind]
            info.external_attr = (file_type | entry.mode) << 16
            payload = entry.target.encode() if entry.kind == "symlink" else entry.data
            # ZipInfo normalises separators on Windows only; write the name exactly as given.
            info.filename = entry.name + ("/" if entry.kind == "dir" and not entry.name.endswith("/") else "")
            archive.writestr(info, payload)
    return path


def write_tree(root: Path, entries: list[Entry]) -> Path:
    """A directory bundle on disk."""
    root.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        path = root / entry.name
        path.parent.mkdir(parents=True, exist_ok=True)
        if entry.kind == "file":
            path.write_bytes(entry.data)
            path.chmod(entry.mode)
        elif entry.kind == "dir":
            path.mkdir(exist_ok=True)
            path.chmod(entry.mode)
        elif entry.kind == "symlink":
            os.symlink(entry.target, path)
        elif entry.kind == "fifo":
            os.mkfifo(path)
        else:
            raise ValueError(f"cannot make a {entry.kind} in a directory bundle")
    return root


def listing(root: Path) -> dict[str, str]:
    """Everything under ``root``: relative path -> 'dir', 'link:<target>' or the file's text."""
    result: dict[str, str] = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(directory, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                result[rel] = f"link:{os.readlink(path)}"
            elif path.is_dir():
                result[rel] = "dir"
            else:
                result[rel] = path.read_text(errors="replace")
    return result

"""Fast file copies for unpacking and installing: the data moves inside the kernel, never through Python."""

from __future__ import annotations

import os

COPY_BUFFER = 1024 * 1024


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def copy_file_data(source_fd: int, target_fd: int, limit: int | None = None) -> int:
    """Copy everything from ``source_fd`` (a regular file, read from its start) to ``target_fd``, or only
    its first ``limit`` bytes; returns how many were copied."""
    size = os.fstat(source_fd).st_size
    offset = 0
    while limit is None or offset < limit:
        # Ask for at least what is left; a file that grows while copied is still copied to its end.
        count = max(size - offset, COPY_BUFFER)
        if limit is not None:
            count = min(count, limit - offset)
        sent = os.sendfile(target_fd, source_fd, offset, count)
        if sent == 0:
            break
        offset += sent
    return offset


def copy_file(source: str, destination: str) -> None:
    """Copy the regular file ``source`` to a new file ``destination`` with its mode and modification time.

    ``destination`` must not exist: it is created exclusively and never followed if it is a link.
    """
    source_fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(source_fd)
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            if st.st_size:
                copy_file_data(source_fd, fd)
            os.fchmod(fd, st.st_mode & 0o7777)
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(fd)
    finally:
        os.close(source_fd)

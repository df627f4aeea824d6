"""S3's additional checksums (``x-amz-checksum-*``): which algorithms exist and how to compute them.

The computations are botocore's own checksum classes, so the server agrees bit for bit with the SDKs
that send them. CRC32C and CRC64NVME need the AWS CRT (``awscrt``); without it this server cannot
verify them and says so instead of storing a value it has not checked.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable

from botocore import httpchecksum
from botocore.compat import HAS_CRT

# The algorithms S3 names in x-amz-checksum-<algorithm> (lower case, as in the header).
ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
FULL_OBJECT = "FULL_OBJECT"
COMPOSITE = "COMPOSITE"

Checksum = httpchecksum.BaseChecksum

_FACTORIES: dict[str, Callable[[], Checksum]] = {
    "crc32": httpchecksum.Crc32Checksum,
    "sha1": httpchecksum.Sha1Checksum,
    "sha256": httpchecksum.Sha256Checksum,
}
if HAS_CRT:
    _FACTORIES["crc32c"] = httpchecksum.CrtCrc32cChecksum
    _FACTORIES["crc64nvme"] = httpchecksum.CrtCrc64NvmeChecksum


class UnsupportedChecksum(ValueError):
    """An algorithm S3 knows that this server cannot compute (or one S3 does not know)."""

    def __init__(self, algorithm: str) -> None:
        if algorithm in ALGORITHMS:
            message = (
                f"this server cannot verify {algorithm.upper()} checksums (it needs the awscrt package); "
                f"use one of {', '.join(a.upper() for a in supported())}"
            )
        else:
            message = f"unknown checksum algorithm {algorithm!r}; S3 knows {', '.join(ALGORITHMS)}"
        super().__init__(message)
        self.algorithm = algorithm


def supported() -> list[str]:
    return [name for name in ALGORITHMS if name in _FACTORIES]


def new_checksum(algorithm: str) -> Checksum:
    """A fresh running checksum for ``algorithm`` (lower case)."""
    factory = _FACTORIES.get(algorithm)
    if factory is None:
        raise UnsupportedChecksum(algorithm)
    return factory()


def composite(algorithm: str, part_values: Iterable[str]) -> str:
    """S3's COMPOSITE multipart checksum: the checksum of the parts' binary checksums, then ``-N``."""
    values = list(part_values)
    checksum = new_checksum(algorithm)
    for value in values:
        checksum.update(base64.b64decode(value))
    return f"{checksum.b64digest()}-{len(values)}"


def default_type(algorithm: str) -> str:
    """The checksum type S3 gives a multipart upload that does not ask for one."""
    return FULL_OBJECT if algorithm == "crc64nvme" else COMPOSITE

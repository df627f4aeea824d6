"""How long each lifecycle event of a deployment may run on an instance before the server fails it.

The guide gives every event an hour (troubleshooting L27516–27529), which is also how long a dead
agent goes unnoticed. When the revision's bundle is in the server's own store, its AppSpec says more:
an event whose scripts come from the new revision may run for the sum of their timeouts (at most
3600 s, ``ServerAppSpec.event_timeout``) plus a grace period for the agent's own work, and an event
that has no scripts there needs only the grace period. DownloadBundle and Install run no scripts
but may move large bundles, and ApplicationStop / BeforeBlockTraffic / AfterBlockTraffic run the
scripts of whatever each instance last installed: those keep the default.

Reading the AppSpec must not cost much: the ZIP directory is read directly; a tar or tgz bundle is
scanned only up to ``TAR_SCAN_LIMIT`` bytes. A bundle that is elsewhere, missing, unreadable or
without a valid AppSpec leaves every event at the default.
"""

from __future__ import annotations

import io
import logging
import tarfile
import zipfile
from collections.abc import Iterable
from typing import Any, BinaryIO

from opendeploy.appspec import APPSPEC_SIZE_LIMIT as APPSPEC_LIMIT  # an AppSpec larger than this is not read
from opendeploy.appspec import AppSpecError, ServerAppSpec, load_server_appspec
from opendeploy.appspec.lifecycle_events import AppSpecSource, LifecycleEvent
from opendeploy.store.blob_store import BlobStore, BlobStoreError

log = logging.getLogger(__name__)

APPSPEC_NAMES = ("appspec.yml", "appspec.yaml")
TAR_SCAN_LIMIT = 64 * 1024 * 1024  # compressed bytes of a tar/tgz bundle scanned for its AppSpec


class _Limited(io.RawIOBase):
    """A read-only view of a file that ends after ``limit`` bytes."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self._raw, self._left = raw, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self._left)
        if size <= 0:
            return 0
        data = self._raw.read(size)
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)


def _appspec_member(names: Iterable[str]) -> str | None:
    """The AppSpec of a bundle: at its root, or in its single top-level directory (as the agent finds it)."""
    names = [name for name in names if not name.endswith("/")]
    for wanted in APPSPEC_NAMES:
        if wanted in names:
            return wanted
    tops = {name.split("/", 1)[0] for name in names if name}
    if len(tops) == 1:
        top = tops.pop()
        for wanted in APPSPEC_NAMES:
            if f"{top}/{wanted}" in names:
                return f"{top}/{wanted}"
    return None


def _read_zip(bundle: BinaryIO) -> bytes | None:
    with zipfile.ZipFile(bundle) as archive:
        member = _appspec_member(archive.namelist())
        if member is None or archive.getinfo(member).file_size > APPSPEC_LIMIT:
            return None
        return archive.read(member)


def _read_tar(bundle: BinaryIO) -> bytes | None:
    stream = io.BufferedReader(_Limited(bundle, TAR_SCAN_LIMIT))
    wanted = {*APPSPEC_NAMES, *(f"./{name}" for name in APPSPEC_NAMES)}
    with tarfile.open(fileobj=stream, mode="r|*") as archive:
        for member in archive:
            name = member.name
            # At the root, or one directory down (the agent hoists a single top-level directory).
            if (name in wanted or name.split("/", 1)[-1] in APPSPEC_NAMES) and name.count("/") <= 1:
                if not member.isfile() or member.size > APPSPEC_LIMIT:
                    return None
                extracted = archive.extractfile(member)
                return extracted.read() if extracted else None
    return None


def bundle_appspec(store: BlobStore, bucket: str, key: str, bundle_type: str) -> ServerAppSpec | None:
    """The AppSpec of the bundle ``bucket/key`` in the server's store, or None if it cannot be read."""
    try:
        with store.open(bucket, key) as bundle:
            text = _read_zip(bundle) if bundle_type == "zip" else _read_tar(bundle)
    except (BlobStoreError, OSError, ValueError, zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
        log.info("no AppSpec read from s3://%s/%s: %s", bucket, key, error)
        return None
    if text is None:
        return None
    try:
        return load_server_appspec(text.decode("utf-8"))
    except (AppSpecError, UnicodeDecodeError) as error:
        log.info("the AppSpec of s3://%s/%s is not valid: %s", bucket, key, error)
        return None


def allowed_times(appspec: ServerAppSpec, events: Iterable[LifecycleEvent], grace: float) -> dict[str, float]:
    """The run time allowed to each hook event whose scripts come from ``appspec``'s revision."""
    return {
        event.name: float(appspec.event_timeout(event.name)) + grace
        for event in events
        if event.scriptable and event.appspec_source == AppSpecSource.NEW
    }


def for_revision(
    store: BlobStore, location: dict[str, Any] | None, events: Iterable[LifecycleEvent], grace: float
) -> dict[str, float]:
    """Per-event run times for a revision location ({} when its AppSpec cannot be read here)."""
    s3 = (location or {}).get("s3Location")
    if not s3:
        return {}
    appspec = bundle_appspec(store, s3.get("bucket", ""), s3.get("key", ""), s3.get("bundleType", ""))
    return allowed_times(appspec, events, grace) if appspec else {}

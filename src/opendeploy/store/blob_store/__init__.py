"""The bundle store: S3-style buckets and objects that revisions are uploaded to and agents fetch.

``blob_store_for(data_dir)`` is the server's store (the filesystem store under the data directory).
Server-side readers use ``open(bucket, key)`` for a seekable binary file of an object's bytes, e.g.
to read a bundle's AppSpec::

    with blob_store_for(settings.data_dir).open(bucket, key) as bundle:
        ...
"""

from __future__ import annotations

from pathlib import Path

from opendeploy.store.blob_store.base import (
    BlobStore,
    BlobStoreError,
    NoSuchBucket,
    NoSuchKey,
    ObjectAttributes,
    ObjectInfo,
)
from opendeploy.store.blob_store.filesystem import STORE_DIRNAME, FilesystemBlobStore

__all__ = [
    "BlobStore",
    "BlobStoreError",
    "FilesystemBlobStore",
    "NoSuchBucket",
    "NoSuchKey",
    "ObjectAttributes",
    "ObjectInfo",
    "blob_store_for",
]


def blob_store_for(data_dir: Path) -> FilesystemBlobStore:
    """The bundle store of the server whose data directory is ``data_dir``."""
    return FilesystemBlobStore(Path(data_dir) / STORE_DIRNAME)

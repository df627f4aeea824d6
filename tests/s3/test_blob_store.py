"""The bundle store's server-side interface, in process: what engines use to read a stored bundle."""

from __future__ import annotations

import io
import os
import threading
import time
import zipfile

import pytest

from opendeploy.store.blob_store import NoSuchBucket, NoSuchKey, blob_store_for
from opendeploy.store.blob_store.base import BucketNotEmpty, ObjectAttributes


@pytest.fixture
def store(tmp_path):
    store = blob_store_for(tmp_path / "data")
    store.create_bucket("bundles", now=time.time())
    return store


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_open_reads_a_bundle_in_place(store):
    # The engine's use: read appspec.yml out of an uploaded zip without copying the bundle.
    bundle = _zip({"appspec.yml": "version: 0.0\nos: linux\n", "scripts/start.sh": "#!/bin/sh\n"})
    info = store.put_object("bundles", "app/rev1.zip", bundle, now=time.time())
    assert info.size == len(bundle)
    with store.open("bundles", "app/rev1.zip") as data, zipfile.ZipFile(data) as archive:
        assert archive.read("appspec.yml").startswith(b"version: 0.0")
    head, reader = store.open_object("bundles", "app/rev1.zip")
    with reader:
        assert head.etag == info.etag
        reader.seek(-4, os.SEEK_END)
        assert reader.read() == bundle[-4:]
        assert reader.read() == b""


def test_open_missing(store):
    with pytest.raises(NoSuchKey):
        store.open("bundles", "absent.zip")
    with pytest.raises(NoSuchBucket):
        store.open("nobucket", "absent.zip")


def test_a_reader_keeps_its_snapshot_while_the_object_is_replaced(store):
    store.put_object("bundles", "k", b"first version", now=time.time())
    with store.open("bundles", "k") as reader:
        store.put_object("bundles", "k", b"second", now=time.time())
        store.delete_object("bundles", "k")
        assert reader.read() == b"first version"


def test_attributes_are_kept(store):
    attributes = ObjectAttributes(content_type="application/zip", metadata={"revision": "7"})
    store.put_object(
        "bundles", "meta.zip", io.BytesIO(b"x" * 3_000_000), attributes=attributes, now=1_700_000_000
    )
    info = store.head_object("bundles", "meta.zip")
    assert (info.size, info.attributes.content_type, info.attributes.metadata) == (
        3_000_000,
        "application/zip",
        {"revision": "7"},
    )
    assert info.last_modified == 1_700_000_000


def test_delete_bucket_and_concurrent_writes_never_lose_an_object(store):
    # Either the bucket is deleted and the write fails, or the write lands and the delete is refused.
    for round_number in range(20):
        name = f"race-{round_number}"
        store.create_bucket(name, now=time.time())
        outcome: dict[str, object] = {}

        def write(bucket: str = name, outcome: dict[str, object] = outcome) -> None:
            try:
                store.put_object(bucket, "k", b"data", now=time.time())
                outcome["write"] = "ok"
            except NoSuchBucket:
                outcome["write"] = "no bucket"

        writer = threading.Thread(target=write)
        writer.start()
        try:
            store.delete_bucket(name)
            outcome["delete"] = "ok"
        except BucketNotEmpty:
            outcome["delete"] = "not empty"
        writer.join()
        assert (outcome["write"], outcome["delete"]) in (("ok", "not empty"), ("no bucket", "ok"))
        if outcome["delete"] == "not empty":
            assert store.open(name, "k").read() == b"data"


def test_recover_removes_interrupted_writes(store):
    pending = store.begin_object("bundles", "half")
    pending.write(b"partial")
    store.recover()
    assert not pending.path.exists()
    assert store.list_objects("bundles").objects == []

"""An interrupted upload never leaves a partial object: server killed with SIGKILL, client gone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from support.server import ServerProcess, wait_for

MIB = 1024 * 1024


class SlowUpload:
    """A presigned PUT in a background thread that sends ``sent`` bytes of ``total`` and then waits."""

    def __init__(self, server: ServerProcess, bucket: str, key: str, *, sent: int, total: int) -> None:
        client = server.client("s3", signature_version="s3v4")
        self.url = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key})
        self.sent, self.total = sent, total
        self.release = threading.Event()
        self.fail = False  # when released: True makes the client abandon the request
        self.outcome: object = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _body(self) -> Iterator[bytes]:
        yield b"n" * self.sent
        self.release.wait(60)
        if self.fail:
            raise ConnectionAbortedError("the client gives up mid-upload")
        yield b"n" * (self.total - self.sent)

    def _run(self) -> None:
        try:
            self.outcome = httpx.put(
                self.url, content=self._body(), headers={"Content-Length": str(self.total)}, timeout=60
            )
        except Exception as error:
            self.outcome = error

    def start(self) -> SlowUpload:
        self.thread.start()
        return self

    def finish(self) -> None:
        self.release.set()
        self.thread.join(60)
        assert not self.thread.is_alive()


def _partial_files(server: ServerProcess) -> list[Path]:
    tmp = server.data_dir / "bundle-store" / "tmp"
    return [path for path in tmp.iterdir() if path.is_file() and path.stat().st_size > 0]


def test_kill_9_during_uploads_leaves_no_partial_object(server_factory):
    server = server_factory("sqlite")
    s3 = server.client("s3")
    s3.create_bucket(Bucket="durable")
    s3.put_object(Bucket="durable", Key="bundle.zip", Body=b"the old revision")

    # Two uploads in flight: one replacing an object, one creating a new one.
    uploads = [
        SlowUpload(server, "durable", "bundle.zip", sent=3 * MIB, total=8 * MIB).start(),
        SlowUpload(server, "durable", "new.zip", sent=2 * MIB, total=4 * MIB).start(),
    ]
    wait_for(lambda: len(_partial_files(server)) == 2, timeout=30, message="both uploads' bytes on disk")
    server.kill9()
    for upload in uploads:
        upload.finish()
        assert isinstance(upload.outcome, Exception)

    server.start()
    s3 = server.client("s3")
    assert s3.get_object(Bucket="durable", Key="bundle.zip")["Body"].read() == b"the old revision"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="durable")["Contents"]] == ["bundle.zip"]
    assert list((server.data_dir / "bundle-store" / "tmp").iterdir()) == []  # recovery removed the rest


def test_a_client_that_disconnects_leaves_nothing(s3_server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="kept", Body=b"original")
    before = set(_partial_files(s3_server))
    upload = SlowUpload(s3_server, bucket, "kept", sent=2 * MIB, total=6 * MIB).start()
    wait_for(
        lambda: set(_partial_files(s3_server)) - before, timeout=30, message="the upload's bytes on disk"
    )
    upload.fail = True
    upload.finish()
    wait_for(
        lambda: not (set(_partial_files(s3_server)) - before), timeout=30, message="partial file removed"
    )
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"original"


def test_a_stalled_upload_times_out_and_leaves_nothing(server_factory, monkeypatch):
    monkeypatch.setenv("OPENDEPLOY_S3_IDLE_TIMEOUT", "1")  # read by the server process at start
    server = server_factory("sqlite")
    s3 = server.client("s3")
    s3.create_bucket(Bucket="stalled")
    upload = SlowUpload(server, "stalled", "stuck.zip", sent=2 * MIB, total=4 * MIB).start()
    server.wait_for_log(r"PutObject /stalled/stuck\.zip -> 400 RequestTimeout", timeout=30)
    wait_for(lambda: not _partial_files(server), timeout=10, message="partial file removed")
    upload.finish()
    assert "Contents" not in s3.list_objects_v2(Bucket="stalled")

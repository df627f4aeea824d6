"""Data at rest is the server's owner's alone: a real server's data directory is 0700 and its files 0600,
a loosened one is fixed at start (and the log says so), the specification signing key is encrypted with
the master key (an old unencrypted one is migrated), and the master key can live outside the data
directory — with a clear error when it is missing or wrong.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from support.server import ServerProcess, clean_environment

SIGNER = "specification-signer.pem"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def everything_under(root: Path) -> list[Path]:
    return [root, *root.rglob("*")]


def put_a_bundle(server: ServerProcess) -> None:
    s3 = server.client("s3")
    s3.create_bucket(Bucket="private-bundles")
    s3.put_object(Bucket="private-bundles", Key="app.zip", Body=b"bundle bytes")
    upload = s3.create_multipart_upload(Bucket="private-bundles", Key="big.tar")
    s3.upload_part(
        Bucket="private-bundles", Key="big.tar", UploadId=upload["UploadId"], PartNumber=1, Body=b"x"
    )


def test_a_servers_data_directory_and_everything_in_it_are_private(tmp_path: Path) -> None:
    # A umask that would leave files world-readable: the server must not depend on the caller's.
    previous = os.umask(0o022)
    try:
        server = ServerProcess(tmp_path / "private").start(init=False)
    finally:
        os.umask(previous)
    try:
        put_a_bundle(server)
        server.client("codedeploy").create_application(applicationName="private-app")
        data = server.data_dir
        assert mode(data) == 0o700
        names = {path.name for path in data.iterdir()}
        # The database with its WAL files, the keys, the bundle store.
        assert {"opendeploy.db", "opendeploy.db-wal", "opendeploy.db-shm", "master.key", SIGNER} <= names
        assert {"specification-signer.crt", "bundle-store"} <= names
        store_files = [p for p in (data / "bundle-store").rglob("*") if p.is_file()]
        assert len(store_files) >= 4  # bucket.json, the object, upload.json, the part
        for path in everything_under(data):
            expected = 0o700 if path.is_dir() else 0o600
            assert mode(path) == expected, f"{path} is {mode(path):04o}"
        assert "tightened" not in server.log_text()  # nothing was loose: it was made private
    finally:
        server.stop()


def test_a_data_directory_others_can_read_is_tightened_at_start_and_the_log_says_what(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "loose").start()
    try:
        put_a_bundle(server)
        server.stop()
        data = server.data_dir
        # As an earlier version (or a careless chmod -R) left it.
        for path in everything_under(data):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        (data / "notes.txt").write_text("left here by hand")
        os.chmod(data / "notes.txt", 0o666)
        server.start()
        for path in everything_under(data):
            expected = 0o700 if path.is_dir() else 0o600
            assert mode(path) == expected, f"{path} is {mode(path):04o}"
        line = server.wait_for_log(r"tightened the permissions of (\d+) path\(s\).*").group(0)
        assert f"{data} 0755->0700" in line
        assert "opendeploy.db 0644->0600" in line
        assert "master.key 0644->0600" in line
        assert f"{SIGNER} 0644->0600" in line
        # The service works on after the fix.
        assert server.client("s3").get_object(Bucket="private-bundles", Key="app.zip")["Body"].read() == (
            b"bundle bytes"
        )
    finally:
        server.stop()


def test_the_signing_key_is_encrypted_with_the_master_key_and_an_old_plain_one_is_migrated(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "signer").start()
    try:
        signer = server.data_dir / SIGNER
        data = signer.read_bytes()
        assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
        assert b"-----BEGIN PRIVATE KEY-----" not in data and b"RSA PRIVATE KEY" not in data
        with pytest.raises(TypeError):  # "Password was not given but private key is encrypted"
            serialization.load_pem_private_key(data, password=None)
        pinned = (server.data_dir / "specification-signer.crt").read_bytes()

        # An older version's file: the same key in the clear. The server keeps the key (agents pinned
        # its certificate) and stores it encrypted.
        server.stop()
        from opendeploy.api.commands.specification_signing import SpecificationSigner
        from opendeploy.store.secrets import SecretBox

        key = SpecificationSigner.load_or_create(server.data_dir, SecretBox.load_or_create(server.data_dir))
        plain = key.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        signer.write_bytes(plain + key.certificate_pem)
        server.start()
        server.wait_for_log(
            f"{signer}: the specification signing key was stored unencrypted; it is now encrypted"
        )
        migrated = signer.read_bytes()
        assert b"-----BEGIN PRIVATE KEY-----" not in migrated
        assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in migrated
        assert mode(signer) == 0o600
        assert (server.data_dir / "specification-signer.crt").read_bytes() == pinned
        assert server.client("codedeploy").list_applications()["applications"] == []
    finally:
        server.stop()


def test_the_master_key_can_live_outside_the_data_directory(tmp_path: Path) -> None:
    key_file = tmp_path / "elsewhere" / "opendeploy-master.key"
    server = ServerProcess(tmp_path / "offdisk", master_key_file=key_file).start()
    try:
        assert server.client("codedeploy").list_applications()["applications"] == []
        put_a_bundle(server)
        assert key_file.exists() and mode(key_file) == 0o600
        master_key = key_file.read_bytes().strip()
        # The data directory holds no master key, in no file.
        assert not (server.data_dir / "master.key").exists()
        for path in everything_under(server.data_dir):
            if path.is_file():
                assert master_key not in path.read_bytes(), path
        assert f"master key {key_file}" in server.log_text()
        server.restart()
        assert server.client("codedeploy").list_applications()["applications"] == []
    finally:
        server.stop()


def server_command(server: ServerProcess, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "opendeploy", "server", "--data-dir", str(server.data_dir),
        "--port", str(server.port), "--tls", "off", *extra,
    ]  # fmt: skip


def test_a_missing_or_wrong_master_key_is_a_clear_error_once_secrets_exist(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "master.key"
    server = ServerProcess(tmp_path / "strict", master_key_file=key_file).start()
    server.stop()

    def start(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            server_command(server, *extra),
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    missing = start("--master-key-file", str(tmp_path / "keys" / "gone.key"))
    assert missing.returncode != 0
    assert f"the master key file {tmp_path / 'keys' / 'gone.key'} is missing" in missing.stderr
    assert not (tmp_path / "keys" / "gone.key").exists()  # no new key was made in its place

    # Without the option the data directory's default place is tried: missing too, not made.
    default = start()
    assert default.returncode != 0 and "is missing" in default.stderr
    assert not (server.data_dir / "master.key").exists()

    wrong = tmp_path / "keys" / "wrong.key"
    wrong.write_text("c29tZSBvdGhlciBrZXkgb2YgdGhpcnR5LXR3byBieXRlcyEhISE=\n")
    mismatch = start("--master-key-file", str(wrong))
    assert mismatch.returncode != 0
    assert "is not the one the secrets in" in mismatch.stderr

    malformed = tmp_path / "keys" / "malformed.key"
    malformed.write_text("not a key\n")
    bad = start("--master-key-file", str(malformed))
    assert bad.returncode != 0 and "is not an opendeploy master key" in bad.stderr

    # The environment variable names the file as the option does; the right key starts the server.
    server.extra_args = []
    server.master_key_file = None
    os.environ["OPENDEPLOY_MASTER_KEY_FILE"] = str(key_file)
    try:
        server.start()
        assert server.client("codedeploy").list_applications()["applications"] == []
    finally:
        del os.environ["OPENDEPLOY_MASTER_KEY_FILE"]
        server.stop()


def test_moving_an_existing_master_key_off_the_data_directory_is_explained(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "moving").start()
    server.stop()
    target = tmp_path / "secure" / "master.key"
    result = subprocess.run(
        server_command(server, "--master-key-file", str(target)),
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert f"move it there (mv {server.data_dir / 'master.key'} {target})" in result.stderr
    target.parent.mkdir()
    os.rename(server.data_dir / "master.key", target)
    server.master_key_file = target
    server.start()
    try:
        assert server.client("codedeploy").list_applications()["applications"] == []
    finally:
        server.stop()

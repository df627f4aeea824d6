"""The server's master key: encrypts secrets at rest and derives the keys of other server secrets.

Secret access keys and GitHub tokens are stored as Fernet tokens under a key derived from it; the HMAC
key that signs pagination tokens and the passwords of the private keys the server keeps in its data
directory (the specification signer, the self-signed TLS certificate) are derived from it too.

Where the key lives: ``--master-key-file`` / ``$OPENDEPLOY_MASTER_KEY_FILE`` if given, else
``<data-dir>/master.key``. Keeping it off the data disk (a file on another disk, a systemd credential, a
secrets mount) means a copy of the data directory — a backup, a snapshot, a stolen disk — holds only
ciphertext. The key is created (mode 0600) on first use. Replicas sharing one database and data
directory must be given the same key.

The data directory keeps ``master-key.check``: a value derived from the key through HKDF (it tells
nothing about the key), written once secrets exist under the key. With it a missing or wrong key file is
reported when the server starts, instead of a new key being made silently (and every stored secret
becoming unreadable) or a decryption failing on some later request.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from opendeploy.store.data_at_rest import write_private

MASTER_KEY_FILE = "master.key"
MASTER_KEY_CHECK_FILE = "master-key.check"
MASTER_KEY_FILE_ENV = "OPENDEPLOY_MASTER_KEY_FILE"
_CHECK_PURPOSE = "master-key-check"

# The master key file each data directory was opened with in this process. The server is told where its
# key is once (a flag); code that later asks for the data directory's secrets (the command service's
# signer) gets the same key without every layer passing the path along.
_opened: dict[Path, Path] = {}


class SecretDecryptionError(RuntimeError):
    """A stored secret cannot be decrypted: it was encrypted under another master key."""


class MasterKeyError(RuntimeError):
    """The master key file is missing, unreadable, malformed, or not the key the data was made with."""


def master_key_path(data_dir: Path, master_key_file: Path | None = None) -> Path:
    """Where ``data_dir``'s master key is: the given file, the one this process opened it with,
    ``$OPENDEPLOY_MASTER_KEY_FILE``, or ``<data_dir>/master.key``."""
    if master_key_file is not None:
        return Path(master_key_file).expanduser().absolute()
    remembered = _opened.get(Path(data_dir).absolute())
    if remembered is not None:
        return remembered
    from_environment = os.environ.get(MASTER_KEY_FILE_ENV)
    if from_environment:
        return Path(from_environment).expanduser().absolute()
    return Path(data_dir).absolute() / MASTER_KEY_FILE


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    encoded = base64.b64encode(secrets.token_bytes(32))
    try:
        # O_EXCL: if two processes race, one creates the key and the other reads it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(encoded + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def _read_key_file(path: Path) -> bytes:
    try:
        text = path.read_bytes().strip()
    except OSError as error:
        raise MasterKeyError(f"cannot read the master key file {path}: {error.strerror}") from None
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 32:
        raise MasterKeyError(
            f"{path} is not an opendeploy master key (expected the base64 of at least 32 random bytes)"
        )
    return key


class SecretBox:
    """Encrypts and decrypts secrets with keys derived from one master key."""

    def __init__(self, master_key: bytes, path: Path | None = None) -> None:
        if len(master_key) < 32:
            raise ValueError("the master key must be at least 32 bytes")
        self._master_key = master_key
        self.path = path  # the file it was read from, for messages
        self._fernet = Fernet(base64.urlsafe_b64encode(self.derive("secrets-at-rest")))

    @classmethod
    def load_or_create(
        cls, data_dir: Path, master_key_file: Path | None = None, *, create: bool = True
    ) -> SecretBox:
        """The master key of ``data_dir`` (see ``master_key_path``), created if it is missing and
        ``create`` allows it and no secrets are known to exist under another key.

        Raises ``MasterKeyError`` for a missing key that secrets need, an unreadable or malformed file,
        and a key that does not match the data directory's ``master-key.check``.
        """
        data_dir = Path(data_dir).absolute()
        path = master_key_path(data_dir, master_key_file)
        if not path.exists():
            default = data_dir / MASTER_KEY_FILE
            if path != default and default.exists():
                raise MasterKeyError(
                    f"the master key file {path} does not exist, but {default} does: to keep the master "
                    f"key off the data directory, move it there (mv {default} {path}), or give its "
                    "current place"
                )
            if not create or (data_dir / MASTER_KEY_CHECK_FILE).exists():
                raise MasterKeyError(
                    f"the master key file {path} is missing, but the secrets in {data_dir} (and its "
                    "database) are encrypted with a master key: give the file they were made with "
                    f"(--master-key-file or ${MASTER_KEY_FILE_ENV})"
                )
            _create_key_file(path)
        box = cls(_read_key_file(path), path)
        box.check(data_dir)
        _opened[data_dir] = path
        return box

    def _check_value(self) -> str:
        return self.derive(_CHECK_PURPOSE, 16).hex()

    def check(self, data_dir: Path) -> None:
        """Raise ``MasterKeyError`` unless this key is the one ``data_dir``'s secrets were made with
        (as far as its ``master-key.check`` says; a data directory without one passes)."""
        try:
            recorded = (Path(data_dir) / MASTER_KEY_CHECK_FILE).read_text().strip()
        except FileNotFoundError:
            return
        if not hmac.compare_digest(recorded, self._check_value()):
            raise MasterKeyError(
                f"the master key {self.path or ''} is not the one the secrets in {data_dir} were "
                f"encrypted with (it does not match {MASTER_KEY_CHECK_FILE}): give the right file "
                f"(--master-key-file or ${MASTER_KEY_FILE_ENV})"
            )

    def confirm(self, data_dir: Path) -> None:
        """Record in ``data_dir`` that its secrets are made with this key (once it is known to be right:
        a fresh data directory, or one whose stored secrets this key decrypts)."""
        path = Path(data_dir) / MASTER_KEY_CHECK_FILE
        if path.exists():
            return
        write_private(path, (self._check_value() + "\n").encode())

    def derive(self, purpose: str, length: int = 32) -> bytes:
        """A key for one purpose, independent of the keys for every other purpose."""
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(
            self._master_key
        )

    def password(self, purpose: str) -> bytes:
        """A password (printable) for a private key file the server keeps, derived for ``purpose``."""
        return base64.urlsafe_b64encode(self.derive(f"key-file-password:{purpose}"))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as error:
            raise SecretDecryptionError(
                f"a stored secret does not decrypt with the master key {self.path or ''}: it was "
                "encrypted with another one"
            ) from error

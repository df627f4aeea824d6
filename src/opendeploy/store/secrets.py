"""The server's master key: encrypts secrets at rest and derives the keys of other server secrets.

The key lives in ``<data-dir>/master.key`` (mode 0600), created on first use. Secret access keys and
GitHub tokens are stored as Fernet tokens under a key derived from it; the HMAC key that signs
pagination tokens is derived from it too. Replicas sharing one database must share this file.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MASTER_KEY_FILE = "master.key"


class SecretDecryptionError(RuntimeError):
    """A stored secret cannot be decrypted: it was encrypted under another master key."""


class SecretBox:
    """Encrypts and decrypts secrets with keys derived from one master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) < 32:
            raise ValueError("the master key must be at least 32 bytes")
        self._master_key = master_key
        self._fernet = Fernet(base64.urlsafe_b64encode(self.derive("secrets-at-rest")))

    @classmethod
    def load_or_create(cls, data_dir: Path) -> SecretBox:
        """The master key of ``data_dir``, created (readable by the owner only) if missing."""
        path = Path(data_dir) / MASTER_KEY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            encoded = base64.b64encode(secrets.token_bytes(32))
            try:
                # O_EXCL: if two processes race, one creates the key and the other reads it.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(encoded + b"\n")
                    handle.flush()
                    os.fsync(handle.fileno())
        return cls(base64.b64decode(path.read_bytes().strip()))

    def derive(self, purpose: str, length: int = 32) -> bytes:
        """A key for one purpose, independent of the keys for every other purpose."""
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(
            self._master_key
        )

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as error:
            raise SecretDecryptionError(
                f"a stored secret does not decrypt with this data directory's {MASTER_KEY_FILE}"
            ) from error

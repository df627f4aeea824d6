"""The server's deployment-specification signer: its key, its self-signed certificate, and the signing.

GetDeploymentSpecification hands each agent its deployment specification as a ``PKCS7/JSON`` envelope:
PEM PKCS#7 SignedData holding the JSON, signed with this key (agent wire protocol §1.6). opendeploy's
agent pins the certificate when it is registered and refuses a specification signed by anyone else;
AWS's agent reads the same envelope without checking the chain.

The key and certificate are created in the data directory at first start:
``specification-signer.pem`` (the private key, PKCS#8 encrypted with a password derived from the master
key, then the certificate; mode 0600) and ``specification-signer.crt`` (the certificate alone, for anyone
to pin; also served at ``GET /agent/certificate``). A copy of the data directory without the master key
therefore cannot sign specifications. A key written unencrypted by an earlier version is read and
rewritten encrypted at start. Server replicas must share these files, as they share the master key.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from opendeploy.store.data_at_rest import write_private
from opendeploy.store.secrets import MasterKeyError, SecretBox

log = logging.getLogger(__name__)

SIGNER_FILE = "specification-signer.pem"
CERTIFICATE_FILE = "specification-signer.crt"
CERTIFICATE_VALIDITY = datetime.timedelta(days=3650)
SIGNER_COMMON_NAME = "opendeploy deployment specification signer"
PKCS7_JSON = "PKCS7/JSON"
_KEY_PURPOSE = "specification-signer"
_PRIVATE_KEY_BLOCK = re.compile(
    rb"-----BEGIN ((?:ENCRYPTED |RSA )?PRIVATE KEY)-----.+?-----END \1-----\s*", re.DOTALL
)
_UNENCRYPTED_KEY = re.compile(rb"-----BEGIN (?:RSA )?PRIVATE KEY-----")


@dataclass(frozen=True)
class SpecificationSigner:
    """Signs deployment specifications with the server's key."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def sign(self, document: bytes) -> str:
        """``document`` (the specification's JSON) as PEM PKCS#7 SignedData with the content embedded.

        Binary mode keeps the JSON byte for byte (no S/MIME line-ending conversion), as the AWS agent's
        own test signer does.
        """
        signed = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(document)
            .add_signer(self.certificate, self.private_key, hashes.SHA256())
            .sign(serialization.Encoding.PEM, [pkcs7.PKCS7Options.Binary])
        )
        return signed.decode("ascii")

    @classmethod
    def load_or_create(cls, data_dir: Path, secrets: SecretBox | None = None) -> SpecificationSigner:
        """The data directory's signer, created on first use (safe when several processes start at once).

        ``secrets``: the master key its private key is encrypted with [default: the data directory's,
        as ``SecretBox.load_or_create`` finds it]. A key stored unencrypted is encrypted now.
        """
        data_dir = Path(data_dir)
        box = secrets if secrets is not None else SecretBox.load_or_create(data_dir)
        password = box.password(_KEY_PURPOSE)
        path = data_dir / SIGNER_FILE
        if not path.exists():
            _create(path, password)
        data = path.read_bytes()
        signer = cls._load(path, data, password)
        if _UNENCRYPTED_KEY.search(data):
            # Written by an earlier version: keep the key (agents have pinned its certificate), store it
            # encrypted. Replicas migrating at the same moment each write the same key; either file works.
            write_private(path, _signer_file(signer.private_key, signer.certificate, password))
            log.info(
                "%s: the specification signing key was stored unencrypted; it is now encrypted with the "
                "master key",
                path,
            )
        _write_certificate(data_dir / CERTIFICATE_FILE, signer.certificate_pem)
        return signer

    @classmethod
    def _load(cls, path: Path, data: bytes, password: bytes) -> SpecificationSigner:
        match = _PRIVATE_KEY_BLOCK.search(data)
        if match is None:
            raise ValueError(f"{path} holds no private key")
        encrypted = match.group(1) == b"ENCRYPTED PRIVATE KEY"
        try:
            key = serialization.load_pem_private_key(match.group(0), password=password if encrypted else None)
        except ValueError:
            raise MasterKeyError(
                f"{path}: the specification signing key does not decrypt with this master key "
                "(it was encrypted with another one)"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        certificate = x509.load_pem_x509_certificate(data[data.index(b"-----BEGIN CERTIFICATE-----") :])
        if certificate.public_key().public_numbers() != key.public_key().public_numbers():
            raise ValueError(f"{path}: the certificate does not belong to the private key")
        return cls(key, certificate)


def _new_signer() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SIGNER_COMMON_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate hosts whose clocks run slow
        .not_valid_after(now + CERTIFICATE_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _signer_file(key: rsa.RSAPrivateKey, certificate: x509.Certificate, password: bytes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    ) + certificate.public_bytes(serialization.Encoding.PEM)


def _create(path: Path, password: bytes) -> None:
    """Write a new key and certificate to ``path`` unless another process got there first."""
    key, certificate = _new_signer()
    content = _signer_file(key, certificate, password)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".signer-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process created it meanwhile: theirs wins
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def _write_certificate(path: Path, pem: bytes) -> None:
    if path.exists() and path.read_bytes() == pem:
        return
    # Public, but the data directory's files are all private (0600); it is served to anyone who asks.
    write_private(path, pem)

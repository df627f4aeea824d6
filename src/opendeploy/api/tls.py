"""The server's TLS certificate: the operator's files, or a self-signed one kept in the data directory.

``opendeploy server`` serves HTTPS. With ``--tls-certificate``/``--tls-key`` it presents the operator's
certificate (from their CA, or a public one). Without them it makes a self-signed certificate for the
embedded default, in the data directory:

``server-tls.pem``   the private key (PKCS#8, encrypted with a password derived from the master key) and
                     the certificate (mode 0600);
``server-tls.crt``   the certificate alone: what clients trust (``opendeploy init`` puts it in the AWS
                     profile's ``ca_bundle``, ``opendeploy register`` in the agent's ``:ca_bundle:``).

It is one self-signed end-entity certificate, not a CA: trusting it (even system-wide, for AWS's agent)
lets it vouch for this server's names only, never for other sites. Its subject alternative names are
``localhost``, ``127.0.0.1``, ``::1``, the machine's host name, the address the server listens on (unless
it is a wildcard) and every ``--tls-name``; when a start asks for a name it lacks, or it has less than 30
days left, a new one replaces it (clients must then trust the new one). ``GET /tls/certificate`` serves
it without authentication so a host can fetch it and check its SHA-256 fingerprint (which the server logs)
before trusting it (``opendeploy register --ca-fingerprint``).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.types import ASGIApp, Receive, Scope, Send

from opendeploy.store.data_at_rest import write_private
from opendeploy.store.secrets import SecretBox

log = logging.getLogger(__name__)

SELF_SIGNED_FILE = "server-tls.pem"
SELF_SIGNED_CERTIFICATE_FILE = "server-tls.crt"
CERTIFICATE_PATH = "/tls/certificate"
VALIDITY = datetime.timedelta(days=825)
RENEW_BEFORE = datetime.timedelta(days=30)
COMMON_NAME = "opendeploy server"
_KEY_PURPOSE = "tls-self-signed"
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}
_NOT_SELF_SIGNED = b"this server's TLS certificate is the operator's: trust the CA that issued it\n"
_CERTIFICATE_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.DOTALL)


class TlsError(ValueError):
    """The TLS certificate or key cannot be used."""


@dataclass(frozen=True)
class ServerTls:
    """What uvicorn needs to serve HTTPS, and what clients should trust."""

    certificate_file: Path
    key_file: Path | None  # None: the key is in certificate_file
    key_password: str | None
    # The certificate clients trust for this server when it is opendeploy's own (self-signed); None for
    # the operator's certificate, which clients trust through its CA.
    trust_pem: bytes | None

    @property
    def fingerprint(self) -> str | None:
        return fingerprint(self.trust_pem) if self.trust_pem else None


def fingerprint(pem: bytes) -> str:
    """The SHA-256 fingerprint of a PEM certificate's DER form: ``AB:CD:…`` as ``openssl x509
    -fingerprint -sha256`` prints it."""
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def normalise_fingerprint(text: str) -> str:
    """A fingerprint as the user wrote it (any case, with or without colons, ``sha256:`` prefix)."""
    text = text.strip().upper().removeprefix("SHA256:").removeprefix("SHA256 ").replace(":", "")
    return ":".join(text[i : i + 2] for i in range(0, len(text), 2))


def default_names(host: str, extra: Iterable[str] = ()) -> list[str]:
    """The names the self-signed certificate covers (see the module docstring), in a stable order."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname()]
    if host.strip("[]") not in _WILDCARD_HOSTS:
        names.append(host.strip("[]"))
    names.extend(extra)
    seen: dict[str, None] = {}
    for name in names:
        name = name.strip().lower().rstrip(".")
        if name:
            seen.setdefault(name, None)
    return list(seen)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _names_in(certificate: x509.Certificate) -> set[str]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = {str(ip) for ip in extension.get_values_for_type(x509.IPAddress)}
    return names | {dns.lower() for dns in extension.get_values_for_type(x509.DNSName)}


def _new_self_signed(names: list[str]) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "opendeploy"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    subject_key = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate clients whose clocks run slow
        .not_valid_after(now + VALIDITY)
        # An end entity, not a CA: whoever trusts it trusts this server's names and nothing else.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        # Both identifiers: strict verifiers (Python 3.13's default X509_STRICT) ask for them.
        .add_extension(subject_key, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(subject_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _usable(certificate: x509.Certificate, names: list[str]) -> str | None:
    """Why the certificate cannot serve (missing names, expiring), or None."""
    missing = [name for name in names if name not in _names_in(certificate)]
    if missing:
        return f"the stored one does not name {', '.join(missing)}"
    if certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC) < RENEW_BEFORE:
        return f"the stored one expires on {certificate.not_valid_after_utc:%Y-%m-%d}"
    return None


def _reusable(data: bytes, password: bytes, names: list[str]) -> str | None:
    """Why the stored key and certificate cannot serve again, or None."""
    try:
        serialization.load_pem_private_key(data, password=password)
    except ValueError:
        return "the stored one's key does not decrypt with this master key"
    match = _CERTIFICATE_BLOCK.search(data)
    if match is None:
        return "the stored file held no certificate"
    return _usable(x509.load_pem_x509_certificate(match.group(0)), names)


def self_signed(data_dir: Path, secrets: SecretBox, names: list[str]) -> ServerTls:
    """The data directory's self-signed certificate for ``names``, made (or remade) if needed."""
    data_dir = Path(data_dir)
    path = data_dir / SELF_SIGNED_FILE
    password = secrets.password(_KEY_PURPOSE)
    reason: str | None = "there was none"
    if path.exists():
        reason = _reusable(path.read_bytes(), password, names)
    if reason is not None:
        key, certificate = _new_self_signed(names)
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(
            path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(password),
            )
            + certificate.public_bytes(serialization.Encoding.PEM),
        )
        log.info(
            "made a self-signed TLS certificate (%s) for %s, valid until %s",
            reason,
            ", ".join(names),
            f"{certificate.not_valid_after_utc:%Y-%m-%d}",
        )
        if reason != "there was none":
            log.warning(
                "clients that trusted the previous self-signed certificate must trust the new one "
                "(run 'opendeploy init' and 'opendeploy register --force' again, or fetch %s)",
                CERTIFICATE_PATH,
            )
    data = path.read_bytes()
    match = _CERTIFICATE_BLOCK.search(data)
    assert match is not None
    pem = match.group(0).strip() + b"\n"
    certificate_file = data_dir / SELF_SIGNED_CERTIFICATE_FILE
    if not certificate_file.exists() or certificate_file.read_bytes() != pem:
        write_private(certificate_file, pem)
    return ServerTls(path, None, password.decode("ascii"), pem)


def self_signed_certificate(data_dir: Path) -> bytes | None:
    """The data directory's self-signed certificate (PEM), if one was made."""
    with contextlib.suppress(FileNotFoundError):
        return (Path(data_dir) / SELF_SIGNED_CERTIFICATE_FILE).read_bytes()
    return None


def operator_files(certificate_file: Path, key_file: Path) -> ServerTls:
    """The operator's certificate (chain) and key, checked now so a mistake is reported clearly."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certificate_file, key_file)
    except (OSError, ssl.SSLError) as error:
        raise TlsError(f"cannot use {certificate_file} with {key_file}: {error}") from None
    return ServerTls(Path(certificate_file).absolute(), Path(key_file).absolute(), None, None)


class CertificateRoute:
    """ASGI middleware answering ``GET /tls/certificate`` with the certificate clients should trust.

    It is public (clients fetch it before they can verify anything) and says nothing secret; a client
    must check its fingerprint through another channel before trusting it. A server with the operator's
    certificate answers 404: its clients trust the operator's CA instead.
    """

    def __init__(self, app: ASGIApp, trust_pem: bytes | None) -> None:
        self.app = app
        self.trust_pem = trust_pem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted = scope["type"] == "http" and scope["path"] == CERTIFICATE_PATH
        if not wanted or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        status, body, media_type = 200, self.trust_pem, b"application/x-pem-file"
        if body is None:
            status, body, media_type = 404, _NOT_SELF_SIGNED, b"text/plain"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", media_type), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})

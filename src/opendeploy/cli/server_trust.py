"""How a host comes to trust the opendeploy server's TLS certificate (``opendeploy register``).

The certificate to trust is decided once, in this order:

1. ``--ca-bundle FILE``: the given certificates (a private CA's, or the server's own);
2. ``--ca-fingerprint SHA256``: fetched from the server's ``GET /tls/certificate`` *without* verifying
   it, and accepted only if its SHA-256 fingerprint is the one given (the server logs it at start,
   ``opendeploy init`` prints it) — the way to bootstrap a host that has nothing yet;
3. the administrator profile's ``ca_bundle`` (``opendeploy init`` writes it): ``GET /tls/certificate``
   verified with it gives the server's own certificate; a server with the operator's certificate
   answers 404 and the profile's bundle is used as it is;
4. nothing: the system's certificate authorities vouch for the server (or it speaks plain HTTP).

opendeploy's agent then trusts ``<config-dir>/opendeploy-server-ca.pem`` (its ``:ca_bundle:``): those
certificates plus the public CAs (certifi), so a bundle store elsewhere keeps working. AWS's agent has
no such key — it trusts the system store, or the file ``SSL_CERT_FILE`` names (its start-up check and
every client it makes read that variable) — so ``--trust-system-wide`` installs the certificate into
``/usr/local/share/ca-certificates/`` and runs ``update-ca-certificates`` (Debian, Ubuntu);
``opendeploy deregister`` takes it out again.
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from cryptography import x509

from opendeploy.api.tls import CERTIFICATE_PATH, fingerprint, normalise_fingerprint
from opendeploy.cli.aws_profile import trust_bundle

CA_BUNDLE_NAME = "opendeploy-server-ca.pem"
SYSTEM_CA_DIR = Path("/usr/local/share/ca-certificates")


class TrustError(RuntimeError):
    """The server's certificate cannot be established or installed; the message says what to do."""


@dataclass(frozen=True)
class ServerTrust:
    """What a host trusts for the server."""

    agent_bundle: bytes | None  # the agent's :ca_bundle: file's content; None: the system's CAs
    server_certificates: bytes | None  # the server's own (or its CA's) certificates, to install system-wide
    source: str  # for messages: where they came from


def verify_context(cafile: Path | str | None) -> ssl.SSLContext | bool:
    """What httpx's ``verify`` takes for a CA file (an ``SSLContext``), or True for the defaults."""
    return ssl.create_default_context(cafile=str(cafile)) if cafile else True


def _certificate_url(endpoint: str) -> str:
    return endpoint.rstrip("/") + CERTIFICATE_PATH


def fetch_unverified(endpoint: str, expected_fingerprint: str) -> bytes:
    """The server's self-signed certificate, accepted only if its fingerprint is ``expected``."""
    url = _certificate_url(endpoint)
    try:
        # Unverified on purpose: the fingerprint check below is what makes the answer trustworthy.
        response = httpx.get(url, timeout=10.0, verify=False)
    except httpx.HTTPError as error:
        raise TrustError(f"cannot fetch the server's TLS certificate from {url}: {error}") from None
    if response.status_code != 200:
        raise TrustError(
            f"cannot fetch the server's TLS certificate from {url}: HTTP {response.status_code} (a server "
            "with the operator's certificate has none to hand out: give --ca-bundle with its CA)"
        )
    pem = response.content
    try:
        actual = fingerprint(pem)
    except ValueError:
        raise TrustError(f"{url} did not answer with a PEM certificate") from None
    if actual != normalise_fingerprint(expected_fingerprint):
        raise TrustError(
            f"the certificate {url} served has the SHA-256 fingerprint {actual}, not the one given "
            f"({expected_fingerprint}): it is not trusted (someone may be in between)"
        )
    return pem


def _fetch_verified(endpoint: str, cafile: str) -> bytes | None:
    url = _certificate_url(endpoint)
    try:
        response = httpx.get(url, timeout=10.0, verify=verify_context(cafile))
    except httpx.HTTPError as error:
        raise TrustError(
            f"cannot reach {url} trusting {cafile}: {error} (give --ca-bundle, or --ca-fingerprint with "
            "the fingerprint the server logs at start)"
        ) from None
    return response.content if response.status_code == 200 else None


def _check_pem(pem: bytes, source: str) -> bytes:
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise TrustError(f"{source} holds no PEM certificate: {error}") from None
    return pem


def decide(
    endpoint: str,
    *,
    ca_bundle: Path | None,
    ca_fingerprint: str | None,
    profile_ca_bundle: str | None,
) -> ServerTrust:
    """What this host trusts for the server at ``endpoint`` (the order in the module docstring)."""
    if urlsplit(endpoint).scheme != "https":
        return ServerTrust(None, None, "plain HTTP")
    if ca_bundle is not None:
        pem = _check_pem(ca_bundle.read_bytes(), str(ca_bundle))
        return ServerTrust(trust_bundle(pem), pem, str(ca_bundle))
    if ca_fingerprint:
        pem = fetch_unverified(endpoint, ca_fingerprint)
        return ServerTrust(trust_bundle(pem), pem, f"{_certificate_url(endpoint)} (fingerprint checked)")
    if profile_ca_bundle:
        pem = _fetch_verified(endpoint, profile_ca_bundle)
        if pem is not None:
            return ServerTrust(trust_bundle(pem), pem, f"{_certificate_url(endpoint)} (verified)")
        return ServerTrust(Path(profile_ca_bundle).read_bytes(), None, profile_ca_bundle)
    return ServerTrust(None, None, "the system's certificate authorities")


def _system_file_name(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    label = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{parts.hostname}-{parts.port or 443}").strip("-")
    return f"opendeploy-{label}.crt"


def install_system_wide(pem: bytes, endpoint: str, directory: Path = SYSTEM_CA_DIR) -> Path:
    """Add ``pem`` to the system's trusted certificates (``update-ca-certificates``); its file."""
    tool = shutil.which("update-ca-certificates")
    if tool is None:
        raise TrustError(
            "update-ca-certificates is not installed (Debian/Ubuntu's ca-certificates): add the "
            "certificate to this system's trust store by hand, or start AWS's agent with SSL_CERT_FILE "
            "naming the agent's CA bundle (and no AWS_CA_BUNDLE)"
        )
    path = directory / _system_file_name(endpoint)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pem)
        path.chmod(0o644)
        subprocess.run([tool], check=True, capture_output=True, text=True, timeout=120)
    except PermissionError:
        raise TrustError(f"cannot write {path}: --trust-system-wide needs root") from None
    except subprocess.CalledProcessError as error:
        raise TrustError(f"update-ca-certificates failed: {error.stderr.strip()}") from None
    return path


def remove_system_wide(endpoint: str, directory: Path = SYSTEM_CA_DIR) -> Path | None:
    """Take the certificate ``install_system_wide`` added for ``endpoint`` out of the system's trusted
    certificates again; its file, or None if there was none. ``--fresh`` rebuilds the store's links, which
    a plain run would leave dangling."""
    path = directory / _system_file_name(endpoint)
    if not path.exists():
        return None
    tool = shutil.which("update-ca-certificates")
    try:
        path.unlink()
        if tool is not None:
            subprocess.run([tool, "--fresh"], check=True, capture_output=True, text=True, timeout=120)
    except PermissionError:
        raise TrustError(f"cannot remove {path}: it was added by root, remove it as root") from None
    except subprocess.CalledProcessError as error:
        raise TrustError(f"update-ca-certificates failed: {error.stderr.strip()}") from None
    return path

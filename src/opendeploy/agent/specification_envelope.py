"""Open the signed envelope a deployment specification travels in, trusting only the pinned certificate.

The command service hands the specification over as ``{"Format": "PKCS7/JSON", "Payload": <PEM>}``: a
PKCS#7 (CMS) SignedData structure holding the JSON document. AWS's agents check such a signature with no
trust store at all; opendeploy's agent instead verifies it against the one certificate it pinned when it
was registered, so a specification is only ever run if the agent's own server signed it. Anything else —
another format, an unsigned or detached structure, a signature by any other key, content that does not
match its digest — is refused with an error that says which.

``cryptography`` can sign PKCS#7 but not verify it, so ``asn1crypto`` parses the structure and
``cryptography`` checks the signature with the certificate's public key.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from asn1crypto import cms, pem
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

PKCS7_JSON = "PKCS7/JSON"

_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class SpecificationEnvelopeError(ValueError):
    """The envelope is not a specification this agent's server signed; the message says why."""


def load_signer_certificate(path: Path) -> x509.Certificate:
    """The pinned server certificate (PEM) that deployment specifications must be signed with."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SpecificationEnvelopeError(
            f"cannot read the pinned server certificate {path}: {exc.strerror}"
        ) from None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise SpecificationEnvelopeError(
            f"the pinned server certificate {path} is not a PEM certificate: {exc}"
        ) from None


def _signed_by(signer: cms.SignerInfo, certificate: x509.Certificate) -> bool:
    sid = signer["sid"]
    if sid.name == "issuer_and_serial_number":
        chosen = sid.chosen
        return (
            chosen["serial_number"].native == certificate.serial_number
            and chosen["issuer"].dump() == certificate.issuer.public_bytes()
        )
    if sid.name == "subject_key_identifier":
        try:
            extension = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            return False
        return hmac.compare_digest(sid.chosen.native, extension.value.digest)
    return False


def _describe_signer(signer: cms.SignerInfo) -> str:
    sid = signer["sid"]
    if sid.name == "issuer_and_serial_number":
        return f"issuer {sid.chosen['issuer'].human_friendly!r}, serial {sid.chosen['serial_number'].native}"
    return f"key identifier {sid.chosen.native.hex()}"


def _digest(name: str, data: bytes) -> bytes:
    digest = hashes.Hash(_DIGESTS[name]())
    digest.update(data)
    return digest.finalize()


def _verify_signature(
    certificate: x509.Certificate, signer: cms.SignerInfo, digest_name: str, signed: bytes
) -> None:
    key = certificate.public_key()
    signature = signer["signature"].native
    algorithm = signer["signature_algorithm"]
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if algorithm.signature_algo == "rsassa_pss":
                params = algorithm["parameters"]
                salt = params["salt_length"].native if params else padding.PSS.AUTO
                pss = padding.PSS(mgf=padding.MGF1(_DIGESTS[digest_name]()), salt_length=salt)
                key.verify(signature, signed, pss, _DIGESTS[digest_name]())
            else:
                key.verify(signature, signed, padding.PKCS1v15(), _DIGESTS[digest_name]())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(_DIGESTS[digest_name]()))
        else:
            raise SpecificationEnvelopeError(
                f"the pinned server certificate has a {type(key).__name__} key, which cannot check signatures"
            )
    except InvalidSignature:
        raise SpecificationEnvelopeError(
            "the deployment specification's signature does not verify with the pinned server certificate "
            "(it was altered or signed with another key)"
        ) from None
    except (ValueError, KeyError) as exc:
        raise SpecificationEnvelopeError(
            f"the deployment specification's signature cannot be checked: {exc}"
        ) from None


def _check_signed_attributes(signer: cms.SignerInfo, digest_name: str, content: bytes) -> bytes:
    """The bytes the signature covers: the signed attributes (re-tagged as a SET), once they vouch for
    the content; or the content itself when there are none."""
    attributes = signer["signed_attrs"]
    if not attributes:
        return content
    values = {attribute["type"].native: attribute["values"] for attribute in attributes}
    if "message_digest" not in values:
        raise SpecificationEnvelopeError("the PKCS7 signature has signed attributes but no message digest")
    if "content_type" in values and values["content_type"][0].native != "data":
        raise SpecificationEnvelopeError(
            f"the PKCS7 signature is over {values['content_type'][0].native!r} content, not data"
        )
    expected = values["message_digest"][0].native
    if not hmac.compare_digest(expected, _digest(digest_name, content)):
        raise SpecificationEnvelopeError(
            "the deployment specification does not match the digest it was signed with (it was altered)"
        )
    # The signature covers the attributes' DER encoding as a SET OF, not with the [0] tag they carry here.
    return attributes.untag().dump()


def open_envelope(envelope_format: str, payload: str, certificate: x509.Certificate) -> str:
    """The JSON text inside a ``PKCS7/JSON`` envelope, once its signature verifies with ``certificate``."""
    if envelope_format != PKCS7_JSON:
        if envelope_format in ("TEXT/JSON", "JSON"):
            raise SpecificationEnvelopeError(
                f"Unsupported DeploymentSpecification format: {envelope_format} (an unsigned specification; "
                f"this agent only runs specifications signed by its server, format {PKCS7_JSON})"
            )
        raise SpecificationEnvelopeError(f"Unsupported DeploymentSpecification format: {envelope_format}")
    data = payload.encode("utf-8", errors="replace")
    try:
        if not pem.detect(data):
            raise ValueError("the payload is not PEM (no -----BEGIN PKCS7----- block)")
        _kind, _headers, der = pem.unarmor(data)
        info = cms.ContentInfo.load(der)
        content_type = info["content_type"].native
        if content_type != "signed_data":
            raise ValueError(f"it holds {content_type!r}, not signed data")
        signed_data = info["content"]
        signers = list(signed_data["signer_infos"])
        encapsulated = signed_data["encap_content_info"]
        raw_content = encapsulated["content"]
        content = None if raw_content.native is None else bytes(raw_content.native)
    except ValueError as exc:
        raise SpecificationEnvelopeError(f"Could not parse the PKCS7: {exc}") from None
    if not signers:
        raise SpecificationEnvelopeError("the PKCS7 structure is not signed: it has no signer")
    if content is None:
        raise SpecificationEnvelopeError(
            "the PKCS7 structure carries no specification (a detached signature)"
        )
    signer = next((s for s in signers if _signed_by(s, certificate)), None)
    if signer is None:
        raise SpecificationEnvelopeError(
            "the deployment specification is not signed by the pinned server certificate "
            f"(signed by {_describe_signer(signers[0])}; pinned: issuer "
            f"{certificate.issuer.rfc4514_string()!r}, serial {certificate.serial_number})"
        )
    digest_name = signer["digest_algorithm"]["algorithm"].native
    if digest_name not in _DIGESTS:
        raise SpecificationEnvelopeError(
            f"the PKCS7 signature uses the digest {digest_name}; only the SHA-2 family is accepted"
        )
    signed = _check_signed_attributes(signer, digest_name, content)
    _verify_signature(certificate, signer, digest_name, signed)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecificationEnvelopeError("the signed deployment specification is not UTF-8 text") from None

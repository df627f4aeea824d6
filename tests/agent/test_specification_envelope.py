"""The agent runs a deployment specification only if the server it pinned at registration signed it.

Specifications are signed here exactly as a server signs them (cryptography's PKCS7SignatureBuilder),
then opened with the agent's verifier; every way of getting it wrong is refused with a clear reason.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from asn1crypto import cms, pem
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from opendeploy.agent.deployment_specification import S3Revision, parse_deployment_specification
from opendeploy.agent.specification_envelope import (
    SpecificationEnvelopeError,
    load_signer_certificate,
    open_envelope,
)

SPEC = {
    "DeploymentId": "arn:aws:codedeploy:us-east-1:111122223333:deployment/d-ABCDEFGHI",
    "DeploymentGroupId": "9c0a7f3e-2c1d-4a57-9d44-7d1a3c0b1e22",
    "DeploymentGroupName": "WordPress_DepGroup",
    "ApplicationName": "WordPress_App",
    "DeploymentCreator": "user",
    "DeploymentType": "IN_PLACE",
    "AppSpecFilename": "appspec.yml",
    "Revision": {
        "RevisionType": "S3",
        "S3Revision": {"Bucket": "bundles", "Key": "app.zip", "BundleType": "zip", "ETag": "abc"},
    },
}


def make_certificate(key, common_name: str = "opendeploy server", serial: int | None = None):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def sign(data: bytes, certificate, key, *options: pkcs7.PKCS7Options) -> str:
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(certificate, key, hashes.SHA256())
    return builder.sign(serialization.Encoding.PEM, [pkcs7.PKCS7Options.Binary, *options]).decode()


@pytest.fixture(scope="module")
def server_identity():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, make_certificate(key)


def test_a_specification_signed_by_the_pinned_server_opens_and_parses(server_identity) -> None:
    key, certificate = server_identity
    payload = sign(json.dumps(SPEC).encode(), certificate, key)

    document = open_envelope("PKCS7/JSON", payload, certificate)
    spec = parse_deployment_specification(document)

    assert spec.deployment_id == "d-ABCDEFGHI"
    assert isinstance(spec.revision, S3Revision) and spec.revision.etag == "abc"


@pytest.mark.parametrize("kind", ["ec", "rsa-no-attributes"])
def test_ec_keys_and_signatures_without_attributes_verify(kind: str) -> None:
    options: tuple[pkcs7.PKCS7Options, ...] = ()
    if kind == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        options = (pkcs7.PKCS7Options.NoAttributes,)
    certificate = make_certificate(key)
    payload = sign(b'{"DeploymentId": "d-1"}', certificate, key, *options)
    assert open_envelope("PKCS7/JSON", payload, certificate) == '{"DeploymentId": "d-1"}'


def test_a_specification_signed_by_another_server_is_refused(server_identity) -> None:
    _, pinned = server_identity
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = make_certificate(other_key, "someone else")
    payload = sign(json.dumps(SPEC).encode(), other, other_key)
    with pytest.raises(SpecificationEnvelopeError, match="not signed by the pinned server certificate"):
        open_envelope("PKCS7/JSON", payload, pinned)


def test_a_forged_certificate_with_the_pinned_name_and_serial_is_refused(server_identity) -> None:
    _, pinned = server_identity
    forger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # Same issuer name and serial as the pinned certificate: only the key differs.
    forged = make_certificate(forger_key, "opendeploy server", serial=pinned.serial_number)
    payload = sign(json.dumps(SPEC).encode(), forged, forger_key, pkcs7.PKCS7Options.NoAttributes)
    with pytest.raises(
        SpecificationEnvelopeError, match="does not verify with the pinned server certificate"
    ):
        open_envelope("PKCS7/JSON", payload, pinned)


def _tamper(payload: str, new_content: bytes) -> str:
    _, _, der = pem.unarmor(payload.encode())
    info = cms.ContentInfo.load(der)
    info["content"]["encap_content_info"]["content"] = new_content
    return pem.armor("PKCS7", info.dump(force=True)).decode()


def test_an_altered_specification_is_refused(server_identity) -> None:
    key, certificate = server_identity
    original = json.dumps(SPEC).encode()
    altered = original.replace(b"bundles", b"evilbkt")

    with_attributes = _tamper(sign(original, certificate, key), altered)
    with pytest.raises(SpecificationEnvelopeError, match="does not match the digest"):
        open_envelope("PKCS7/JSON", with_attributes, certificate)

    without = _tamper(sign(original, certificate, key, pkcs7.PKCS7Options.NoAttributes), altered)
    with pytest.raises(SpecificationEnvelopeError, match="does not verify"):
        open_envelope("PKCS7/JSON", without, certificate)


def test_unsigned_formats_are_refused(server_identity) -> None:
    _, certificate = server_identity
    for envelope_format in ("TEXT/JSON", "JSON"):
        with pytest.raises(SpecificationEnvelopeError, match="unsigned specification"):
            open_envelope(envelope_format, json.dumps(SPEC), certificate)
    with pytest.raises(SpecificationEnvelopeError, match="Unsupported DeploymentSpecification format: XML"):
        open_envelope("XML", "<x/>", certificate)


def test_plain_json_labelled_pkcs7_and_garbage_are_refused(server_identity) -> None:
    _, certificate = server_identity
    with pytest.raises(SpecificationEnvelopeError, match="Could not parse the PKCS7: the payload is not PEM"):
        open_envelope("PKCS7/JSON", json.dumps(SPEC), certificate)
    garbage = "-----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----\n"
    with pytest.raises(SpecificationEnvelopeError, match="Could not parse the PKCS7"):
        open_envelope("PKCS7/JSON", garbage, certificate)


def test_a_detached_signature_carries_no_specification(server_identity) -> None:
    key, certificate = server_identity
    payload = sign(b"{}", certificate, key, pkcs7.PKCS7Options.DetachedSignature)
    with pytest.raises(SpecificationEnvelopeError, match="detached signature"):
        open_envelope("PKCS7/JSON", payload, certificate)


def test_a_signer_claiming_a_weak_digest_is_refused(server_identity) -> None:
    key, certificate = server_identity
    _, _, der = pem.unarmor(sign(b"{}", certificate, key).encode())
    info = cms.ContentInfo.load(der)
    info["content"]["signer_infos"][0]["digest_algorithm"] = {"algorithm": "sha1"}
    payload = pem.armor("PKCS7", info.dump(force=True)).decode()
    with pytest.raises(SpecificationEnvelopeError, match="uses the digest sha1; only the SHA-2 family"):
        open_envelope("PKCS7/JSON", payload, certificate)


def test_the_pinned_certificate_is_read_from_a_pem_file(server_identity, tmp_path: Path) -> None:
    _, certificate = server_identity
    path = tmp_path / "server.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    assert load_signer_certificate(path) == certificate

    with pytest.raises(SpecificationEnvelopeError, match="cannot read the pinned server certificate"):
        load_signer_certificate(tmp_path / "missing.pem")
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(SpecificationEnvelopeError, match="is not a PEM certificate"):
        load_signer_certificate(tmp_path / "bad.pem")

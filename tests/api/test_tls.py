"""HTTPS: the server's self-signed certificate, trusted through the profile ``opendeploy init`` writes
(boto3 and the aws CLI need no other flag), refused by clients that do not trust it; the operator's own
certificate; and plain HTTP, which logs a warning.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from opendeploy.api.tls import fingerprint
from support.server import ServerProcess, clean_environment, free_port, wait_for


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = ServerProcess(tmp_path_factory.mktemp("tls"), tls=True)
    server.start()
    yield server
    server.stop()


def test_init_writes_an_https_endpoint_and_a_ca_bundle_that_trusts_the_certificate(
    tls_server: ServerProcess,
) -> None:
    config = tls_server.config_file.read_text()
    assert f"endpoint_url = https://127.0.0.1:{tls_server.port}" in config
    bundle = Path(re.search(r"^ca_bundle = (.+)$", config, re.MULTILINE).group(1))
    certificate = tls_server.certificate_file.read_bytes()
    assert bundle.read_bytes().startswith(certificate)  # the server's certificate, then the public CAs
    assert bundle.read_bytes().count(b"BEGIN CERTIFICATE") > 10

    served = x509.load_pem_x509_certificate(certificate)
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", socket.gethostname().lower()} <= set(names.get_values_for_type(x509.DNSName))
    addresses = set(names.get_values_for_type(x509.IPAddress))
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")} <= addresses
    # Its key is private and encrypted with the master key.
    key_file = tls_server.data_dir / "server-tls.pem"
    assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in key_file.read_bytes()
    assert key_file.stat().st_mode & 0o077 == 0


def test_boto3_and_the_aws_cli_work_over_https_with_the_profile_alone(
    tls_server: ServerProcess, tmp_path: Path
) -> None:
    codedeploy = tls_server.client("codedeploy")
    assert codedeploy.meta.endpoint_url.startswith("https://")
    codedeploy.create_application(applicationName="over-tls")
    listed = tls_server.aws_json("deploy", "list-applications")
    assert "over-tls" in listed["applications"]
    bundle = tmp_path / "bundle.bin"
    bundle.write_bytes(b"bytes over TLS" * 1000)
    assert tls_server.aws("s3", "mb", "s3://tls-bundles").returncode == 0
    copied = tls_server.aws("s3", "cp", str(bundle), "s3://tls-bundles/app.bin")
    assert copied.returncode == 0, copied.stderr
    body = tls_server.client("s3").get_object(Bucket="tls-bundles", Key="app.bin")["Body"].read()
    assert body == bundle.read_bytes()

    # A separate program that only names the profile's files, as users' boto3 code does.
    program = (
        "import boto3; s = boto3.Session(profile_name='opendeploy');"
        "print(s.client('codedeploy').list_applications()['applications'])"
    )
    env = clean_environment() | {
        "AWS_CONFIG_FILE": str(tls_server.config_file),
        "AWS_SHARED_CREDENTIALS_FILE": str(tls_server.credentials_file),
    }
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "over-tls" in out.stdout


def test_a_client_that_does_not_trust_the_certificate_is_refused(tls_server: ServerProcess) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_server.endpoint}/health", verify=ssl.create_default_context())
    # boto3 with the public CAs only (what it uses without the profile's ca_bundle).
    import certifi

    untrusting = tls_server.session().client("codedeploy", verify=certifi.where())
    with pytest.raises(botocore.exceptions.SSLError):
        untrusting.list_applications()
    refused = tls_server.aws("deploy", "list-applications", "--ca-bundle", certifi.where())
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr
    # Plain HTTP on the HTTPS port gets nothing useful.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_server.port}/health", timeout=5.0)


def test_the_certificate_is_served_for_fingerprint_checks_and_the_log_names_its_fingerprint(
    tls_server: ServerProcess,
) -> None:
    served = httpx.get(f"{tls_server.endpoint}/tls/certificate", verify=tls_server.verify)
    assert served.status_code == 200
    assert served.content == tls_server.certificate_file.read_bytes()
    assert f"SHA-256 fingerprint {fingerprint(served.content)}" in tls_server.log_text()
    # 'tls' is the server's: no bucket can take the name and hide the route.
    with pytest.raises(botocore.exceptions.ClientError):
        tls_server.client("s3").create_bucket(Bucket="tls")


def test_first_start_writes_an_https_profile_and_a_new_name_gets_a_new_certificate(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "first", tls=True)
    try:
        server.start(init=False)  # the server's first start writes the profile
        assert f"endpoint_url = https://127.0.0.1:{server.port}" in server.config_file.read_text()
        assert "ca_bundle = " in server.config_file.read_text()
        assert server.aws_json("deploy", "list-applications") == {"applications": []}
        before = server.certificate_file.read_bytes()

        server.stop()
        server.extra_args = ["--tls-name", "deploy.example.test"]
        server.start()
        server.wait_for_log("does not name deploy.example.test")
        after = x509.load_pem_x509_certificate(server.certificate_file.read_bytes())
        names = after.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "deploy.example.test" in names.get_values_for_type(x509.DNSName)
        assert server.certificate_file.read_bytes() != before
    finally:
        server.stop()


def test_plain_http_is_possible_and_logs_a_warning(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "plain")  # tls=False: --tls off
    try:
        server.start()
        assert server.endpoint.startswith("http://")
        assert server.client("codedeploy").list_applications()["applications"] == []
        assert re.search(r"WARNING opendeploy.server: serving plain HTTP \(--tls off\)", server.log_text())
        assert "endpoint_url = http://" in server.config_file.read_text()
        assert "ca_bundle" not in server.config_file.read_text()
    finally:
        server.stop()


def make_ca_and_server_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for 127.0.0.1 it issued: (CA certificate, certificate, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test operator CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def test_the_operators_certificate_is_served_and_init_trusts_its_ca(tmp_path: Path) -> None:
    ca, certificate, key = make_ca_and_server_certificate(tmp_path)
    port = free_port()
    data = tmp_path / "data"
    config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    common = [
        "--data-dir",
        str(data),
        "--aws-config-file",
        str(config),
        "--aws-credentials-file",
        str(credentials),
    ]
    init = subprocess.run(
        [sys.executable, "-m", "opendeploy", "init", *common, "--endpoint-url", f"https://127.0.0.1:{port}",
         "--tls-certificate", str(certificate), "--tls-key", str(key), "--ca-bundle", str(ca)],
        env=clean_environment(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    assert not (data / "server-tls.pem").exists()  # no self-signed certificate was needed
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "opendeploy", "server", *common, "--port", str(port),
         "--tls-certificate", str(certificate), "--tls-key", str(key)],
        env=clean_environment(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        trusting = ssl.create_default_context(cafile=str(ca))

        def ready() -> bool:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                return httpx.get(f"https://127.0.0.1:{port}/health", verify=trusting).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60, message="the server with the operator's certificate")
        # No certificate of its own to hand out: clients trust the operator's CA.
        assert httpx.get(f"https://127.0.0.1:{port}/tls/certificate", verify=trusting).status_code == 404
        assert f"TLS certificate {certificate}" in (tmp_path / "server.log").read_text()
        env = clean_environment() | {
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_PROFILE": "opendeploy",
        }
        cli = Path(sys.executable).with_name("aws")
        listed = subprocess.run(
            [str(cli), "deploy", "list-applications"], env=env, capture_output=True, text=True, timeout=120
        )
        assert listed.returncode == 0, listed.stderr
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_a_certificate_that_does_not_match_its_key_is_a_clear_error(tmp_path: Path) -> None:
    _ca, certificate, _key = make_ca_and_server_certificate(tmp_path)
    other = ec.generate_private_key(ec.SECP256R1())
    wrong_key = tmp_path / "wrong.key"
    wrong_key.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "opendeploy", "server", "--data-dir", str(tmp_path / "data"),
         "--port", str(free_port()), "--tls-certificate", str(certificate), "--tls-key", str(wrong_key),
         "--aws-config-file", str(tmp_path / "c"), "--aws-credentials-file", str(tmp_path / "r")],
        env=clean_environment(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"cannot use {certificate} with {wrong_key}" in result.stderr

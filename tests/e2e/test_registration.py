"""``opendeploy register`` / ``deregister`` against a real server: the instance is registered with its
tags, the host's files are written (the identity readable by root only) and removed again; a failed
registration keeps nothing.
"""

from __future__ import annotations

import datetime
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from opendeploy.agent.agent_config import load_agent_config
from opendeploy.agent.onpremises_config import load_onpremises_config
from support.names import unique
from support.server import ServerProcess


def certificate_file(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinned for a test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def opendeploy(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opendeploy", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def server(module_server: ServerProcess) -> ServerProcess:
    return module_server


def test_register_then_deregister_with_a_given_identity(
    server: ServerProcess, tmp_path: Path, instance_key
) -> None:
    name = unique("onprem")
    user_arn = f"arn:aws:iam::{server.account_id}:user/CodeDeployUser-{name}"
    key_id, secret = instance_key(server, user_arn)
    conf = tmp_path / "conf"
    certificate = certificate_file(tmp_path / "server.crt")
    result = opendeploy(
        server,
        "register",
        "--instance-name", name,
        "--iam-user-arn", user_arn,
        "--access-key-id", key_id,
        "--secret-access-key", secret,
        "--tags", "Key=Name,Value=CodeDeployDemo-OnPrem",
        "--tags", "Key=Stage,Value=Beta",
        "--server-certificate", str(certificate),
        "--config-dir", str(conf),
        "--root-dir", str(tmp_path / "root"),
        "--log-dir", str(tmp_path / "log"),
        "--pid-dir", str(tmp_path / "pid"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"Registered on-premises instance {name} as {user_arn}." in result.stdout

    codedeploy = server.client("codedeploy")
    info = codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert info["iamUserArn"] == user_arn
    assert sorted((t["Key"], t["Value"]) for t in info["tags"]) == [
        ("Name", "CodeDeployDemo-OnPrem"),
        ("Stage", "Beta"),
    ]

    identity = load_onpremises_config(conf / "codedeploy.onpremises.yml")
    assert (
        identity.host_identifier,
        identity.access_key_id,
        identity.secret_access_key,
        identity.region,
    ) == (
        user_arn,
        key_id,
        secret,
        server.region,
    )
    assert stat.S_IMODE((conf / "codedeploy.onpremises.yml").stat().st_mode) == 0o600
    raw = yaml.safe_load((conf / "codedeployagent.yml").read_text())
    assert ":root_dir" in raw  # the AWS agent's symbol-key form
    config = load_agent_config(conf / "codedeployagent.yml")
    assert config.warnings == ()
    assert config.deploy_control_endpoint == server.endpoint
    assert config.s3_endpoint_override == server.endpoint
    assert config.root_dir == tmp_path / "root"
    assert config.on_premises_config_file == conf / "codedeploy.onpremises.yml"
    assert config.deployment_signer_certificate is not None
    assert config.deployment_signer_certificate.read_bytes() == certificate.read_bytes()

    # A second registration on the same host refuses to overwrite its identity.
    again = opendeploy(
        server, "register", "--instance-name", unique("onprem"), "--iam-user-arn", user_arn,
        "--access-key-id", key_id, "--secret-access-key", secret,
        "--server-certificate", str(certificate), "--config-dir", str(conf),
    )  # fmt: skip
    assert again.returncode != 0
    assert "already has agent files" in again.stderr

    result = opendeploy(
        server, "deregister", "--instance-name", name, "--config-dir", str(conf), "--no-delete-iam-user"
    )
    assert result.returncode == 0, result.stderr
    info = codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert "deregisterTime" in info
    assert info["tags"] == []  # the high-level deregister removes the tags (the guide's resolution)
    assert not list(conf.iterdir())


def test_a_failed_registration_keeps_nothing(
    server: ServerProcess, tmp_path: Path, instance_key: Callable[..., tuple[str, str]]
) -> None:
    taken = unique("onprem")
    codedeploy = server.client("codedeploy")
    codedeploy.register_on_premises_instance(
        instanceName=taken, iamUserArn=f"arn:aws:iam::{server.account_id}:user/{taken}"
    )
    user_arn = f"arn:aws:iam::{server.account_id}:user/{unique('u')}"
    key_id, secret = instance_key(server, user_arn)
    conf = tmp_path / "conf"
    result = opendeploy(
        server, "register", "--instance-name", taken, "--iam-user-arn", user_arn,
        "--access-key-id", key_id, "--secret-access-key", secret,
        "--server-certificate", str(certificate_file(tmp_path / "server.crt")), "--config-dir", str(conf),
    )  # fmt: skip
    assert result.returncode != 0
    assert f"registering {taken} failed (nothing was kept)" in result.stderr
    assert "InstanceNameAlreadyRegisteredException" in result.stderr
    assert not conf.exists() or not list(conf.iterdir())

    bad_tag = opendeploy(
        server, "register", "--instance-name", unique("i"), "--tags", "Name=x", "--config-dir", str(conf)
    )
    assert bad_tag.returncode == 2 and "Key=<key>,Value=<value>" in bad_tag.stderr


def test_register_pins_the_certificate_the_server_signs_specifications_with(
    server: ServerProcess, tmp_path: Path, instance_key: Callable[..., tuple[str, str]]
) -> None:
    name = unique("onprem")
    user_arn = f"arn:aws:iam::{server.account_id}:user/{name}"
    key_id, secret = instance_key(server, user_arn, name)
    conf = tmp_path / "conf"
    result = opendeploy(
        server, "register", "--instance-name", name, "--iam-user-arn", user_arn,
        "--access-key-id", key_id, "--secret-access-key", secret, "--config-dir", str(conf),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    served = (server.data_dir / "specification-signer.crt").read_bytes()
    assert (conf / "opendeploy-server.crt").read_bytes() == served
    certificate = x509.load_pem_x509_certificate(served)
    digest = certificate.fingerprint(hashes.SHA256()).hex().upper()
    assert ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)) in result.stdout


def server_iam(server: ServerProcess) -> Any:
    """The server's IAM API, through the profile's ``iam`` endpoint (``opendeploy init`` writes it)."""
    return server.client("iam")


def test_register_creates_and_deregister_deletes_the_instance_s_iam_user(
    server: ServerProcess, tmp_path: Path
) -> None:
    iam = server_iam(server)
    name = unique("onprem")
    conf = tmp_path / "conf"
    result = opendeploy(server, "register", "--instance-name", name, "--config-dir", str(conf))
    assert result.returncode == 0, result.stderr

    identity = load_onpremises_config(conf / "codedeploy.onpremises.yml")
    user = iam.get_user(UserName=name)["User"]
    assert identity.host_identifier == user["Arn"]
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]] == [
        identity.access_key_id
    ]
    info = server.client("codedeploy").get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert info["iamUserArn"] == user["Arn"]

    result = opendeploy(server, "deregister", "--instance-name", name, "--config-dir", str(conf))
    assert result.returncode == 0, result.stderr
    with pytest.raises(ClientError) as gone:
        iam.get_user(UserName=name)
    assert gone.value.response["Error"]["Code"] == "NoSuchEntity"
    assert not list(conf.iterdir())

"""A real deployment over HTTPS: a server with its self-signed certificate, the aws CLI and boto3 trusting
it through the profile ``opendeploy init`` wrote, and two hosts whose ``opendeploy register`` made their
agents trust it — one through the administrator profile's ``ca_bundle``, one by checking the certificate's
fingerprint (``--ca-fingerprint``) — running real agents that poll, download the bundle and report over
TLS.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from deploying import create_group, register_host, start_hosts, wait_for_deployment
from e2e_hosts import SAMPLE_DESTINATION, Host, require_hosts

from support.names import unique
from support.server import ServerProcess

SAMPLE = Path(__file__).parents[2] / "examples" / "CodeDeployDemo-OnPrem"
IN_PLACE_EVENTS = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "server", tls=True)
    server.start()
    yield server
    server.stop()


def server_fingerprint(server: ServerProcess) -> str:
    return re.search(r"SHA-256 fingerprint ([0-9A-F:]{95})", server.log_text()).group(1)


def test_a_deployment_over_https_with_the_aws_cli_boto3_and_opendeploys_agent(
    https_server: ServerProcess,
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    server = https_server
    assert server.endpoint.startswith("https://")
    tag = unique("https-fleet")
    through_profile, through_fingerprint = hosts(server), hosts(server)
    register_host(through_profile, instance_key, tag)
    # The second host checks the certificate it fetches against the fingerprint the server logged.
    fingerprint = server_fingerprint(server)
    user_arn = f"arn:aws:iam::{server.account_id}:user/CodeDeployUser-{through_fingerprint.name}"
    key_id, secret = instance_key(server, user_arn, through_fingerprint.name)
    registered = through_fingerprint.register(
        "--iam-user-arn", user_arn, "--access-key-id", key_id, "--secret-access-key", secret,
        "--ca-fingerprint", fingerprint.lower().replace(":", ""),  # any spelling of it
        tags=[f"Key=Name,Value={tag}"],
    )  # fmt: skip
    assert "(fingerprint checked)" in registered.stdout
    certificate = server.certificate_file.read_bytes()
    for host in (through_profile, through_fingerprint):
        config = host.agent_config.read_text()
        assert f"https://127.0.0.1:{server.port}" in config
        assert f":ca_bundle: {host.conf_dir / 'opendeploy-server-ca.pem'}" in config
        assert (host.conf_dir / "opendeploy-server-ca.pem").read_bytes().startswith(certificate)
    start_hosts([through_profile, through_fingerprint])

    # The aws CLI over HTTPS: a bucket, `aws deploy push`, a deployment; boto3 for the group and the wait.
    application = unique("HttpsApp")
    bucket = unique("https-bundles").lower()
    server.aws_json("deploy", "create-application", "--application-name", application)
    made = server.aws("s3", "mb", f"s3://{bucket}")
    assert made.returncode == 0, made.stderr
    pushed = server.aws(
        "deploy", "push", "--application-name", application,
        "--s3-location", f"s3://{bucket}/sample.zip", "--source", str(SAMPLE),
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    group = create_group(server, application, tag)
    deployment_id = server.aws_json(
        "deploy", "create-deployment", "--application-name", application, "--deployment-group-name", group,
        "--s3-location", f"bucket={bucket},key=sample.zip,bundleType=zip",
    )["deploymentId"]  # fmt: skip
    info = wait_for_deployment(server, deployment_id)
    assert info["status"] == "Succeeded", info
    assert info["deploymentOverview"]["Succeeded"] == 2
    waited = server.aws("deploy", "wait", "deployment-successful", "--deployment-id", deployment_id)
    assert waited.returncode == 0, waited.stderr

    codedeploy = server.client("codedeploy")
    for host in (through_profile, through_fingerprint):
        target = codedeploy.get_deployment_target(deploymentId=deployment_id, targetId=host.name)
        events = target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]
        assert [(e["lifecycleEventName"], e["status"]) for e in events] == [
            (name, "Succeeded") for name in IN_PLACE_EVENTS
        ]
        # DownloadBundle fetched the bundle from the server's S3 API over HTTPS too.
        installed = host.path(f"{SAMPLE_DESTINATION}/install.txt").read_text()
        assert installed == (SAMPLE / "install.txt").read_text()


def test_register_refuses_a_certificate_whose_fingerprint_is_not_the_one_given(
    https_server: ServerProcess, hosts: Callable[..., Host], tmp_path: Path
) -> None:
    host = hosts(https_server)
    result = host.opendeploy(
        "register", "--instance-name", host.name, "--config-dir", str(tmp_path / "conf"),
        "--ca-fingerprint", "AB" * 32,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"fingerprint {server_fingerprint(https_server)}, not the one given" in result.stderr
    assert not (tmp_path / "conf").exists()  # nothing registered, nothing written
    names = https_server.client("codedeploy").list_on_premises_instances()["instanceNames"]
    assert host.name not in names


# Runs in a private mount namespace, so the machine's own trust store is never touched: fresh tmpfs over
# the places update-ca-certificates reads and writes, and over its hooks (they would act outside the
# namespace, e.g. on dpkg's state).
SYSTEM_TRUST_SCRIPT = """
set -e
for d in /usr/local/share/ca-certificates /etc/ssl/certs /etc/ca-certificates/update.d; do
    mount -t tmpfs -o mode=0755 tmpfs "$d"
done
"$PYTHON" -m opendeploy register "$@"
# As AWS's agent sees it: OpenSSL's default store (no SSL_CERT_FILE), and SSL_CERT_FILE naming the bundle.
env -u SSL_CERT_FILE -u SSL_CERT_DIR "$PYTHON" -c "$CHECK" default
SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt "$PYTHON" -c "$CHECK" bundle
# deregister takes the certificate out again, links and bundle included.
"$PYTHON" -m opendeploy deregister --instance-name "$2" --config-dir "$4"
env -u SSL_CERT_FILE -u SSL_CERT_DIR "$PYTHON" -c "$CHECK" after-deregister 2>/dev/null \
    || echo "after-deregister refused"
echo "links left: $(find /etc/ssl/certs -name '*opendeploy*' -o -xtype l | wc -l)"
"""
CHECK = """
import os, ssl, sys, urllib.request
context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"))
with urllib.request.urlopen(os.environ["HEALTH"], context=context) as answer:
    print(sys.argv[1], "trusted:", answer.status)
"""


def test_trust_system_wide_makes_the_systems_store_trust_the_server_until_deregistered(
    https_server: ServerProcess, tmp_path: Path
) -> None:
    require_hosts()
    if shutil.which("update-ca-certificates") is None:
        pytest.skip("needs update-ca-certificates (Debian's ca-certificates)")
    name = unique("system-trust")
    env = https_server.env | {
        "PYTHON": sys.executable,
        "CHECK": CHECK,
        "HEALTH": f"{https_server.endpoint}/health",
    }
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", SYSTEM_TRUST_SCRIPT, "trust",
         "--instance-name", name, "--config-dir", str(tmp_path / "conf"), "--trust-system-wide"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Added the server's certificate to this system's trusted certificates" in result.stdout
    assert "default trusted: 200" in result.stdout
    assert "bundle trusted: 200" in result.stdout
    assert "Removed the server's certificate from this system's trusted certificates" in result.stdout
    assert "after-deregister refused" in result.stdout
    assert "links left: 0" in result.stdout
    # Outside the namespace nothing changed.
    assert not list(Path("/usr/local/share/ca-certificates").glob("opendeploy-*"))

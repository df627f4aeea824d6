"""``opendeploy server`` and ``opendeploy init``: the profile they write is all a client needs."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

from support.server import ServerProcess, clean_environment


def test_first_start_creates_admin_key_and_profile(tmp_path):
    server = ServerProcess(tmp_path / "first")
    try:
        server.start(init=False)  # no `opendeploy init`: the server does it on its first start
        log = server.log_text()
        assert f"listening on {server.endpoint}" in log
        assert f"data directory {server.data_dir}" in log
        assert str(server.config_file) in log  # says where the profile went
        # The profile alone reaches the server, from the aws CLI ...
        result = server.aws("deploy", "list-applications")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"applications": []}
        # ... and from boto3.Session(profile_name="opendeploy") in a program that only sets the files.
        program = (
            "import boto3; s = boto3.Session(profile_name='opendeploy');"
            "print(s.client('codedeploy').meta.endpoint_url, s.client('s3').meta.endpoint_url, s.region_name)"
        )
        env = clean_environment() | {
            "AWS_CONFIG_FILE": str(server.config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_file),
        }
        out = subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.split() == [server.endpoint, server.endpoint, server.region]

        # Secrets are private: the master key and the credentials file are readable by the owner only,
        # and the secret access key is not stored in the clear.
        assert stat.S_IMODE((server.data_dir / "master.key").stat().st_mode) == 0o600
        assert stat.S_IMODE(server.credentials_file.stat().st_mode) == 0o600
        secret = server.credentials()[1]
        for path in server.data_dir.glob("opendeploy.db*"):
            assert secret.encode() not in path.read_bytes()

        # A restart keeps the key: no new administrator key, the profile is untouched.
        before = server.credentials_file.read_text()
        server.restart()
        assert server.credentials_file.read_text() == before
        assert server.log_text().count("first start: created administrator access key") == 1
        assert server.client().list_applications()["applications"] == []
    finally:
        server.stop()


def test_init_keeps_other_profiles_and_honours_aws_config_file(tmp_path):
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text("# my settings\n[default]\nregion = eu-west-1\n\n[profile work]\noutput = table\n")
    credentials.write_text("[default]\naws_access_key_id = AKIAOLD\naws_secret_access_key = old\n")
    env = clean_environment() | {
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
    }
    command = [sys.executable, "-m", "opendeploy", "init", "--data-dir", str(tmp_path / "data")]
    command += ["--region", "eu-central-1", "--endpoint-url", "http://127.0.0.1:9999"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Secret access key:" in result.stdout and "shown only this once" in result.stdout

    text = config.read_text()
    assert text.startswith("# my settings\n[default]\nregion = eu-west-1\n")
    assert "[profile work]\noutput = table" in text
    assert "[profile opendeploy]\nregion = eu-central-1" in text
    assert "endpoint_url = http://127.0.0.1:9999" in text
    assert "aws_access_key_id = AKIAOLD" in credentials.read_text()

    # Running init again replaces the profile (a new key), without duplicating its sections.
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert config.read_text().count("[profile opendeploy]") == 1
    assert credentials.read_text().count("[opendeploy]") == 1
    assert "[default]" in credentials.read_text()


def test_quota_option_is_checked(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "opendeploy", "server", "--data-dir", str(tmp_path), "--quota", "bogus=1"],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "unknown quota 'bogus'" in result.stderr


def test_first_start_never_logs_the_secret(tmp_path):
    server = ServerProcess(tmp_path / "quiet")
    try:
        server.start(init=False)
        access_key, secret = server.credentials()
        assert access_key in server.log_text()
        assert secret not in server.log_text()
    finally:
        server.stop()

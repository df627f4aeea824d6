"""The server's AWS clients follow the SDKs' standard configuration, tried against a real moto server.

Endpoints come from botocore itself: ``AWS_ENDPOINT_URL_<SERVICE_ID>`` (the service id, e.g.
``ELASTIC_LOAD_BALANCING_V2`` for ``elbv2``; the client name ``ELBV2`` is not read), then
``AWS_ENDPOINT_URL``, then the profile's ``services`` section and ``endpoint_url``. Regions come from
``AWS_REGION``, ``AWS_DEFAULT_REGION`` or the profile; a missing one is a clear error.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opendeploy.integrations import aws_clients
from support.moto import ACCESS_KEY, SECRET_KEY, MotoServer
from support.names import unique

DEAD_ENDPOINT = "http://127.0.0.1:9"  # discard port: nothing answers


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No AWS setting of this machine's; empty profile files; a fresh client cache before and after."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    aws_clients.reset()
    yield monkeypatch
    aws_clients.reset()


def _keys(env: pytest.MonkeyPatch) -> None:
    env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)


def _create_target_group(moto: MotoServer, client: Any) -> str:
    """A target group created through ``client`` (in a VPC made directly in moto, in its region)."""
    vpc = moto.client("ec2", client.meta.region_name).create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    response = client.create_target_group(Name=unique("tg"), Protocol="HTTP", Port=80, VpcId=vpc)
    return response["TargetGroups"][0]["TargetGroupArn"]


def test_global_endpoint_url_points_clients_at_moto(moto: MotoServer, env: pytest.MonkeyPatch) -> None:
    _keys(env)
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    env.setenv("AWS_ENDPOINT_URL", moto.endpoint)

    elbv2 = aws_clients.client("elbv2")

    assert elbv2.meta.endpoint_url == moto.endpoint
    arn = _create_target_group(moto, elbv2)
    assert arn.startswith("arn:aws:elasticloadbalancing:us-east-1:")
    assert moto.client("elbv2").describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]


def test_service_endpoint_url_wins_over_the_global_one(moto: MotoServer, env: pytest.MonkeyPatch) -> None:
    _keys(env)
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    env.setenv("AWS_ENDPOINT_URL", DEAD_ENDPOINT)
    env.setenv("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", moto.endpoint)

    elbv2 = aws_clients.client("elbv2")

    assert elbv2.meta.endpoint_url == moto.endpoint
    _create_target_group(moto, elbv2)
    assert aws_clients.client("elb").meta.endpoint_url == DEAD_ENDPOINT  # only ELBv2 was redirected


def test_the_client_name_is_not_an_endpoint_variable(env: pytest.MonkeyPatch) -> None:
    """botocore names the variable by service id: AWS_ENDPOINT_URL_ELBV2 is not a setting."""
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    env.setenv("AWS_ENDPOINT_URL_ELBV2", DEAD_ENDPOINT)

    assert (
        aws_clients.client("elbv2").meta.endpoint_url
        == "https://elasticloadbalancing.us-east-1.amazonaws.com"
    )


def test_a_profile_in_the_config_file_gives_keys_region_and_endpoint(
    moto: MotoServer, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text(
        "[profile stand-in]\n"
        "region = eu-west-1\n"
        f"aws_access_key_id = {ACCESS_KEY}\n"
        f"aws_secret_access_key = {SECRET_KEY}\n"
        f"endpoint_url = {DEAD_ENDPOINT}\n"
        "services = moto\n"
        "\n"
        "[services moto]\n"
        "elastic_load_balancing_v2 =\n"
        f"  endpoint_url = {moto.endpoint}\n"
    )
    env.setenv("AWS_PROFILE", "stand-in")

    elbv2 = aws_clients.client("elbv2")

    assert (elbv2.meta.region_name, elbv2.meta.endpoint_url) == ("eu-west-1", moto.endpoint)
    assert _create_target_group(moto, elbv2).startswith("arn:aws:elasticloadbalancing:eu-west-1:")
    assert aws_clients.client("elb").meta.endpoint_url == DEAD_ENDPOINT  # the profile's global one


def test_region_order_aws_region_then_default_region_then_profile(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "config").write_text("[default]\nregion = ap-south-1\n")
    assert aws_clients.client("elbv2").meta.region_name == "ap-south-1"

    env.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    aws_clients.reset()
    assert aws_clients.client("elbv2").meta.region_name == "eu-central-1"

    env.setenv("AWS_REGION", "us-west-2")
    aws_clients.reset()
    assert aws_clients.client("elbv2").meta.region_name == "us-west-2"


def test_no_region_is_a_clear_error(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(aws_clients.AwsConfigurationError, match=r"no AWS region.*AWS_REGION"):
        aws_clients.client("elbv2")


def test_a_missing_profile_is_a_clear_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("AWS_PROFILE", "nowhere")
    with pytest.raises(aws_clients.AwsConfigurationError, match="nowhere"):
        aws_clients.client("elbv2")


def test_one_client_per_service_shared_by_threads(env: pytest.MonkeyPatch) -> None:
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(aws_clients.client("elbv2"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({id(c) for c in seen}) == 1
    assert aws_clients.client("elb") is not seen[0]
    aws_clients.reset()
    assert aws_clients.client("elbv2") is not seen[0]


def test_standard_retries_and_timeouts_unless_configured(env: pytest.MonkeyPatch) -> None:
    env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    env.delenv("AWS_MAX_ATTEMPTS")
    config = aws_clients.client("elbv2").meta.config
    assert config.retries == {"mode": "standard"}
    assert (config.connect_timeout, config.read_timeout) == (5.0, 30.0)

    env.setenv("AWS_RETRY_MODE", "adaptive")
    env.setenv("AWS_MAX_ATTEMPTS", "7")
    aws_clients.reset()
    assert aws_clients.client("elbv2").meta.config.retries == {"mode": "adaptive", "total_max_attempts": 7}

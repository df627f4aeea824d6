"""A bundle download against a real ``opendeploy server`` that restarts (issue 8, item 4).

The bundle is uploaded with boto3, the server is stopped, and ``S3BundleSource`` — signed with an
instance's own key, as the agent's is — starts fetching it: while the server is down every try is
refused, and once it is back on the same port (2–3 s later) the download completes. With a budget
shorter than the outage the download fails with a message saying so; when the agent is stopping, a
retrying download is given up at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opendeploy.agent.bundle_extraction import BundleError
from opendeploy.agent.deployment_specification import DeploymentSpecification, parse_deployment_specification
from opendeploy.agent.onpremises_config import InstanceIdentity
from opendeploy.agent.retries import Abandoned
from opendeploy.agent.s3_bundle_source import S3BundleSource, create_s3_client
from support.names import unique
from support.server import ServerProcess

BODY = b"a bundle that must arrive whole\n" * 32768  # 1 MiB


@pytest.fixture(scope="module")
def uploaded(
    module_server: ServerProcess,
    tmp_path_factory: pytest.TempPathFactory,
    bucket_reader: Callable[..., tuple[str, str, str]],
) -> Iterator[tuple[ServerProcess, Any, DeploymentSpecification]]:
    """The module's server, an S3 client signed with an instance's key, and a revision in its store."""
    server = module_server
    admin = server.client("s3")
    bucket = unique("bundles").lower()
    admin.create_bucket(Bucket=bucket)
    etag = admin.put_object(Bucket=bucket, Key="app.tgz", Body=BODY)["ETag"]
    name = unique("instance")
    user_arn, key_id, secret = bucket_reader(server, name, bucket)  # no deployment grants it one here
    server.client("codedeploy").register_on_premises_instance(instanceName=name, iamUserArn=user_arn)
    client = create_s3_client(InstanceIdentity(user_arn, server.region, key_id, secret), server.endpoint)
    spec = parse_deployment_specification(
        {
            "DeploymentId": "d-RESTART01",
            "DeploymentGroupId": "dg-restart",
            "DeploymentGroupName": "Restart",
            "ApplicationName": "RestartApp",
            "Revision": {
                "RevisionType": "S3",
                "S3Revision": {"Bucket": bucket, "Key": "app.tgz", "BundleType": "tgz", "ETag": etag},
            },
        }
    )
    yield server, client, spec


def in_background(call: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    """Run ``call`` on a thread; the list receives what it raised, if anything."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, raised


def stopped(server: ServerProcess) -> ServerProcess:
    if server.running:
        server.stop()
    return server


def test_a_download_started_while_the_server_restarts_completes_once_it_is_back(
    tmp_path: Path, uploaded: tuple[ServerProcess, Any, DeploymentSpecification]
) -> None:
    server, client, spec = uploaded
    port = server.port
    stopped(server)
    source = S3BundleSource(client, retry_seconds=60, retry_cap=1)
    bundle = tmp_path / "bundle.tar"
    started = time.monotonic()

    thread, raised = in_background(lambda: source.fetch(spec, bundle))
    time.sleep(2.5)
    assert thread.is_alive() and not bundle.exists()  # still trying
    server.start()
    thread.join(60)

    assert server.port == port
    assert not thread.is_alive() and raised == []
    assert bundle.read_bytes() == BODY
    assert time.monotonic() - started >= 2.5


def test_a_download_fails_saying_so_when_the_outage_outlasts_its_retry_budget(
    tmp_path: Path, uploaded: tuple[ServerProcess, Any, DeploymentSpecification]
) -> None:
    server, client, spec = uploaded
    stopped(server)
    source = S3BundleSource(client, retry_seconds=3, retry_cap=1)
    started = time.monotonic()

    with pytest.raises(BundleError) as failed:
        source.fetch(spec, tmp_path / "bundle.tar")

    message = str(failed.value)
    assert message.startswith("cannot download the bundle s3://bundles-") and "/app.tgz: " in message
    assert "Could not connect to the endpoint URL" in message
    assert message.endswith("(still failing after 3 s of retries; :download_retry_seconds: sets how long)")
    assert 2 <= time.monotonic() - started < 10
    assert list(tmp_path.iterdir()) == []


def test_a_retrying_download_is_given_up_at_once_when_the_agent_stops(
    tmp_path: Path, uploaded: tuple[ServerProcess, Any, DeploymentSpecification]
) -> None:
    server, client, spec = uploaded
    stopped(server)
    stopping = threading.Event()
    source = S3BundleSource(client, stopping=stopping, retry_seconds=600)  # waits of up to 30 s

    thread, raised = in_background(lambda: source.fetch(spec, tmp_path / "bundle.tar"))
    time.sleep(2.0)
    stopping.set()
    asked = time.monotonic()
    thread.join(10)

    assert not thread.is_alive()
    assert time.monotonic() - asked < 1.0
    assert len(raised) == 1 and isinstance(raised[0], Abandoned), raised
    assert list(tmp_path.iterdir()) == []

"""A deployment of a zip bomb to a real agent fails at DownloadBundle, and the reason is visible through
the API (issue 8, item 8): the lifecycle event's diagnostics name the bundle, its size, the limit and the
``codedeployagent.yml`` key to change, and the host keeps no part of the unpacked archive.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

from deploying import (
    create_group,
    deploy,
    instance_targets,
    register_host,
    start_hosts,
    upload,
    wait_for_deployment,
)
from e2e_hosts import Host

from support.names import unique
from support.server import ServerProcess

MIB = 1024 * 1024


def zip_bomb(unpacked: int) -> bytes:
    """A valid revision whose one data file is ``unpacked`` bytes of zeros: a few kilobytes zipped."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("appspec.yml", "version: 0.0\nos: linux\n")
        archive.writestr("data/zeros.bin", bytes(unpacked))
    return buffer.getvalue()


def test_a_zip_bomb_fails_download_bundle_with_the_limit_in_its_diagnostics(
    module_server: ServerProcess, hosts: Callable[..., Host], instance_key: Callable[..., tuple[str, str]]
) -> None:
    server = module_server
    tag = unique("tag")
    host = hosts(server)
    register_host(host, instance_key, tag)
    start_hosts([host], archive_max_extraction_size="4MiB")
    bomb = zip_bomb(64 * MIB)
    assert len(bomb) < 256 * 1024
    location = upload(server, bomb, "bomb.zip")
    application = unique("app")
    group = create_group(server, application, tag)

    deployment_id = deploy(server, application, group, {"revisionType": "S3", "s3Location": location})
    info = wait_for_deployment(server, deployment_id, timeout=60)

    assert info["status"] == "Failed"
    target = instance_targets(server, deployment_id)[host.name]
    events: dict[str, Any] = {e["lifecycleEventName"]: e for e in target["lifecycleEvents"]}
    download = events["DownloadBundle"]
    assert download["status"] == "Failed"
    assert download["diagnostics"]["errorCode"] == "UnknownError"
    message = download["diagnostics"]["message"]
    assert message.startswith(f"s3://{location['bucket']}/bomb.zip (zip): refusing to unpack the bundle: ")
    assert "its entries declare 64.0 MiB" in message
    assert "more than the limit of 4.0 MiB (4194304 bytes)" in message
    assert ":archive_max_extraction_size: in codedeployagent.yml" in message
    # The same through the older per-instance API.
    summary = server.client("codedeploy").get_deployment_instance(
        deploymentId=deployment_id, instanceId=host.name
    )["instanceSummary"]
    same = next(e for e in summary["lifecycleEvents"] if e["lifecycleEventName"] == "DownloadBundle")
    assert same["diagnostics"]["message"] == message
    assert list(host.root_dir.rglob("deployment-archive")) == []
    assert not any(path.name == "zeros.bin" for path in host.root_dir.rglob("*"))

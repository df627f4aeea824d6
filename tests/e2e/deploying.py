"""Steps the end-to-end deployment tests share: register and start hosts, make and upload bundles,
create a deployment group for a tag, wait for a deployment, read its instances' lifecycle events.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from e2e_hosts import Host

from support.names import unique
from support.server import ServerProcess

TERMINAL = {"Succeeded", "Failed", "Stopped"}
SERVICE_ROLE = "arn:aws:iam::111122223333:role/CodeDeployServiceRole"


def register_host(host: Host, instance_key: Callable[..., tuple[str, str]], tag: str) -> None:
    """``opendeploy register`` the host with the tag ``Name=<tag>``; its identity is made in the store."""
    user_arn = f"arn:aws:iam::{host.server.account_id}:user/CodeDeployUser-{host.name}"
    key_id, secret = instance_key(host.server, user_arn, host.name)
    host.register(
        "--iam-user-arn",
        user_arn,
        "--access-key-id",
        key_id,
        "--secret-access-key",
        secret,
        tags=[f"Key=Name,Value={tag}"],
    )


def start_hosts(hosts: Iterable[Host], **configuration: Any) -> None:
    for host in hosts:
        host.configure(wait_after_error=1, **configuration)
        host.start_agent()


def bundle_bytes(source: Path, kind: str) -> bytes:
    """``source``'s contents as a ``zip``, ``tar`` or ``tgz`` bundle (modes kept, no top directory)."""
    buffer = io.BytesIO()
    paths = sorted(p for p in source.rglob("*"))
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in paths:
                archive.write(path, path.relative_to(source).as_posix())
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz" if kind == "tgz" else "w") as archive:
            for path in paths:
                archive.add(path, path.relative_to(source).as_posix(), recursive=False)
    return buffer.getvalue()


def write_revision(
    directory: Path, appspec: str, files: dict[str, str], executable: Iterable[str] = ()
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "appspec.yml").write_text(appspec)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for name in executable:
        os.chmod(directory / name, 0o755)
    return directory


def upload(server: ServerProcess, data: bytes, key: str, bucket: str | None = None) -> dict[str, str]:
    """Put a bundle into the server's store; the ``s3Location`` of the revision."""
    s3 = server.client("s3")
    bucket = bucket or unique("bundles").lower()
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    etag = s3.put_object(Bucket=bucket, Key=key, Body=data)["ETag"].strip('"')
    kind = "tgz" if key.endswith((".tgz", ".tar.gz")) else "tar" if key.endswith(".tar") else "zip"
    return {"bucket": bucket, "key": key, "bundleType": kind, "eTag": etag}


def create_group(server: ServerProcess, application: str, tag: str, **extra: Any) -> str:
    """A deployment group of ``application`` (created if needed) for the instances tagged ``Name=tag``."""
    codedeploy = server.client("codedeploy")
    with contextlib.suppress(codedeploy.exceptions.ApplicationAlreadyExistsException):
        codedeploy.create_application(applicationName=application)
    group = unique("group")
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=group,
        serviceRoleArn=SERVICE_ROLE,
        onPremisesInstanceTagFilters=[{"Key": "Name", "Value": tag, "Type": "KEY_AND_VALUE"}],
        **extra,
    )
    return group


def deploy(server: ServerProcess, application: str, group: str, revision: dict[str, Any]) -> str:
    return server.client("codedeploy").create_deployment(
        applicationName=application, deploymentGroupName=group, revision=revision
    )["deploymentId"]


def wait_for_deployment(server: ServerProcess, deployment_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """The deployment once it is Succeeded, Failed or Stopped (fails the test after ``timeout``)."""
    codedeploy = server.client("codedeploy")
    deadline = time.monotonic() + timeout
    while True:
        info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        if info["status"] in TERMINAL:
            return info
        if time.monotonic() > deadline:
            events = {
                target: event_statuses(t) for target, t in instance_targets(server, deployment_id).items()
            }
            raise AssertionError(
                f"deployment {deployment_id} still {info['status']} after {timeout}s: {info}; "
                f"events: {events}"
            )
        time.sleep(0.1)


def instance_targets(server: ServerProcess, deployment_id: str) -> dict[str, dict[str, Any]]:
    """Each instance target of the deployment (``instanceTarget``), by target id."""
    codedeploy = server.client("codedeploy")
    ids = codedeploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    found = codedeploy.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=ids)
    return {t["instanceTarget"]["targetId"]: t["instanceTarget"] for t in found["deploymentTargets"]}


def event_statuses(target: dict[str, Any]) -> dict[str, str]:
    return {event["lifecycleEventName"]: event["status"] for event in target["lifecycleEvents"]}

"""Helpers for push tests: what is in an uploaded bundle, and its registered revision."""

from __future__ import annotations

import io
import tarfile
import zipfile
from typing import Any

from support.server import ServerProcess


def bundle_names(archive_bytes: bytes, bundle_type: str) -> set[str]:
    if bundle_type == "zip":
        with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
            return set(archive.namelist())
    with tarfile.open(fileobj=io.BytesIO(archive_bytes), mode="r:*") as archive:
        return {member.name for member in archive.getmembers()}


def get_revision(server: ServerProcess, application: str, location: dict[str, Any]) -> dict[str, Any]:
    return server.client("codedeploy").get_application_revision(
        applicationName=application, revision={"revisionType": "S3", "s3Location": location}
    )

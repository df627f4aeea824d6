"""DownloadBundle from S3: the server's own bundle store, or any S3-compatible endpoint.

The bundle is fetched with boto3's S3 client, signed with the instance's own credentials, from
``:s3_endpoint_override:`` when it is set (path-style addressing, which every S3-compatible store
understands) or from AWS S3 in the instance's region. A revision's ``Version`` asks for that object
version; its ``ETag`` must match the object's (``Expected deployment artifact bundle etag X but was
actually Y`` otherwise, as AWS's agent says). The bundle streams to a temporary file that becomes
``bundle.tar`` only once complete — and, for a single-part upload, only once its MD5 matches the ETag.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from opendeploy.agent.bundle_extraction import BundleError
from opendeploy.agent.deployment_specification import DeploymentSpecification, S3Revision
from opendeploy.agent.file_copy import COPY_BUFFER
from opendeploy.agent.onpremises_config import InstanceIdentity

_SINGLE_PART_ETAG = re.compile(r"^[0-9a-f]{32}$")


def create_s3_client(
    identity: InstanceIdentity,
    endpoint: str | None,
    *,
    read_timeout: float = 80.0,
    proxy_uri: str | None = None,
    ca_bundle: str | None = None,
) -> Any:
    config = Config(
        s3={"addressing_style": "path"} if endpoint else {},
        read_timeout=read_timeout,
        connect_timeout=10,
        retries={"max_attempts": 3, "mode": "standard"},
        proxies={"http": proxy_uri, "https": proxy_uri} if proxy_uri else None,
    )
    return boto3.session.Session().client(
        "s3",
        region_name=identity.region,
        endpoint_url=endpoint or None,
        aws_access_key_id=identity.access_key_id,
        aws_secret_access_key=identity.secret_access_key,
        aws_session_token=identity.session_token,
        config=config,
        verify=ca_bundle,
    )


def _where(revision: S3Revision) -> str:
    where = f"s3://{revision.bucket}/{revision.key}"
    return f"{where} (version {revision.version})" if revision.version else where


class S3BundleSource:
    """Fetches S3 revisions; registered with ``bundle.register_fetcher`` by the agent."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def fetch(self, spec: DeploymentSpecification, bundle: Path) -> None:
        revision = spec.revision
        if not isinstance(revision, S3Revision):
            raise BundleError(f"not an S3 revision: {revision!r}")
        request: dict[str, str] = {"Bucket": revision.bucket, "Key": revision.key}
        if revision.version:
            request["VersionId"] = revision.version
        try:
            response = self.client.get_object(**request)
        except ClientError as error:
            details = error.response.get("Error", {})
            raise BundleError(
                f"cannot download the bundle {_where(revision)}: "
                f"{details.get('Code', 'Error')}: {details.get('Message', '')}".rstrip(": ")
            ) from None
        except BotoCoreError as error:
            raise BundleError(f"cannot download the bundle {_where(revision)}: {error}") from None
        actual_etag = str(response.get("ETag", "")).strip('"')
        body = response["Body"]
        try:
            if revision.etag and revision.etag != actual_etag:
                raise BundleError(
                    f"Expected deployment artifact bundle etag {revision.etag} but was actually {actual_etag}"
                )
            # With SSE-KMS or SSE-C encryption an S3 ETag is not the object's MD5, so it cannot be checked.
            encrypted = (
                response.get("ServerSideEncryption") == "aws:kms" or "SSECustomerAlgorithm" in response
            )
            self._save(body, bundle, "" if encrypted else actual_etag, revision)
        finally:
            body.close()

    @staticmethod
    def _save(body: Any, bundle: Path, etag: str, revision: S3Revision) -> None:
        """Stream the object to ``bundle``; a single-part ``etag`` (an MD5) is checked against the data."""
        md5 = hashlib.md5(usedforsecurity=False)
        fd, temporary = tempfile.mkstemp(prefix=".bundle-", dir=bundle.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                try:
                    for chunk in body.iter_chunks(COPY_BUFFER):
                        md5.update(chunk)
                        handle.write(chunk)
                except BotoCoreError as error:
                    raise BundleError(f"the download of {_where(revision)} broke off: {error}") from None
            if _SINGLE_PART_ETAG.match(etag) and md5.hexdigest() != etag:
                raise BundleError(
                    f"the bundle {_where(revision)} arrived corrupted: its MD5 is {md5.hexdigest()}, "
                    f"its ETag {etag}"
                )
            if bundle.is_symlink() or bundle.exists():
                bundle.unlink()
            os.replace(temporary, bundle)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

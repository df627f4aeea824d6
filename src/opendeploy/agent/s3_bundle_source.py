"""DownloadBundle from S3: the server's own bundle store, or any S3-compatible endpoint.

The bundle is fetched with boto3's S3 client, signed with the instance's own credentials, from
``:s3_endpoint_override:`` when it is set (path-style addressing, which every S3-compatible store
understands) or from AWS S3 in the instance's region. A revision's ``Version`` asks for that object
version; its ``ETag`` must match the object's (``Expected deployment artifact bundle etag X but was
actually Y`` otherwise, as AWS's agent says). The bundle streams to a temporary file that becomes
``bundle.tar`` only once complete — and, for a single-part upload, only once its MD5 matches the ETag.

A download that fails for a moment — the server restarting, a connection refused or reset, a timeout, a
5xx or throttling answer, a body that breaks off — starts again from the beginning, with growing waits,
for up to ``retry_seconds`` (``:download_retry_seconds:``), and is given up at once (``Abandoned``) when
the agent is stopping. A refusal (no such key, access denied, a wrong ETag) fails at once.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from opendeploy.agent.agent_config import (
    DEFAULT_DOWNLOAD_RETRY_SECONDS,
    DEFAULT_WAIT_AFTER_ERROR,
    DOWNLOAD_RETRY_KEY,
)
from opendeploy.agent.bundle_extraction import BundleError, disk_errors
from opendeploy.agent.deployment_specification import DeploymentSpecification, S3Revision
from opendeploy.agent.file_copy import COPY_BUFFER, write_all
from opendeploy.agent.onpremises_config import InstanceIdentity
from opendeploy.agent.retries import describe_error, gave_up_note, with_retries

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
        # One try per call: S3BundleSource retries whole downloads itself, within a time budget and
        # stopping when the agent stops; botocore's own retries would only add hidden waits to each try.
        retries={"max_attempts": 1, "mode": "standard"},
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
    """Fetches S3 revisions; registered with ``bundle.register_fetcher`` by the agent.

    ``stopping`` is the agent's stop signal; ``retry_seconds`` how long a failing download is tried
    again, waiting 1 s, 2 s, 4 s … up to ``retry_cap`` seconds between tries.
    """

    def __init__(
        self,
        client: Any,
        *,
        stopping: threading.Event | None = None,
        retry_seconds: float = DEFAULT_DOWNLOAD_RETRY_SECONDS,
        retry_cap: float = DEFAULT_WAIT_AFTER_ERROR,
    ) -> None:
        self.client = client
        self.stopping = stopping
        self.retry_seconds = retry_seconds
        self.retry_cap = retry_cap

    def fetch(self, spec: DeploymentSpecification, bundle: Path) -> None:
        revision = spec.revision
        if not isinstance(revision, S3Revision):
            raise BundleError(f"not an S3 revision: {revision!r}")
        try:
            with_retries(
                lambda: self._download(revision, bundle),
                what=f"the download of {_where(revision)}",
                budget=self.retry_seconds,
                cap=self.retry_cap,
                stopping=self.stopping,
            )
        except (ClientError, BotoCoreError, OSError) as error:
            raise BundleError(
                f"cannot download the bundle {_where(revision)}: {describe_error(error)}"
                f"{gave_up_note(error, self.retry_seconds, DOWNLOAD_RETRY_KEY)}"
            ) from None

    def _download(self, revision: S3Revision, bundle: Path) -> None:
        """One try: the object's whole body to ``bundle``, or an exception saying why not."""
        request: dict[str, str] = {"Bucket": revision.bucket, "Key": revision.key}
        if revision.version:
            request["VersionId"] = revision.version
        response = self.client.get_object(**request)
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
        """Stream the object to ``bundle``; a single-part ``etag`` (an MD5) is checked against the data.

        A body that breaks off raises botocore's error (a transient one: the download starts again); this
        host's disk failing (full, read-only) is a ``BundleError``, as trying again would not help.
        """
        md5 = hashlib.md5(usedforsecurity=False)
        with disk_errors(f"the bundle {_where(revision)} to {bundle}"):
            fd, temporary = tempfile.mkstemp(prefix=".bundle-", dir=bundle.parent)
        try:
            try:
                for chunk in body.iter_chunks(COPY_BUFFER):
                    md5.update(chunk)
                    with disk_errors(f"the bundle {_where(revision)} to {bundle}"):
                        write_all(fd, chunk)
            finally:
                os.close(fd)
            if _SINGLE_PART_ETAG.match(etag) and md5.hexdigest() != etag:
                raise BundleError(
                    f"the bundle {_where(revision)} arrived corrupted: its MD5 is {md5.hexdigest()}, "
                    f"its ETag {etag}"
                )
            with disk_errors(f"the bundle {_where(revision)} to {bundle}"):
                if bundle.is_symlink() or bundle.exists():
                    bundle.unlink()
                os.replace(temporary, bundle)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

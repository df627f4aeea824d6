"""Raw S3 requests signed by botocore's own S3 signer, for what boto3 will not send on its own
(a body other than the one signed, hostile paths, aws-chunked variants)."""

from __future__ import annotations

from typing import Any

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from support.server import ServerProcess


class _FixedPayload(S3SigV4Auth):
    """botocore's S3 signer with a given x-amz-content-sha256 (UNSIGNED-PAYLOAD, STREAMING-…)."""

    def __init__(self, credentials: Credentials, region: str, payload_hash: str) -> None:
        super().__init__(credentials, "s3", region)
        self._payload_hash = payload_hash

    def payload(self, request: Any) -> str:
        return self._payload_hash


def signed_headers(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    payload_hash: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[dict[str, str], AWSRequest]:
    """The headers of ``method path`` signed with the server's administrator key, and the request."""
    request = AWSRequest(method=method, url=f"{server.endpoint}{path}", data=body, headers=headers or {})
    credentials = Credentials(*server.credentials())
    if payload_hash is None:
        signer: S3SigV4Auth = S3SigV4Auth(credentials, "s3", server.region)
    else:
        request.headers["X-Amz-Content-SHA256"] = payload_hash
        signer = _FixedPayload(credentials, server.region, payload_hash)
    signer.add_auth(request)
    return dict(request.headers.items()), request

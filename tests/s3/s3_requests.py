"""Raw S3 requests signed by botocore's own S3 signer, for what boto3 will not send on its own
(a body other than the one signed, hostile paths, aws-chunked variants)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
from botocore.auth import EMPTY_SHA256_HASH, S3SigV4Auth
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


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def aws_chunked_put(
    server: ServerProcess,
    path: str,
    chunks: list[bytes],
    *,
    trailer: tuple[str, str] | None = None,
    corrupt_chunk: int | None = None,
) -> httpx.Response:
    """PUT ``chunks`` as a signed ``aws-chunked`` body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or
    …-TRAILER with a signed ``trailer`` header), as SDKs that sign every chunk send it.

    ``corrupt_chunk`` sends that chunk with a wrong signature.
    """
    payload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    decoded = sum(len(chunk) for chunk in chunks)
    every = [*chunks, b""]

    def encode(signatures: list[str], trailer_signature: str) -> bytes:
        body = b"".join(
            b"%x;chunk-signature=%s\r\n%s%s" % (len(c), s.encode(), c, b"\r\n" if c else b"")
            for c, s in zip(every, signatures, strict=True)
        )
        if trailer:
            body += f"{trailer[0]}:{trailer[1]}\r\nx-amz-trailer-signature:{trailer_signature}\r\n".encode()
        return body + b"\r\n"

    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(decoded),
        "Content-Length": str(len(encode(["0" * 64] * len(every), "0" * 64))),
    }
    if trailer:
        headers["X-Amz-Trailer"] = trailer[0]
    signed, _ = signed_headers(server, "PUT", path, payload_hash=payload, headers=headers)
    seed = signed["Authorization"].rsplit("Signature=", 1)[1]
    timestamp = signed["X-Amz-Date"]
    scope = f"{timestamp[:8]}/{server.region}/s3/aws4_request"
    key = f"AWS4{server.credentials()[1]}".encode()
    for part in (timestamp[:8], server.region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    previous, signatures = seed, []
    for index, chunk in enumerate(every):
        text = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                timestamp,
                scope,
                previous,
                EMPTY_SHA256_HASH,
                hashlib.sha256(chunk).hexdigest(),
            ]
        )
        previous = _hmac_hex(key, text)
        signatures.append("f" * 64 if index == corrupt_chunk else previous)
    trailer_signature = ""
    if trailer:
        canonical = f"{trailer[0]}:{trailer[1]}\n".encode()
        text = "\n".join(
            ["AWS4-HMAC-SHA256-TRAILER", timestamp, scope, previous, hashlib.sha256(canonical).hexdigest()]
        )
        trailer_signature = _hmac_hex(key, text)
    return httpx.put(
        f"{server.endpoint}{path}", headers=signed, content=encode(signatures, trailer_signature)
    )

"""SigV4 variants the S3 API needs (presigned URLs, unsigned and streaming payloads), checked directly
against ``api.sigv4`` with requests botocore itself signs; the S3 API that uses them comes later."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from types import SimpleNamespace
from urllib.parse import urlsplit

import boto3
import botocore.auth
import botocore.config
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from opendeploy.api import sigv4
from opendeploy.api.errors import ApiError

KEY_ID, SECRET = "AKIAEXAMPLEEXAMPLE00", "secret/example+key"
REGION = "us-east-1"


def lookup(key_id: str):
    return SimpleNamespace(secret_access_key=SECRET) if key_id == KEY_ID else None


def incoming(request: AWSRequest, body: bytes | None) -> sigv4.IncomingRequest:
    url = urlsplit(request.url)
    headers = [(k, v) for k, v in request.headers.items()]
    headers.append(("host", url.netloc))
    return sigv4.IncomingRequest(request.method, url.path, url.query, headers, body)


def verify_s3(request: sigv4.IncomingRequest, **kwargs) -> sigv4.VerifiedSignature:
    return sigv4.verify(request, signing_name="s3", lookup=lookup, s3=True, codes=sigv4.S3_ERRORS, **kwargs)


def presigned_url(key: str, expires: int = 60) -> str:
    s3 = boto3.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name=REGION).client(
        "s3",
        endpoint_url="http://127.0.0.1:8480",
        config=botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": "bundles", "Key": key}, ExpiresIn=expires
    )


def from_url(url: str) -> sigv4.IncomingRequest:
    parts = urlsplit(url)
    return sigv4.IncomingRequest("GET", parts.path, parts.query, [("host", parts.netloc)], None)


def test_presigned_url_with_awkward_key():
    request = from_url(presigned_url("releases/app v1+final (2).zip"))
    verified = verify_s3(request)
    assert verified.presigned and verified.access_key_id == KEY_ID


def test_presigned_url_tampered_or_expired():
    url = presigned_url("a.zip", expires=60)
    with pytest.raises(ApiError) as raised:
        verify_s3(from_url(url.replace("a.zip", "b.zip")))
    assert raised.value.code == "SignatureDoesNotMatch" and raised.value.status == 403
    with pytest.raises(ApiError, match="expired") as raised:
        verify_s3(from_url(url), now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120))
    # A presigned URL is not accepted by a service that only takes header signatures.
    with pytest.raises(ApiError) as raised:
        sigv4.verify(from_url(url), signing_name="s3", lookup=lookup)
    assert raised.value.code == "MissingAuthenticationTokenException"


def signed_put(body: bytes, *, unsigned_payload: bool = False) -> AWSRequest:
    request = AWSRequest(method="PUT", url="http://127.0.0.1:8480/bundles/app.zip", data=body)
    if unsigned_payload:
        # What SDKs send over HTTPS when payload signing is off: the header takes the hash's place.
        request.headers["X-Amz-Content-SHA256"] = sigv4.UNSIGNED_PAYLOAD
        botocore.auth.SigV4Auth(Credentials(KEY_ID, SECRET), "s3", REGION).add_auth(request)
    else:
        botocore.auth.S3SigV4Auth(Credentials(KEY_ID, SECRET), "s3", REGION).add_auth(request)
    return request


def test_payload_hash_checked():
    request = signed_put(b"bundle bytes")
    verified = verify_s3(incoming(request, b"bundle bytes"))
    assert verified.payload_hash == hashlib.sha256(b"bundle bytes").hexdigest()
    with pytest.raises(ApiError) as raised:
        verify_s3(incoming(request, b"other bytes"))
    assert raised.value.code == "XAmzContentSHA256Mismatch"


def test_unsigned_payload_only_for_s3():
    request = signed_put(b"data", unsigned_payload=True)
    assert verify_s3(incoming(request, b"anything")).payload_hash == sigv4.UNSIGNED_PAYLOAD
    with pytest.raises(ApiError):
        sigv4.verify(incoming(request, b"anything"), signing_name="s3", lookup=lookup)


def _chunk_signature(key: bytes, timestamp: str, scope: str, previous: str, data: bytes) -> str:
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256-PAYLOAD",
            timestamp,
            scope,
            previous,
            hashlib.sha256(b"").hexdigest(),
            hashlib.sha256(data).hexdigest(),
        ]
    )
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def test_streaming_signed_chunks():
    request = AWSRequest(
        method="PUT",
        url="http://127.0.0.1:8480/bundles/big.tar",
        headers={"X-Amz-Content-SHA256": sigv4.STREAMING_SIGNED, "Content-Encoding": "aws-chunked"},
    )
    botocore.auth.SigV4Auth(Credentials(KEY_ID, SECRET), "s3", REGION).add_auth(request)
    verified = verify_s3(incoming(request, None))
    key = sigv4.signing_key(SECRET, verified.timestamp[:8], REGION, "s3")
    chunks, body, previous = [b"a" * 70, b"b" * 13, b""], b"", verified.signature
    for data in chunks:
        previous = _chunk_signature(key, verified.timestamp, verified.scope, previous, data)
        body += f"{len(data):x};chunk-signature={previous}\r\n".encode() + data + b"\r\n"
    data, trailers = sigv4.decode_aws_chunked(body, verified)
    assert data == b"a" * 70 + b"b" * 13 and trailers == {}

    tampered = body.replace(b"b" * 13, b"c" * 13)
    with pytest.raises(sigv4.ChunkedPayloadError, match="signature"):
        sigv4.decode_aws_chunked(tampered, verified)
    with pytest.raises(sigv4.ChunkedPayloadError):
        sigv4.decode_aws_chunked(body[:40], verified)

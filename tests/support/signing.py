"""Hand-made signed requests, for tests of what the server does with unusual or hostile requests.

``send_json(server, "ListApplications", {...})`` signs an awsJson request the way botocore does and
sends it with httpx; keyword arguments change the credentials, the signing time, the scope or the
body after signing.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from unittest import mock

import botocore.auth
import httpx
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TARGET_PREFIX = "CodeDeploy_20141006"


def sign(
    request: AWSRequest,
    *,
    access_key: str,
    secret_key: str,
    service: str,
    region: str,
    at: dt.datetime | None = None,
) -> AWSRequest:
    """Sign ``request`` in place with botocore's SigV4 signer, as if at time ``at`` (UTC)."""
    signer = botocore.auth.SigV4Auth(Credentials(access_key, secret_key), service, region)
    if at is None:
        signer.add_auth(request)
    else:
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at.replace(tzinfo=None)):
            signer.add_auth(request)
    return request


def send_json(
    server: Any,
    operation: str,
    params: dict[str, Any] | None = None,
    *,
    body: bytes | None = None,
    target: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    service: str = "codedeploy",
    region: str | None = None,
    at: dt.datetime | None = None,
    tamper_body: bytes | None = None,
    signed: bool = True,
) -> httpx.Response:
    """POST an awsJson request for ``operation`` to ``server`` and return the raw response."""
    key, secret = server.credentials()
    data = body if body is not None else json.dumps(params or {}).encode()
    request = AWSRequest(
        method="POST",
        url=f"{server.endpoint}/",
        data=data,
        headers={
            "X-Amz-Target": target or f"{TARGET_PREFIX}.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    if signed:
        sign(
            request,
            access_key=access_key or key,
            secret_key=secret_key or secret,
            service=service,
            region=region or server.region,
            at=at,
        )
    headers = dict(request.headers.items())
    return httpx.post(f"{server.endpoint}/", content=tamper_body or data, headers=headers, timeout=30)

"""The one place the server creates clients for AWS services (ELB, ELBv2, CloudWatch, Lambda, ECS, …).

``client("elbv2")`` returns a botocore client configured the way every AWS SDK is, and nothing else:

- **profile**: ``AWS_PROFILE`` (in ``AWS_CONFIG_FILE`` / ``AWS_SHARED_CREDENTIALS_FILE``);
- **credentials**: botocore's default chain (environment, profile files, SSO, web identity, container
  and instance metadata);
- **region**: ``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else the profile's ``region`` (botocore itself
  reads only the last two; ``AWS_REGION`` is the name the other SDKs and the AWS CLI v2 read first). No
  region at all is an :class:`AwsConfigurationError`;
- **endpoint**: botocore's own resolution of the SDKs' "service-specific endpoints" setting, in this
  order: ``AWS_ENDPOINT_URL_<SERVICE_ID>``, ``AWS_ENDPOINT_URL``, the profile's ``services`` section,
  the profile's ``endpoint_url``; ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`` turns them all off.
  ``<SERVICE_ID>`` is the service's *service id* in upper case with spaces as underscores, not the
  client name: ``AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2`` for ``elbv2``,
  ``AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING`` for ``elb``, ``AWS_ENDPOINT_URL_CLOUDWATCH``,
  ``AWS_ENDPOINT_URL_LAMBDA``, ``AWS_ENDPOINT_URL_ECS`` (botocore ≥ 1.31; ``AWS_ENDPOINT_URL_ELBV2`` is
  *not* read). This is how tests point the server at moto; there is no opendeploy flag for it;
- **retries**: the profile's or ``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS``, else ``standard`` mode (3
  attempts, with backoff and a retry quota); **timeouts**: 5 s to connect, 30 s to read.

A client is created once per service and process (botocore clients are thread-safe; creating them is
not, and costs tens of milliseconds) and kept; :func:`reset` forgets them, for tests that change the
environment. A forked child creates its own.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.session

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
MAX_POOL_CONNECTIONS = 20  # engine workers that may call one service at once

_lock = threading.Lock()
_session: boto3.Session | None = None
_settings: botocore.session.Session | None = None  # the same session, seen through botocore
_clients: dict[str, Any] = {}
_pid: int | None = None


class AwsConfigurationError(Exception):
    """The SDK configuration does not allow a client: no region, or a profile that does not exist."""


def client(service_name: str) -> Any:
    """The process's botocore client for ``service_name`` (``"elbv2"``, ``"elb"``, ``"cloudwatch"``…)."""
    global _session, _settings, _pid
    with _lock:
        if _pid != os.getpid():
            _session, _settings, _pid = None, None, os.getpid()
            _clients.clear()
        cached = _clients.get(service_name)
        if cached is not None:
            return cached
        try:
            if _session is None or _settings is None:
                _settings = botocore.session.Session()
                _session = boto3.Session(botocore_session=_settings)
            created = _session.client(
                service_name, region_name=_region(_settings), config=_client_config(_settings)
            )
        except botocore.exceptions.ProfileNotFound as error:
            raise AwsConfigurationError(f"AWS profile: {error}") from error
        except botocore.exceptions.UnknownServiceError as error:
            raise AwsConfigurationError(str(error)) from error
        _clients[service_name] = created
        return created


def reset() -> None:
    """Forget the session and every client: the next :func:`client` reads the environment again."""
    global _session, _settings
    with _lock:
        _session, _settings = None, None
        _clients.clear()


def _region(settings: botocore.session.Session) -> str:
    region = os.environ.get("AWS_REGION") or settings.get_config_variable("region")
    if not region:
        profile = settings.get_config_variable("profile") or "default"
        raise AwsConfigurationError(
            "no AWS region configured for the server's AWS clients: set AWS_REGION (or AWS_DEFAULT_REGION), "
            f"or 'region' in the AWS profile '{profile}'"
        )
    return region


def _client_config(settings: botocore.session.Session) -> botocore.config.Config:
    # The retry mode the user configured wins; otherwise standard (older botocore releases default to
    # legacy). AWS_MAX_ATTEMPTS / max_attempts still apply: botocore reads them when the retries
    # setting names no attempt count.
    configured_mode = os.environ.get("AWS_RETRY_MODE") or settings.get_scoped_config().get("retry_mode")
    return botocore.config.Config(
        retries={"mode": configured_mode or "standard"},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )

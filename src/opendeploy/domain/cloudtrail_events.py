"""CloudTrail event records: what one API request to the server becomes in its audit trail.

The API layer describes a finished request as an ``ApiCall`` (who signed it, which operation, its
parameters and answer or error); ``trail_event(call)`` turns that into a ``TrailEvent``: the record in
CloudTrail's own format (the fields of AWS's "CloudTrail record contents" and "userIdentity element"
pages, as the guide's example CodeDeploy event shows them) plus the values LookupEvents filters on.

What the record holds, as CloudTrail does:

- ``userIdentity`` from the signer's ARN: ``Root`` (``…:root``), ``IAMUser`` (``…:user/<path>/<name>``),
  ``AssumedRole`` (``arn:aws:sts::…:assumed-role/<role>/<session>``, with its ``sessionIssuer``);
  ``Unknown`` when a request named a key the server could not tie to anyone, and the anonymous
  ``AWSAccount`` when it was not signed at all;
- ``readOnly``: from the operation's name unless the caller says (``Get``/``List``/``BatchGet``/``Head``/
  ``Describe``/``Lookup`` read); ``responseElements`` only for a write that succeeded (``null`` for reads
  and failures); ``errorCode``/``errorMessage`` for a refused or failed request;
- ``eventCategory``: ``Data`` for the S3 operations on objects (CloudTrail's data events), else
  ``Management``.

Secrets never reach the record: any member whose name says it is a secret, a password, a private key,
a session or access token or a signature (``SecretAccessKey`` in CreateAccessKey's answer, a GitHub
token, ``x-amz-security-token``) is replaced by ``HIDDEN_DUE_TO_SECURITY_REASONS``, at any depth, in
parameters and answers alike; pagination tokens (``nextToken``), token *names* and policy documents are
kept. Request bodies (S3 object contents) are never recorded: a ``Body`` member is dropped, and any other
binary value is replaced by its size. A parameters or answer object longer than ``MAX_ELEMENT_CHARS`` as
JSON is replaced by ``{"omitted": true, "originalSize": n}`` (opendeploy's rule, so one huge request
cannot bloat the trail).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from opendeploy.domain.arns import application_arn, deployment_config_arn, deployment_group_arn
from opendeploy.domain.ids import new_request_id
from opendeploy.domain.permissions import is_read_only
from opendeploy.domain.timestamps import iso_second

EVENT_VERSION = "1.09"
EVENT_TYPE = "AwsApiCall"
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
MANAGEMENT = "Management"
DATA = "Data"
MAX_ELEMENT_CHARS = 100_000


# S3 operations on objects (and listings of a bucket's objects): CloudTrail's S3 data events.
S3_DATA_OPERATIONS = frozenset(
    {
        "GetObject",
        "HeadObject",
        "PutObject",
        "CopyObject",
        "DeleteObject",
        "DeleteObjects",
        "GetObjectAcl",
        "PutObjectAcl",
        "GetObjectAttributes",
        "GetObjectTagging",
        "PutObjectTagging",
        "DeleteObjectTagging",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "ListParts",
        "ListObjects",
        "ListObjectsV2",
        "ListObjectVersions",
    }
)

# Member names (lower case, without "-" and "_") whose values are secrets.
_SECRET_NAMES = frozenset(
    {
        "secret",
        "secretkey",
        "secretaccesskey",
        "sessiontoken",
        "securitytoken",
        "xamzsecuritytoken",
        "token",
        "accesstoken",
        "refreshtoken",
        "oauthtoken",
        "githubtoken",
        "apitoken",
        "authtoken",
        "password",
        "privatekey",
        "authorization",
        "signature",
        "xamzsignature",
        "ssecustomerkey",
        "xamzserversideencryptioncustomerkey",
        "xamzcopysourceserversideencryptioncustomerkey",
    }
)
_SECRET_SUFFIXES = ("password", "secret", "secretkey", "secretaccesskey", "privatekey", "sessiontoken")
_BODY_NAMES = frozenset({"body"})


@dataclass(frozen=True)
class Resource:
    """A resource a request names: CloudTrail's type (``AWS::CodeDeploy::Application``) and name."""

    type: str
    name: str
    arn: str | None = None


@dataclass(frozen=True)
class Caller:
    """Who signed the request: the principal's ARN (``None`` when no principal could be told), the
    access key that signed it, and the principal's unique id (``AIDA…``) when the server knows it."""

    arn: str | None
    access_key_id: str | None = None
    principal_id: str | None = None


@dataclass(frozen=True)
class TlsDetails:
    tls_version: str
    cipher_suite: str
    host: str | None = None  # the Host header the client sent


@dataclass(frozen=True)
class ApiCall:
    """One finished API request, as the API layer saw it."""

    service: str  # the SigV4 signing name: "codedeploy", "s3", "iam", "sts", "cloudtrail", …
    operation: str  # "CreateDeployment", "GetObject", "CreateAccessKey"
    time: float  # epoch seconds, when the request was answered
    region: str
    account_id: str  # the server's account: the event's recipientAccountId
    request_id: str
    caller: Caller
    source_ip: str = ""
    user_agent: str = ""
    request_parameters: Mapping[str, Any] | None = None  # in wire form; never the body of an object
    response_elements: Mapping[str, Any] | None = None  # the answer; kept for successful writes only
    error_code: str | None = None  # "AccessDeniedException", "ApplicationDoesNotExistException"
    error_message: str | None = None
    read_only: bool | None = None  # None: from the operation's name
    data_event: bool | None = None  # None: S3 operations on objects are data events
    resources: Sequence[Resource] | None = None  # None: from the request parameters
    tls: TlsDetails | None = None
    additional_event_data: Mapping[str, Any] | None = None
    event_id: str | None = None  # None: a new UUID


@dataclass(frozen=True)
class TrailEvent:
    """A CloudTrail record (``record``, and ``json``: the same as compact JSON text, as stored and as
    LookupEvents' ``CloudTrailEvent`` returns it) with the values LookupEvents filters on."""

    event_id: str
    event_time: float
    event_name: str
    event_source: str
    read_only: bool
    category: str
    username: str | None
    access_key_id: str | None
    error_code: str | None
    resources: tuple[Resource, ...]
    record: dict[str, Any] = field(repr=False)
    json: str = field(repr=False)


def event_source(service: str) -> str:
    """CloudTrail's ``eventSource`` for a signing name: ``codedeploy`` -> ``codedeploy.amazonaws.com``."""
    return f"{service}.amazonaws.com"


def is_data_event(service: str, operation: str) -> bool:
    return service == "s3" and operation in S3_DATA_OPERATIONS


# --- who -----------------------------------------------------------------------------------------


def user_identity(caller: Caller) -> tuple[dict[str, Any], str | None]:
    """CloudTrail's ``userIdentity`` for ``caller`` and the user name LookupEvents' ``Username`` matches
    (the user's name, ``root``, or an assumed role's session name)."""
    key = {"accessKeyId": caller.access_key_id} if caller.access_key_id else {}
    if caller.arn is None:
        if caller.access_key_id:  # a key the server could not tie to a principal
            return {"type": "Unknown", "principalId": "", **key}, None
        return {"type": "AWSAccount", "principalId": "", "accountId": "anonymous"}, None
    parts = caller.arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return {"type": "Unknown", "principalId": caller.principal_id or "", "arn": caller.arn, **key}, None
    service, account, resource = parts[2], parts[4], parts[5]
    principal = {"principalId": caller.principal_id} if caller.principal_id else {}
    if service == "iam" and resource == "root":
        identity = {"type": "Root", "principalId": caller.principal_id or account, "arn": caller.arn}
        return {**identity, "accountId": account, **key}, "root"
    if service == "iam" and resource.startswith("user/"):
        name = resource.rsplit("/", 1)[1]
        identity = {"type": "IAMUser", **principal, "arn": caller.arn, "accountId": account, **key}
        return {**identity, "userName": name}, name
    if service == "sts" and resource.startswith("assumed-role/") and resource.count("/") >= 2:
        _, role, session = resource.split("/", 2)
        issuer = {
            "type": "Role",
            **({"principalId": caller.principal_id.split(":", 1)[0]} if caller.principal_id else {}),
            "arn": f"arn:{parts[1]}:iam::{account}:role/{role}",
            "accountId": account,
            "userName": role,
        }
        identity = {"type": "AssumedRole", **principal, "arn": caller.arn, "accountId": account, **key}
        return {**identity, "sessionContext": {"sessionIssuer": issuer}}, session
    return {"type": "Unknown", **principal, "arn": caller.arn, "accountId": account, **key}, None


# --- what ----------------------------------------------------------------------------------------


def _normalized(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def is_secret_name(name: str) -> bool:
    """Whether a member called ``name`` holds a secret (``SecretAccessKey``, ``x-amz-security-token``)."""
    normalized = _normalized(name)
    return normalized in _SECRET_NAMES or normalized.endswith(_SECRET_SUFFIXES)


_KEEP, _HIDE, _DROP = 0, 1, 2


@functools.lru_cache(maxsize=4096)  # member names repeat from request to request
def _treatment(name: str) -> int:
    if _normalized(name) in _BODY_NAMES:
        return _DROP
    return _HIDE if is_secret_name(name) else _KEEP


def redact(value: Any) -> Any:
    """``value`` with every secret member hidden, bodies dropped and binary values replaced by their
    size (see the module docstring); a new object, ``value`` is left as it was."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict | Mapping):
        redacted: dict[str, Any] = {}
        for name, member in value.items():
            name = str(name)
            treatment = _treatment(name)
            if treatment == _DROP:
                continue
            redacted[name] = HIDDEN if treatment == _HIDE and member is not None else redact(member)
        return redacted
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"({len(value)} bytes omitted)"
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "timestamp"):  # datetime
        return iso_second(value.timestamp())
    if hasattr(value, "as_integer_ratio"):  # Decimal
        return float(value)
    return str(value)


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


def _dumps(value: Any) -> str:
    # orjson: a record is written for every request, and the standard library took half its cost.
    try:
        return orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits, which only the standard library writes
        return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def _capped(value: Any) -> Any:
    if value is None:
        return None
    size = len(_dumps(value))
    return {"omitted": True, "originalSize": size} if size > MAX_ELEMENT_CHARS else value


def resources_from_parameters(
    service: str, params: Mapping[str, Any] | None, region: str, account_id: str
) -> list[Resource]:
    """The resources a request's parameters name (for LookupEvents' ResourceType/ResourceName):
    CodeDeploy applications, deployment groups and configurations, S3 buckets and objects, IAM users."""
    if not params:
        return []
    found: list[Resource] = []

    def text(name: str) -> str | None:
        value = params.get(name)
        return value if isinstance(value, str) and value else None

    if service == "codedeploy":
        application = text("applicationName")
        group = text("deploymentGroupName") or text("currentDeploymentGroupName")
        config = text("deploymentConfigName")
        if application:
            found.append(
                Resource(
                    "AWS::CodeDeploy::Application",
                    application,
                    application_arn(region, account_id, application),
                )
            )
        if application and group:
            found.append(
                Resource(
                    "AWS::CodeDeploy::DeploymentGroup",
                    group,
                    deployment_group_arn(region, account_id, application, group),
                )
            )
        if config:
            found.append(
                Resource(
                    "AWS::CodeDeploy::DeploymentConfig",
                    config,
                    deployment_config_arn(region, account_id, config),
                )
            )
    elif service == "s3":
        bucket, key = text("bucketName"), text("key")
        if bucket:
            found.append(Resource("AWS::S3::Bucket", bucket, f"arn:aws:s3:::{bucket}"))
        if bucket and key:
            found.append(Resource("AWS::S3::Object", f"{bucket}/{key}", f"arn:aws:s3:::{bucket}/{key}"))
    elif service == "iam":
        user = text("UserName") or text("userName")
        if user:
            found.append(Resource("AWS::IAM::User", user))
    return found


# --- the record ----------------------------------------------------------------------------------


def is_read(call: ApiCall) -> bool:
    """Whether ``call`` is on record as a read (its event's ``readOnly``)."""
    return is_read_only(call.operation) if call.read_only is None else call.read_only


def trail_event(call: ApiCall) -> TrailEvent:
    """The CloudTrail record of ``call`` (see the module docstring)."""
    identity, username = user_identity(call.caller)
    read_only = is_read(call)
    data = is_data_event(call.service, call.operation) if call.data_event is None else call.data_event
    category = DATA if data else MANAGEMENT
    event_id = call.event_id or new_request_id()
    resources = (
        resources_from_parameters(call.service, call.request_parameters, call.region, call.account_id)
        if call.resources is None
        else list(call.resources)
    )
    failed = call.error_code is not None
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": identity,
        "eventTime": iso_second(call.time),
        "eventSource": event_source(call.service),
        "eventName": call.operation,
        "awsRegion": call.region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent,
    }
    if failed:
        record["errorCode"] = call.error_code
        record["errorMessage"] = call.error_message or ""
    parameters = None if call.request_parameters is None else redact(call.request_parameters)
    answer = None if read_only or failed or call.response_elements is None else redact(call.response_elements)
    record["requestParameters"] = parameters
    record["responseElements"] = answer
    if call.additional_event_data:
        record["additionalEventData"] = redact(call.additional_event_data)
    record["requestID"] = call.request_id
    record["eventID"] = event_id
    record["readOnly"] = read_only
    with_arns = [
        {"accountId": call.account_id, "type": resource.type, "ARN": resource.arn}
        for resource in resources
        if resource.arn
    ]
    if with_arns:
        record["resources"] = with_arns
    record["eventType"] = EVENT_TYPE
    record["managementEvent"] = not data
    record["recipientAccountId"] = call.account_id
    record["eventCategory"] = category
    if call.tls is not None:
        record["tlsDetails"] = {
            "tlsVersion": call.tls.tls_version,
            "cipherSuite": call.tls.cipher_suite,
            **({"clientProvidedHostHeader": call.tls.host} if call.tls.host else {}),
        }
    text = _dumps(record)
    if len(text) > MAX_ELEMENT_CHARS:  # rare: measure the two large members only then
        record["requestParameters"] = _capped(parameters)
        record["responseElements"] = _capped(answer)
        text = _dumps(record)
    return TrailEvent(
        event_id=event_id,
        event_time=call.time,
        event_name=call.operation,
        event_source=record["eventSource"],
        read_only=read_only,
        category=category,
        username=username,
        access_key_id=call.caller.access_key_id,
        error_code=call.error_code,
        resources=tuple(resources),
        record=record,
        json=text,
    )

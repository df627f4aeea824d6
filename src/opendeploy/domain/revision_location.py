"""Revision locations: where an application revision is, checked for its compute platform, and the
identity under which it is registered.

A revision is an archive in S3 (``bucket``, ``key``, ``bundleType``, optional ``version`` and ``eTag``),
a GitHub commit (``repository`` ``owner/repo``, full ``commitId``), or — for Lambda and ECS — the AppSpec
itself as a string (guide L17210–17237, L18026–18111, L18806–18838). Two locations are the same revision
when every member given matches: a revision registered with a version or an eTag is found only with
them (guide L18001–18003).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

SERVER_BUNDLE_TYPES = ("tar", "tgz", "zip")
APPSPEC_BUNDLE_TYPES = ("YAML", "JSON")
_REPOSITORY = re.compile(r"^[^/\s]+/[^/\s]+$")
_COMMIT_ID = re.compile(r"^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")
_SUBSTRUCTURES = {
    "S3": "s3Location",
    "GitHub": "gitHubLocation",
    "String": "string",
    "AppSpecContent": "appSpecContent",
}


class InvalidRevision(ValueError):
    """The location is malformed or does not suit the compute platform; the message says why."""


def normalize(location: Mapping[str, Any], compute_platform: str) -> dict[str, Any]:
    """The location in canonical wire form (only the members its type uses, AppSpec text with its
    SHA-256), or ``InvalidRevision``."""
    revision_type = location.get("revisionType")
    if revision_type not in _SUBSTRUCTURES:
        raise InvalidRevision(
            f"revisionType must be one of {', '.join(_SUBSTRUCTURES)}, got {revision_type!r}"
        )
    member = _SUBSTRUCTURES[revision_type]
    extra = [m for m in _SUBSTRUCTURES.values() if m != member and location.get(m) is not None]
    if extra:
        raise InvalidRevision(f"A revision of type {revision_type} takes {member}, not {', '.join(extra)}")
    details = location.get(member)
    if not details:
        raise InvalidRevision(f"A revision of type {revision_type} needs {member}")
    if revision_type == "S3":
        return {"revisionType": "S3", "s3Location": _s3(details, compute_platform)}
    if revision_type == "GitHub":
        if compute_platform != "Server":
            raise InvalidRevision(
                f"GitHub revisions are for the Server compute platform, not {compute_platform}"
            )
        return {"revisionType": "GitHub", "gitHubLocation": _github(details)}
    allowed = ("Lambda",) if revision_type == "String" else ("Lambda", "ECS")
    if compute_platform not in allowed:
        raise InvalidRevision(
            f"{revision_type} revisions (the AppSpec as text) are for the {' and '.join(allowed)} compute "
            f"platform{'s' if len(allowed) > 1 else ''}, not {compute_platform}"
        )
    return {"revisionType": revision_type, member: _content(details, member)}


def _s3(details: Mapping[str, Any], compute_platform: str) -> dict[str, Any]:
    bucket, key, bundle_type = details.get("bucket"), details.get("key"), details.get("bundleType")
    if not bucket:
        raise InvalidRevision("s3Location needs a bucket")
    if not key:
        raise InvalidRevision("s3Location needs a key")
    allowed = SERVER_BUNDLE_TYPES if compute_platform == "Server" else APPSPEC_BUNDLE_TYPES
    if bundle_type not in allowed:
        raise InvalidRevision(
            f"s3Location.bundleType for the {compute_platform} compute platform must be one of "
            f"{', '.join(allowed)}, got {bundle_type!r}"
        )
    result = {"bucket": bucket, "key": key, "bundleType": bundle_type}
    for optional in ("version", "eTag"):
        if details.get(optional):
            result[optional] = details[optional]
    return result


def _github(details: Mapping[str, Any]) -> dict[str, Any]:
    repository, commit_id = details.get("repository"), details.get("commitId")
    if not repository or not _REPOSITORY.match(repository):
        raise InvalidRevision(f"gitHubLocation.repository must be owner/repository, got {repository!r}")
    if not commit_id or not _COMMIT_ID.match(commit_id):
        raise InvalidRevision(
            f"gitHubLocation.commitId must be a full commit id (40 hexadecimal digits), got {commit_id!r}"
        )
    return {"repository": repository, "commitId": commit_id}


def _content(details: Mapping[str, Any], member: str) -> dict[str, Any]:
    content = details.get("content")
    if not content:
        raise InvalidRevision(f"{member}.content is required: the AppSpec as YAML or JSON text")
    digest = hashlib.sha256(content.encode()).hexdigest()
    given = details.get("sha256")
    if given and given.lower() != digest:
        raise InvalidRevision(f"{member}.sha256 {given} is not the SHA-256 of the content ({digest})")
    return {"content": content, "sha256": digest}


def identity(normalized: Mapping[str, Any]) -> str:
    """The key a normalized location is registered under (hex SHA-256; AppSpec text by its digest)."""
    revision_type = normalized["revisionType"]
    details = dict(normalized[_SUBSTRUCTURES[revision_type]])
    if revision_type in ("String", "AppSpecContent"):
        details = {"sha256": details["sha256"]}
    canonical = json.dumps([revision_type, details], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()

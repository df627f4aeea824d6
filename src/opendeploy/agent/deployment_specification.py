"""The deployment specification: what the control plane tells a host about the deployment it is part of.

This module reads the specification's JSON document (agent wire protocol §1.6) into a typed object,
with the AWS agent's validation messages. The signed ``PKCS7/JSON`` envelope that carries it over the
wire is a separate concern: whoever unwraps the envelope passes the JSON text to
``parse_deployment_specification``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opendeploy.appspec.model import FileExistsBehavior


class DeploymentSpecificationError(ValueError):
    """The specification is malformed; the message says what is missing or wrong."""


class RevisionType(StrEnum):
    S3 = "S3"
    GITHUB = "GitHub"
    LOCAL_FILE = "Local File"
    LOCAL_DIRECTORY = "Local Directory"


class BundleType(StrEnum):
    TAR = "tar"
    TGZ = "tgz"
    ZIP = "zip"
    DIRECTORY = "directory"


@dataclass(frozen=True)
class S3Revision:
    bucket: str
    key: str
    bundle_type: BundleType
    version: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class GitHubRevision:
    account: str
    repository: str
    commit_id: str
    bundle_type: BundleType | None = None
    anonymous: bool = True
    oauth_token: str | None = None


@dataclass(frozen=True)
class LocalRevision:
    location: str
    bundle_type: BundleType


Revision = S3Revision | GitHubRevision | LocalRevision


@dataclass(frozen=True)
class DeploymentSpecification:
    """One deployment as seen from one host."""

    deployment_id: str
    deployment_group_id: str
    deployment_group_name: str
    application_name: str
    revision_type: RevisionType
    revision: Revision
    deployment_creator: str = "user"
    deployment_type: str = "IN_PLACE"
    appspec_filename: str = "appspec.yml"
    file_exists_behavior: FileExistsBehavior = FileExistsBehavior.DISALLOW
    all_possible_lifecycle_events: tuple[str, ...] | None = None
    github_access_token: str | None = None

    def bundle_environment(self) -> dict[str, str]:
        """The ``BUNDLE_*`` variables hook scripts see for this revision (only those that have a value)."""
        env: dict[str, str] = {}
        if isinstance(self.revision, S3Revision):
            env["BUNDLE_BUCKET"] = self.revision.bucket
            env["BUNDLE_KEY"] = self.revision.key
            if self.revision.version:
                env["BUNDLE_VERSION"] = self.revision.version
            if self.revision.etag:
                env["BUNDLE_ETAG"] = self.revision.etag
        elif isinstance(self.revision, GitHubRevision):
            env["BUNDLE_COMMIT"] = self.revision.commit_id
        return env


def _is_set(value: Any) -> bool:
    # The AWS agent treats missing, null and empty values alike.
    return value is not None and value != "" and value != {} and value != []


def _bundle_type(value: Any, allowed: tuple[BundleType, ...], message: str) -> BundleType:
    try:
        bundle_type = BundleType(str(value).lower())
    except ValueError:
        raise DeploymentSpecificationError(message) from None
    if bundle_type not in allowed:
        raise DeploymentSpecificationError(message)
    return bundle_type


def _parse_revision(data: dict[str, Any]) -> tuple[RevisionType, Revision]:
    revision = data.get("Revision")
    if not _is_set(revision) or not isinstance(revision, dict):
        raise DeploymentSpecificationError("Must specify a revison")
    revision_type = revision.get("RevisionType")
    if not _is_set(revision_type):
        raise DeploymentSpecificationError("Must specify a revision source")

    if revision_type == RevisionType.S3:
        s3 = revision.get("S3Revision") or {}
        if not all(_is_set(s3.get(k)) for k in ("Bucket", "Key", "BundleType")):
            raise DeploymentSpecificationError(
                "S3Revision in Deployment Spec must specify Bucket, Key and BundleType"
            )
        bundle_type = _bundle_type(
            s3["BundleType"],
            (BundleType.TAR, BundleType.TGZ, BundleType.ZIP),
            "BundleType in S3Revision must be tar, tgz or zip",
        )
        etag = s3.get("ETag")
        return RevisionType.S3, S3Revision(
            str(s3["Bucket"]),
            str(s3["Key"]),
            bundle_type,
            str(s3["Version"]) if _is_set(s3.get("Version")) else None,
            str(etag).strip('"') if _is_set(etag) else None,
        )

    if revision_type == RevisionType.GITHUB:
        gh = revision.get("GitHubRevision") or {}
        if not all(_is_set(gh.get(k)) for k in ("Account", "Repository", "CommitId")):
            raise DeploymentSpecificationError(
                "GitHubRevision in Deployment Spec must specify Account, Repository and CommitId"
            )
        anonymous = gh.get("Anonymous", True) is not False
        token = gh.get("OAuthToken") or data.get("GitHubAccessToken")
        if not anonymous and not _is_set(token):
            raise DeploymentSpecificationError(
                "GitHubRevision in Deployment Spec must specify OAuthToken when Anonymous is false"
            )
        bundle_type = None
        if _is_set(gh.get("BundleType")):
            bundle_type = _bundle_type(
                gh["BundleType"],
                (BundleType.TAR, BundleType.TGZ, BundleType.ZIP),
                "BundleType in GitHubRevision must be tar, tgz or zip",
            )
        return RevisionType.GITHUB, GitHubRevision(
            str(gh["Account"]),
            str(gh["Repository"]),
            str(gh["CommitId"]),
            bundle_type,
            anonymous,
            str(token) if _is_set(token) else None,
        )

    if revision_type in (RevisionType.LOCAL_FILE, RevisionType.LOCAL_DIRECTORY):
        local = revision.get("LocalRevision") or {}
        if not all(_is_set(local.get(k)) for k in ("Location", "BundleType")):
            raise DeploymentSpecificationError(
                "LocalRevision in Deployment Spec must specify Location and BundleType"
            )
        bundle_type = _bundle_type(
            local["BundleType"],
            tuple(BundleType),
            "BundleType in LocalRevision must be tar, tgz, zip, or directory",
        )
        return RevisionType(revision_type), LocalRevision(str(local["Location"]), bundle_type)

    raise DeploymentSpecificationError(
        "Exactly one of S3Revision, GitHubRevision, or LocalRevision must be specified"
    )


def _deployment_id(value: str) -> str:
    # The service may send the deployment's ARN; the host uses the bare id (it names a directory).
    return value.rsplit("deployment/", 1)[-1] if "deployment/" in value else value


def parse_deployment_specification(document: str | dict[str, Any]) -> DeploymentSpecification:
    """Read and validate a deployment specification from its JSON text (or already-decoded object)."""
    if isinstance(document, str):
        try:
            data = json.loads(document)
        except json.JSONDecodeError as exc:
            raise DeploymentSpecificationError(f"Deployment Spec is not valid JSON: {exc}") from None
    else:
        data = document
    if not isinstance(data, dict):
        raise DeploymentSpecificationError("Deployment Spec must be a JSON object")

    for key in ("DeploymentId", "DeploymentGroupId", "DeploymentGroupName", "ApplicationName"):
        if not _is_set(data.get(key)):
            raise DeploymentSpecificationError(f"Deployment Spec has no {key}")
    for key in ("DeploymentId", "DeploymentGroupId"):
        # Both name directories under root_dir: refuse anything that could leave it.
        value = str(data[key])
        if "/" in _deployment_id(value) or value in {".", ".."} or "\0" in value:
            raise DeploymentSpecificationError(f"Deployment Spec has an invalid {key}: {value!r}")

    revision_type, revision = _parse_revision(data)

    behavior = FileExistsBehavior.DISALLOW
    overrides = ((data.get("AgentActionOverrides") or {}).get("AgentOverrides") or {}).get(
        "FileExistsBehavior"
    )
    if _is_set(overrides):
        try:
            behavior = FileExistsBehavior(str(overrides).upper())
        except ValueError:
            raise DeploymentSpecificationError(
                f"The deployment failed because an invalid option was specified for fileExistsBehavior: "
                f"{overrides}. Valid options include OVERWRITE, RETAIN, and DISALLOW."
            ) from None

    events = data.get("AllPossibleLifecycleEvents")
    return DeploymentSpecification(
        deployment_id=_deployment_id(str(data["DeploymentId"])),
        deployment_group_id=str(data["DeploymentGroupId"]),
        deployment_group_name=str(data["DeploymentGroupName"]),
        application_name=str(data["ApplicationName"]),
        revision_type=revision_type,
        revision=revision,
        deployment_creator=str(data.get("DeploymentCreator") or "user"),
        deployment_type=str(data.get("DeploymentType") or "IN_PLACE"),
        appspec_filename=str(data.get("AppSpecFilename") or "appspec.yml"),
        file_exists_behavior=behavior,
        all_possible_lifecycle_events=tuple(str(e) for e in events) if _is_set(events) else None,
        github_access_token=str(data["GitHubAccessToken"])
        if _is_set(data.get("GitHubAccessToken"))
        else None,
    )


def local_specification_document(
    *,
    deployment_id: str,
    deployment_group_id: str,
    deployment_group_name: str,
    application_name: str,
    location: str,
    bundle_type: BundleType,
    file_exists_behavior: FileExistsBehavior | None,
    appspec_filename: str,
    all_possible_lifecycle_events: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The specification document for a bundle on this host's disk (what ``opendeploy local`` deploys)."""
    document: dict[str, Any] = {
        "DeploymentId": deployment_id,
        "DeploymentGroupId": deployment_group_id,
        "DeploymentGroupName": deployment_group_name,
        "ApplicationName": application_name,
        "DeploymentCreator": "user",
        "DeploymentType": "IN_PLACE",
        "AppSpecFilename": appspec_filename,
        "Revision": {
            "RevisionType": (
                RevisionType.LOCAL_DIRECTORY
                if bundle_type == BundleType.DIRECTORY
                else RevisionType.LOCAL_FILE
            ).value,
            "LocalRevision": {"Location": location, "BundleType": bundle_type.value},
        },
    }
    if file_exists_behavior is not None:
        document["AgentActionOverrides"] = {
            "AgentOverrides": {"FileExistsBehavior": file_exists_behavior.value}
        }
    if all_possible_lifecycle_events is not None:
        document["AllPossibleLifecycleEvents"] = list(all_possible_lifecycle_events)
    return document

"""The deployment specification a host receives for a deployment, and the execution id naming it.

The JSON document follows the agent wire protocol §1.6 — the shape AWS's agent and opendeploy's
(``agent.deployment_specification``) both read: ``DeploymentId``, ``DeploymentGroupId`` (the directory
the agent deploys under), ``DeploymentGroupName``, ``ApplicationName``, ``DeploymentCreator``,
``DeploymentType``, ``AppSpecFilename``, ``AgentActionOverrides.AgentOverrides.FileExistsBehavior`` and
``Revision`` (``S3Revision`` {Bucket, Key, BundleType, Version, ETag} or ``GitHubRevision`` {Account,
Repository, CommitId, BundleType, Anonymous, OAuthToken}). Every host of a deployment gets the same
document, so it is built and signed once per deployment.

A ``DeploymentExecutionId`` must match ``^[^/]+/[^/]+/[^/]+/.+$`` (the model); it is
``CodeDeploy/<region>/opendeploy/<deployment ARN>``, like AWS's
``CodeDeploy/us-east-1/prod/…/arn:aws:sds:…:deployment/d-…``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from opendeploy.domain.arns import PARTITION
from opendeploy.domain.ids import is_deployment_id
from opendeploy.store.github_tokens import read_token
from opendeploy.store.models import Application, Deployment, DeploymentGroup, Revision
from opendeploy.store.secrets import SecretBox

DEPLOYMENT_SYSTEM = "CodeDeploy"
APPSPEC_FILENAME = "appspec.yml"
GITHUB_BUNDLE_TYPE = "tar"  # what the AWS agent downloads from GitHub by default on Linux


class SpecificationUnavailable(LookupError):
    """The deployment cannot be described to a host (its revision or group is gone, say)."""


def deployment_arn(region: str, account_id: str, deployment_id: str) -> str:
    return f"arn:{PARTITION}:codedeploy:{region}:{account_id}:deployment/{deployment_id}"


def execution_id(region: str, account_id: str, deployment_id: str) -> str:
    return f"{DEPLOYMENT_SYSTEM}/{region}/opendeploy/{deployment_arn(region, account_id, deployment_id)}"


def deployment_id_of(execution: str) -> str | None:
    """The deployment id an execution id names (``None`` if it names none)."""
    if "/" not in execution:
        return None
    candidate = execution.rsplit("deployment/", 1)[-1]
    return candidate if is_deployment_id(candidate) else None


def _revision(
    session: Session, box: SecretBox, application: Application, revision: Revision
) -> dict[str, Any]:
    location = revision.location or {}
    if revision.revision_type == "S3":
        s3 = location.get("s3Location") or {}
        details = {"Bucket": s3.get("bucket"), "Key": s3.get("key"), "BundleType": s3.get("bundleType")}
        if s3.get("version"):
            details["Version"] = s3["version"]
        if s3.get("eTag"):
            details["ETag"] = s3["eTag"]
        return {"RevisionType": "S3", "S3Revision": details}
    if revision.revision_type == "GitHub":
        github = location.get("gitHubLocation") or {}
        account, _, repository = str(github.get("repository", "")).partition("/")
        details = {
            "Account": account,
            "Repository": repository,
            "CommitId": github.get("commitId"),
            "BundleType": GITHUB_BUNDLE_TYPE,
            "Anonymous": True,
        }
        token = (
            read_token(session, box, application.github_account_name)
            if application.github_account_name
            else None
        )
        if token:
            details.update(Anonymous=False, OAuthToken=token)
        return {"RevisionType": "GitHub", "GitHubRevision": details}
    raise SpecificationUnavailable(f"a {revision.revision_type} revision is not deployed by a host agent")


def specification_document(session: Session, box: SecretBox, deployment: Deployment) -> dict[str, Any]:
    """The specification of ``deployment`` as a JSON-ready dict."""
    group = (
        session.get(DeploymentGroup, deployment.deployment_group_id)
        if deployment.deployment_group_id
        else None
    )
    application = session.get(Application, deployment.application_id)
    revision = session.get(Revision, deployment.revision_id) if deployment.revision_id else None
    if group is None or application is None or revision is None:
        raise SpecificationUnavailable(
            f"deployment {deployment.id} no longer has its application, deployment group or revision"
        )
    return {
        "DeploymentId": deployment.id,
        "DeploymentGroupId": group.id,
        "DeploymentGroupName": group.name,
        "ApplicationName": application.name,
        "DeploymentCreator": deployment.creator,
        "DeploymentType": str(deployment.style.deployment_type),
        "AppSpecFilename": APPSPEC_FILENAME,
        "AgentActionOverrides": {
            "AgentOverrides": {"FileExistsBehavior": deployment.file_exists_behavior or "DISALLOW"}
        },
        "Revision": _revision(session, box, application, revision),
    }


def encode(document: dict[str, Any]) -> bytes:
    """The document as compact UTF-8 JSON (the envelope's payload limit is 8192 characters)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

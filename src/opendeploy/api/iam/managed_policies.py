"""IAM managed policies: CreatePolicy, GetPolicy, DeletePolicy, ListPolicies, and their versions
(CreatePolicyVersion, GetPolicyVersion, ListPolicyVersions, DeletePolicyVersion, SetDefaultPolicyVersion).

Customer managed policies live in the database, with at most five versions each (IAM's quota); the
AWS managed policies the guide names for CodeDeploy (``domain/managed_policies``) exist under their
AWS ARNs as in every account: they can be read and attached, never changed. Documents are checked by
the policy evaluator's parser, so a document the server could not evaluate is refused at once
(``MalformedPolicyDocument`` naming what is wrong).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from opendeploy.api.errors import ApiError
from opendeploy.api.iam import markers
from opendeploy.api.iam.registry import IamContext, iam_error, operation
from opendeploy.domain import managed_policies
from opendeploy.domain.iam_policy import MalformedPolicy, parse_policy
from opendeploy.domain.json_text import NestingTooDeep, parse_json
from opendeploy.store import iam_policies
from opendeploy.store.models.iam_policies import IamManagedPolicy, IamPolicyVersion

DEFAULT_PATH = "/"
MAX_VERSIONS = 5
# IAM's quota for a managed policy's document, whitespace not counted.
MAX_MANAGED_POLICY_CHARACTERS = 6144
_AWS_POLICY_CREATED = 1431475200.0  # a fixed creation date for AWS managed policies (2015-05-13)


def checked_document(document: str, limit: int, what: str) -> str:
    """``document`` if the evaluator can read it and it is within ``limit`` characters (whitespace not
    counted); otherwise ``MalformedPolicyDocument`` / ``LimitExceeded`` saying why."""
    try:
        parse_json(document, "The policy document")
        parse_policy(document)
    except NestingTooDeep as error:
        raise iam_error("MalformedPolicyDocument", str(error)) from None
    except MalformedPolicy as error:
        raise iam_error("MalformedPolicyDocument", str(error)) from None
    except ValueError as error:
        raise iam_error("MalformedPolicyDocument", f"Syntax errors in policy: {error}") from None
    if size(document) > limit:
        raise iam_error("LimitExceeded", f"Cannot exceed quota for {what}: {limit}")
    return document


def size(document: str) -> int:
    return sum(1 for character in document if not character.isspace())


def checked_inline_document(document: str, others: Iterable[str], limit: int, owner: str) -> str:
    """An inline policy ``document`` the evaluator can read and that, with the owner's ``others``, stays
    within IAM's quota of ``limit`` characters for its owner (``"user alice"``, ``"group ops"``)."""
    checked_document(document, limit, "PolicySize")
    if sum(size(other) for other in others) + size(document) > limit:
        raise iam_error("LimitExceeded", f"Maximum policy size of {limit} bytes exceeded for {owner}")
    return document


def _no_such_policy(arn: str) -> ApiError:
    return iam_error("NoSuchEntity", f"Policy {arn} does not exist or is not attachable.")


def _aws_policy_shape(arn: str, ctx: IamContext) -> dict[str, Any]:
    name = managed_policies.policy_name(arn)
    return {
        "PolicyName": name,
        "PolicyId": "ANPA" + _stable_id(arn),
        "Arn": arn,
        "Path": managed_policies.policy_path(arn),
        "DefaultVersionId": "v1",
        "AttachmentCount": iam_policies.attachment_count(ctx.session, arn),
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "CreateDate": _AWS_POLICY_CREATED,
        "UpdateDate": _AWS_POLICY_CREATED,
    }


def _stable_id(arn: str) -> str:
    return base64.b32encode(hashlib.sha256(arn.encode()).digest()).decode()[:17]


def policy_shape(policy: IamManagedPolicy, ctx: IamContext) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "PolicyName": policy.name,
        "PolicyId": policy.policy_id,
        "Arn": policy.arn,
        "Path": policy.path,
        "DefaultVersionId": policy.default_version_id,
        "AttachmentCount": iam_policies.attachment_count(ctx.session, policy.arn),
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "CreateDate": policy.create_time,
        "UpdateDate": policy.update_time,
    }
    if policy.description:
        shape["Description"] = policy.description
    return shape


def _version_shape(version: IamPolicyVersion, default_id: str, *, document: bool) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "VersionId": version.version_id,
        "IsDefaultVersion": version.version_id == default_id,
        "CreateDate": version.create_time,
    }
    if document:
        shape["Document"] = quote(version.document, safe="")
    return shape


def find_policy(ctx: IamContext, arn: str, *, for_update: bool = False) -> IamManagedPolicy:
    """The customer managed policy ``arn``; an AWS managed one is ``InvalidInput`` for changes, an
    unknown one ``NoSuchEntity``."""
    if managed_policies.is_managed_policy(arn):
        raise iam_error("InvalidInput", f"Policy {arn} is an AWS managed policy: it cannot be changed.")
    policy = iam_policies.find_policy(ctx.session, arn, for_update=for_update)
    if policy is None:
        raise _no_such_policy(arn)
    return policy


def exists(ctx: IamContext, arn: str) -> bool:
    """Whether ``arn`` names a managed policy (AWS or customer managed) that can be attached."""
    return managed_policies.is_managed_policy(arn) or iam_policies.find_policy(ctx.session, arn) is not None


@operation("CreatePolicy")
def create_policy(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    name, path = params["PolicyName"], params.get("Path", DEFAULT_PATH)
    document = checked_document(params["PolicyDocument"], MAX_MANAGED_POLICY_CHARACTERS, "PolicySize")
    try:
        policy = iam_policies.create_policy(
            ctx.session,
            account_id=ctx.settings.account_id,
            name=name,
            path=path,
            description=params.get("Description"),
            document=document,
            now=ctx.now,
        )
    except iam_policies.NameTaken:
        raise iam_error(
            "EntityAlreadyExists", f"A policy called {name} already exists. Duplicate names are not allowed."
        ) from None
    return {"Policy": policy_shape(policy, ctx)}


@operation("GetPolicy")
def get_policy(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["PolicyArn"]
    if managed_policies.is_managed_policy(arn):
        return {"Policy": _aws_policy_shape(arn, ctx)}
    return {"Policy": policy_shape(find_policy(ctx, arn), ctx)}


@operation("ListPolicies")
def list_policies(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    scope = params.get("Scope", "All")
    prefix = params.get("PathPrefix", DEFAULT_PATH)
    shapes: list[dict[str, Any]] = []
    if scope in ("All", "AWS"):
        shapes += [
            _aws_policy_shape(arn, ctx)
            for arn in sorted(managed_policies.all_documents())
            if managed_policies.policy_path(arn).startswith(prefix)
        ]
    if scope in ("All", "Local"):
        shapes += [policy_shape(p, ctx) for p in iam_policies.list_policies(ctx.session, path_prefix=prefix)]
    if params.get("OnlyAttached"):
        shapes = [shape for shape in shapes if shape["AttachmentCount"] > 0]
    page, truncation = markers.offset_page(ctx, params, shapes)
    return {"Policies": page, **truncation}


@operation("DeletePolicy")
def delete_policy(ctx: IamContext, params: dict[str, Any]) -> None:
    policy = find_policy(ctx, params["PolicyArn"], for_update=True)
    if iam_policies.attachment_count(ctx.session, policy.arn):
        raise iam_error("DeleteConflict", "Cannot delete a policy attached to entities.")
    if len(policy.versions) > 1:
        raise iam_error("DeleteConflict", "Cannot delete a policy with versions other than the default.")
    iam_policies.delete_policy(ctx.session, policy)


@operation("CreatePolicyVersion")
def create_policy_version(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    policy = find_policy(ctx, params["PolicyArn"], for_update=True)
    document = checked_document(params["PolicyDocument"], MAX_MANAGED_POLICY_CHARACTERS, "PolicySize")
    if len(policy.versions) >= MAX_VERSIONS:
        raise iam_error(
            "LimitExceeded",
            f"A managed policy can have up to {MAX_VERSIONS} versions. Before you create a new version, "
            "you must delete an existing version.",
        )
    version = iam_policies.add_version(
        ctx.session, policy, document, set_default=bool(params.get("SetAsDefault")), now=ctx.now
    )
    return {"PolicyVersion": _version_shape(version, policy.default_version_id, document=False)}


@operation("GetPolicyVersion")
def get_policy_version(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    arn, version_id = params["PolicyArn"], params["VersionId"]
    if managed_policies.is_managed_policy(arn):
        if version_id != "v1":
            raise iam_error("NoSuchEntity", f"Policy {arn} version {version_id} does not exist.")
        return {
            "PolicyVersion": {
                "Document": quote(managed_policies.document_json(arn), safe=""),
                "VersionId": "v1",
                "IsDefaultVersion": True,
                "CreateDate": _AWS_POLICY_CREATED,
            }
        }
    policy = find_policy(ctx, arn)
    version = iam_policies.find_version(policy, version_id)
    if version is None:
        raise iam_error("NoSuchEntity", f"Policy {arn} version {version_id} does not exist.")
    return {"PolicyVersion": _version_shape(version, policy.default_version_id, document=True)}


@operation("ListPolicyVersions")
def list_policy_versions(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["PolicyArn"]
    if managed_policies.is_managed_policy(arn):
        versions = [{"VersionId": "v1", "IsDefaultVersion": True, "CreateDate": _AWS_POLICY_CREATED}]
    else:
        policy = find_policy(ctx, arn)
        versions = [
            _version_shape(version, policy.default_version_id, document=False)
            for version in reversed(policy.versions)  # newest first, as IAM lists them
        ]
    page, truncation = markers.offset_page(ctx, params, versions)
    return {"Versions": page, **truncation}


@operation("DeletePolicyVersion")
def delete_policy_version(ctx: IamContext, params: dict[str, Any]) -> None:
    policy = find_policy(ctx, params["PolicyArn"], for_update=True)
    version = iam_policies.find_version(policy, params["VersionId"])
    if version is None:
        raise iam_error("NoSuchEntity", f"Policy {policy.arn} version {params['VersionId']} does not exist.")
    if version.version_id == policy.default_version_id:
        raise iam_error("DeleteConflict", "Cannot delete the default version of a policy.")
    iam_policies.delete_version(ctx.session, policy, version)


@operation("SetDefaultPolicyVersion")
def set_default_policy_version(ctx: IamContext, params: dict[str, Any]) -> None:
    policy = find_policy(ctx, params["PolicyArn"], for_update=True)
    if iam_policies.find_version(policy, params["VersionId"]) is None:
        raise iam_error("NoSuchEntity", f"Policy {policy.arn} version {params['VersionId']} does not exist.")
    policy.default_version_id = params["VersionId"]
    policy.update_time = ctx.now

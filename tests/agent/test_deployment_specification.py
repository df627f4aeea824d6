"""The deployment specification JSON (agent wire protocol §1.6): shapes, defaults and exact messages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opendeploy.agent.deployment_specification import (
    BundleType,
    DeploymentSpecificationError,
    GitHubRevision,
    LocalRevision,
    RevisionType,
    S3Revision,
    parse_deployment_specification,
)
from opendeploy.appspec.model import FileExistsBehavior


def _spec(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "DeploymentId": "d-ABCDEFGHI",
        "DeploymentGroupId": "b1a2189b-dd90-4ef5-8f40-4c1c5EXAMPLE",
        "DeploymentGroupName": "WordPress_DepGroup",
        "ApplicationName": "WordPress_App",
        "Revision": {
            "RevisionType": "S3",
            "S3Revision": {"Bucket": "my-s3-bucket", "Key": "WordPress_App.zip", "BundleType": "zip"},
        },
    }
    document.update(overrides)
    return document


def test_s3_specification_with_defaults() -> None:
    spec = parse_deployment_specification(json.dumps(_spec()))
    assert spec.deployment_id == "d-ABCDEFGHI"
    assert spec.revision_type == RevisionType.S3
    assert spec.revision == S3Revision("my-s3-bucket", "WordPress_App.zip", BundleType.ZIP)
    assert (spec.deployment_creator, spec.deployment_type, spec.appspec_filename) == (
        "user",
        "IN_PLACE",
        "appspec.yml",
    )
    assert spec.file_exists_behavior == FileExistsBehavior.DISALLOW
    assert spec.bundle_environment() == {"BUNDLE_BUCKET": "my-s3-bucket", "BUNDLE_KEY": "WordPress_App.zip"}


def test_arn_deployment_id_becomes_the_bare_id() -> None:
    spec = parse_deployment_specification(
        _spec(DeploymentId="arn:aws:codedeploy:us-east-1:123456789012:deployment/d-5SHGGURRB")
    )
    assert spec.deployment_id == "d-5SHGGURRB"


def test_s3_version_and_etag_reach_bundle_variables() -> None:
    revision = {
        "RevisionType": "S3",
        "S3Revision": {"Bucket": "b", "Key": "k", "BundleType": "tgz", "Version": "v1", "ETag": '"abc-4"'},
    }
    spec = parse_deployment_specification(_spec(Revision=revision))
    assert spec.bundle_environment() == {
        "BUNDLE_BUCKET": "b",
        "BUNDLE_KEY": "k",
        "BUNDLE_VERSION": "v1",
        "BUNDLE_ETAG": "abc-4",
    }


def test_github_and_local_revisions() -> None:
    github = {
        "RevisionType": "GitHub",
        "GitHubRevision": {"Account": "o", "Repository": "r", "CommitId": "a" * 40},
    }
    spec = parse_deployment_specification(_spec(Revision=github))
    assert spec.revision == GitHubRevision("o", "r", "a" * 40)
    assert spec.bundle_environment() == {"BUNDLE_COMMIT": "a" * 40}
    local = {
        "RevisionType": "Local Directory",
        "LocalRevision": {"Location": "/srv/b", "BundleType": "directory"},
    }
    spec = parse_deployment_specification(_spec(Revision=local))
    assert spec.revision == LocalRevision("/srv/b", BundleType.DIRECTORY)
    assert spec.bundle_environment() == {}


def test_file_exists_behavior_override_is_upper_cased() -> None:
    spec = parse_deployment_specification(
        _spec(AgentActionOverrides={"AgentOverrides": {"FileExistsBehavior": "overwrite"}})
    )
    assert spec.file_exists_behavior == FileExistsBehavior.OVERWRITE


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DeploymentId": None}, "Deployment Spec has no DeploymentId"),
        ({"DeploymentGroupId": ""}, "Deployment Spec has no DeploymentGroupId"),
        ({"DeploymentGroupName": None}, "Deployment Spec has no DeploymentGroupName"),
        ({"ApplicationName": None}, "Deployment Spec has no ApplicationName"),
        ({"Revision": None}, "Must specify a revison"),
        ({"Revision": {"S3Revision": {}}}, "Must specify a revision source"),
        (
            {"Revision": {"RevisionType": "S3", "S3Revision": {"Bucket": "b", "Key": "k"}}},
            "S3Revision in Deployment Spec must specify Bucket, Key and BundleType",
        ),
        (
            {
                "Revision": {
                    "RevisionType": "S3",
                    "S3Revision": {"Bucket": "b", "Key": "k", "BundleType": "rar"},
                }
            },
            "BundleType in S3Revision must be tar, tgz or zip",
        ),
        (
            {"Revision": {"RevisionType": "GitHub", "GitHubRevision": {"Account": "o"}}},
            "GitHubRevision in Deployment Spec must specify Account, Repository and CommitId",
        ),
        (
            {"Revision": {"RevisionType": "Local File", "LocalRevision": {"Location": "/x"}}},
            "LocalRevision in Deployment Spec must specify Location and BundleType",
        ),
        (
            {
                "Revision": {
                    "RevisionType": "Local File",
                    "LocalRevision": {"Location": "/x", "BundleType": "7z"},
                }
            },
            "BundleType in LocalRevision must be tar, tgz, zip, or directory",
        ),
        (
            {"Revision": {"RevisionType": "FTP"}},
            "Exactly one of S3Revision, GitHubRevision, or LocalRevision",
        ),
        ({"DeploymentGroupId": "../../etc"}, "invalid DeploymentGroupId"),
        (
            {"AgentActionOverrides": {"AgentOverrides": {"FileExistsBehavior": "MERGE"}}},
            "invalid option was specified for fileExistsBehavior: MERGE",
        ),
    ],
)
def test_invalid_specifications_have_the_agents_messages(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(DeploymentSpecificationError, match=message):
        parse_deployment_specification(_spec(**overrides))


def test_not_json() -> None:
    with pytest.raises(DeploymentSpecificationError, match="not valid JSON"):
        parse_deployment_specification("-----BEGIN PKCS7-----")

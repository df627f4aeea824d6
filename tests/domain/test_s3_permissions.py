"""The bundle store's S3 operations -> the IAM actions AWS's S3 documentation names for them."""

from __future__ import annotations

import pytest

from opendeploy.domain import s3_permissions as s3
from opendeploy.domain.permissions import Permission, UnknownOperation, first_unmet, is_read_only
from opendeploy.domain.s3_permissions import ObjectRef

BUCKET_ARN = "arn:aws:s3:::bundles"
OBJECT_ARN = "arn:aws:s3:::bundles/CodeDeploy/app.zip"

# operation -> (action, resource) for a request on bucket "bundles", key "CodeDeploy/app.zip"
SINGLE: dict[str, tuple[str, str]] = {
    "ListBuckets": ("s3:ListAllMyBuckets", "*"),
    "CreateBucket": ("s3:CreateBucket", BUCKET_ARN),
    "DeleteBucket": ("s3:DeleteBucket", BUCKET_ARN),
    "HeadBucket": ("s3:ListBucket", BUCKET_ARN),
    "GetBucketLocation": ("s3:GetBucketLocation", BUCKET_ARN),
    "GetBucketVersioning": ("s3:GetBucketVersioning", BUCKET_ARN),
    "PutBucketVersioning": ("s3:PutBucketVersioning", BUCKET_ARN),
    "ListObjects": ("s3:ListBucket", BUCKET_ARN),
    "ListObjectsV2": ("s3:ListBucket", BUCKET_ARN),
    "ListObjectVersions": ("s3:ListBucketVersions", BUCKET_ARN),
    "ListMultipartUploads": ("s3:ListBucketMultipartUploads", BUCKET_ARN),
    "PutObject": ("s3:PutObject", OBJECT_ARN),
    "GetObject": ("s3:GetObject", OBJECT_ARN),
    "HeadObject": ("s3:GetObject", OBJECT_ARN),
    "DeleteObject": ("s3:DeleteObject", OBJECT_ARN),
    "CreateMultipartUpload": ("s3:PutObject", OBJECT_ARN),
    "UploadPart": ("s3:PutObject", OBJECT_ARN),
    "CompleteMultipartUpload": ("s3:PutObject", OBJECT_ARN),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", OBJECT_ARN),
    "ListParts": ("s3:ListMultipartUploadParts", OBJECT_ARN),
    "GetObjectTagging": ("s3:GetObjectTagging", OBJECT_ARN),
    "PutObjectTagging": ("s3:PutObjectTagging", OBJECT_ARN),
    "DeleteObjectTagging": ("s3:DeleteObjectTagging", OBJECT_ARN),
}

VERSIONED: dict[str, str] = {
    "GetObject": "s3:GetObjectVersion",
    "HeadObject": "s3:GetObjectVersion",
    "DeleteObject": "s3:DeleteObjectVersion",
    "GetObjectTagging": "s3:GetObjectVersionTagging",
    "PutObjectTagging": "s3:PutObjectVersionTagging",
    "DeleteObjectTagging": "s3:DeleteObjectVersionTagging",
}


def needs(operation: str, **kwargs: object) -> list[Permission]:
    bucket = "" if operation == "ListBuckets" else "bundles"
    key = "CodeDeploy/app.zip" if SINGLE.get(operation, ("", OBJECT_ARN))[1] == OBJECT_ARN else ""
    return s3.required(operation, bucket, key, **kwargs)  # type: ignore[arg-type]


def test_every_operation_the_s3_adapter_routes_has_a_mapping() -> None:
    from opendeploy.api.s3.routing import HANDLERS

    assert set(HANDLERS) - s3.OPERATIONS == set()
    assert set(SINGLE) | {"CopyObject", "UploadPartCopy", "DeleteObjects"} == s3.OPERATIONS


@pytest.mark.parametrize("operation", sorted(SINGLE))
def test_single_permission_operations(operation: str) -> None:
    action, resource = SINGLE[operation]
    assert needs(operation) == [Permission(action, resource)]


@pytest.mark.parametrize("operation", sorted(VERSIONED))
def test_a_version_id_asks_for_the_version_action(operation: str) -> None:
    assert needs(operation, version_id="v1") == [Permission(VERSIONED[operation], OBJECT_ARN)]


@pytest.mark.parametrize("operation", ["PutObject", "UploadPart", "ListParts", "AbortMultipartUpload"])
def test_a_version_id_does_not_change_other_object_actions(operation: str) -> None:
    assert needs(operation, version_id="v1") == needs(operation)


@pytest.mark.parametrize("operation", ["CopyObject", "UploadPartCopy"])
def test_copies_read_the_source_and_write_the_destination(operation: str) -> None:
    source = ObjectRef(key="releases/app.zip", bucket="staging")
    assert s3.required(operation, "bundles", "CodeDeploy/app.zip", copy_source=source) == [
        Permission("s3:GetObject", "arn:aws:s3:::staging/releases/app.zip"),
        Permission("s3:PutObject", OBJECT_ARN),
    ]
    versioned = ObjectRef(key="releases/app.zip", bucket="staging", version_id="v7")
    assert s3.required(operation, "bundles", "CodeDeploy/app.zip", copy_source=versioned)[0] == Permission(
        "s3:GetObjectVersion", "arn:aws:s3:::staging/releases/app.zip"
    )


def test_a_copy_without_its_source_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        s3.required("CopyObject", "bundles", "k")


def test_delete_objects_one_permission_per_key_in_request_order() -> None:
    objects = [ObjectRef("a"), ObjectRef("b", version_id="v1"), ObjectRef("a")]
    assert s3.required("DeleteObjects", "bundles", objects=objects) == [
        Permission("s3:DeleteObject", "arn:aws:s3:::bundles/a"),
        Permission("s3:DeleteObjectVersion", "arn:aws:s3:::bundles/b"),
        Permission("s3:DeleteObject", "arn:aws:s3:::bundles/a"),
    ]


def test_the_guide_s_instance_profile_policy_reads_bundles_under_codedeploy() -> None:
    """AmazonEC2RoleforAWSCodeDeployLimited (guide L21820–21850) allows s3:GetObject and
    s3:GetObjectVersion on arn:aws:s3:::*/CodeDeploy/*: a bundle download asks for exactly that."""
    allowed = {Permission("s3:GetObject", OBJECT_ARN), Permission("s3:GetObjectVersion", OBJECT_ARN)}
    assert first_unmet(needs("GetObject"), allowed.__contains__) is None
    assert first_unmet(needs("GetObject", version_id="v1"), allowed.__contains__) is None
    assert first_unmet(needs("ListBuckets"), allowed.__contains__) == Permission("s3:ListAllMyBuckets", "*")


def test_keys_are_used_as_stored() -> None:
    assert s3.required("GetObject", "b", "dir/a b+c%20.zip") == [
        Permission("s3:GetObject", "arn:aws:s3:::b/dir/a b+c%20.zip")
    ]


def test_unknown_operation_raises() -> None:
    with pytest.raises(UnknownOperation):
        s3.required("PutBucketPolicy", "b")


def test_read_only_flags() -> None:
    assert {op for op in s3.OPERATIONS if is_read_only(op)} == {
        "ListBuckets",
        "HeadBucket",
        "GetBucketLocation",
        "GetBucketVersioning",
        "ListObjects",
        "ListObjectsV2",
        "ListObjectVersions",
        "ListMultipartUploads",
        "GetObject",
        "HeadObject",
        "ListParts",
        "GetObjectTagging",
    }


def test_request_context() -> None:
    assert s3.request_context(
        "ListObjectsV2", {"list-type": "2", "prefix": "CodeDeploy/", "max-keys": "10"}
    ) == {
        "s3:prefix": ["CodeDeploy/"],
        "s3:max-keys": ["10"],
    }
    assert s3.request_context("GetObject", {}, version_id="v1") == {"s3:versionid": ["v1"]}
    assert s3.request_context("PutObject", {"prefix": "x"}) == {}

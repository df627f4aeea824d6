"""The bundle store's S3 API: for each request, the IAM actions and resources that must be allowed.

Revisions travel through the S3 object API (DESIGN.md, protocol 4), and the guide's instance-profile
policy ``AmazonEC2RoleforAWSCodeDeployLimited`` (L21820–21850; digest §11) is written in S3's own
actions (``s3:GetObject``, ``s3:GetObjectVersion``, ``s3:ListBucket`` on ``arn:aws:s3:::*/CodeDeploy/*``),
so the store is authorized with the actions AWS's S3 documentation ("Required permissions for Amazon S3
API operations" and the service authorization reference) gives each operation:

- bucket operations on ``arn:aws:s3:::<bucket>``: CreateBucket → ``s3:CreateBucket``, DeleteBucket →
  ``s3:DeleteBucket``, HeadBucket, ListObjects and ListObjectsV2 → ``s3:ListBucket``,
  ListObjectVersions → ``s3:ListBucketVersions``, ListMultipartUploads →
  ``s3:ListBucketMultipartUploads``, GetBucketLocation, Get/PutBucketVersioning → the action of the
  same name;
- ListBuckets → ``s3:ListAllMyBuckets`` on ``*`` (the action has no resource type);
- object operations on ``arn:aws:s3:::<bucket>/<key>``: GetObject and HeadObject → ``s3:GetObject``
  (``s3:GetObjectVersion`` with a ``versionId``), PutObject and the multipart upload's
  CreateMultipartUpload, UploadPart and CompleteMultipartUpload → ``s3:PutObject``, DeleteObject →
  ``s3:DeleteObject`` (``s3:DeleteObjectVersion`` with a ``versionId``), AbortMultipartUpload →
  ``s3:AbortMultipartUpload``, ListParts → ``s3:ListMultipartUploadParts``, the object tagging
  operations → ``s3:{Get,Put,Delete}Object[Version]Tagging``;
- CopyObject and UploadPartCopy → ``s3:GetObject`` (``s3:GetObjectVersion``) on the source and
  ``s3:PutObject`` on the destination;
- DeleteObjects → ``s3:DeleteObject`` (``s3:DeleteObjectVersion``) on each key. S3 has no
  ``s3:DeleteObjects`` action, and it does not deny the whole call: a key the caller may not delete
  gets an ``AccessDenied`` ``<Error>`` in the ``DeleteResult`` and the other keys are deleted.
  ``required`` returns one permission per object, in request order (not deduplicated), so the API
  layer can pair them with the keys.

Keys are used as stored (percent-decoded). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opendeploy.domain import arns
from opendeploy.domain.permissions import Permission, UnknownOperation


@dataclass(frozen=True)
class ObjectRef:
    """An object named by a request: the copy source of CopyObject/UploadPartCopy, or one entry of
    DeleteObjects' body. ``bucket`` is unused for DeleteObjects (the request's bucket)."""

    key: str
    version_id: str | None = None
    bucket: str = ""


# Bucket-level operations: the action, on the bucket's ARN.
_BUCKET_ACTIONS: dict[str, str] = {
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "GetBucketLocation": "s3:GetBucketLocation",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "PutBucketVersioning": "s3:PutBucketVersioning",
}

# Object-level operations: (action, action when the request names a versionId).
_OBJECT_ACTIONS: dict[str, tuple[str, str]] = {
    "GetObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "HeadObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "PutObject": ("s3:PutObject", "s3:PutObject"),
    "CreateMultipartUpload": ("s3:PutObject", "s3:PutObject"),
    "UploadPart": ("s3:PutObject", "s3:PutObject"),
    "CompleteMultipartUpload": ("s3:PutObject", "s3:PutObject"),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", "s3:AbortMultipartUpload"),
    "ListParts": ("s3:ListMultipartUploadParts", "s3:ListMultipartUploadParts"),
    "DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "GetObjectTagging": ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    "PutObjectTagging": ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    "DeleteObjectTagging": ("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
}

_COPY_OPERATIONS = frozenset({"CopyObject", "UploadPartCopy"})

OPERATIONS: frozenset[str] = frozenset(
    {"ListBuckets", "DeleteObjects", *_BUCKET_ACTIONS, *_OBJECT_ACTIONS, *_COPY_OPERATIONS}
)


def _read_action(version_id: str | None) -> str:
    return "s3:GetObjectVersion" if version_id else "s3:GetObject"


def required(
    operation: str,
    bucket: str = "",
    key: str = "",
    *,
    version_id: str | None = None,
    copy_source: ObjectRef | None = None,
    objects: Sequence[ObjectRef] = (),
) -> list[Permission]:
    """What an S3 request needs: every permission must be allowed (DeleteObjects: see the module
    docstring). ``version_id`` is the request's ``versionId`` query parameter; ``copy_source`` the
    parsed ``x-amz-copy-source`` of CopyObject/UploadPartCopy; ``objects`` DeleteObjects' entries.

    Raises ``UnknownOperation`` for an operation the table does not know, ``ValueError`` when a copy
    names no source.
    """
    if operation == "ListBuckets":
        return [Permission("s3:ListAllMyBuckets", "*")]
    if operation in _BUCKET_ACTIONS:
        return [Permission(_BUCKET_ACTIONS[operation], arns.s3_bucket_arn(bucket))]
    if operation in _OBJECT_ACTIONS:
        plain, versioned = _OBJECT_ACTIONS[operation]
        return [Permission(versioned if version_id else plain, arns.s3_object_arn(bucket, key))]
    if operation in _COPY_OPERATIONS:
        if copy_source is None:
            raise ValueError(f"{operation} needs its copy source")
        source = arns.s3_object_arn(copy_source.bucket, copy_source.key)
        return [
            Permission(_read_action(copy_source.version_id), source),
            Permission("s3:PutObject", arns.s3_object_arn(bucket, key)),
        ]
    if operation == "DeleteObjects":
        return [
            Permission(
                "s3:DeleteObjectVersion" if entry.version_id else "s3:DeleteObject",
                arns.s3_object_arn(bucket, entry.key),
            )
            for entry in objects
        ]
    raise UnknownOperation(operation)


def request_context(
    operation: str, query: Mapping[str, str], version_id: str | None = None
) -> dict[str, list[str]]:
    """S3 condition keys the request sets: ``s3:prefix``, ``s3:delimiter`` and ``s3:max-keys`` for the
    object listings (``max-keys`` is ``s3:max-keys`` for both ListObjects versions), ``s3:versionid``
    for an operation on a version."""
    context: dict[str, list[str]] = {}
    if operation in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
        for parameter in ("prefix", "delimiter", "max-keys"):
            if parameter in query:
                context[f"s3:{parameter}"] = [query[parameter]]
    if version_id:
        context["s3:versionid"] = [version_id]
    return context

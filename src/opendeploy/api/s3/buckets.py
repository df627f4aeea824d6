"""Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation and
GetBucketVersioning (versioning is never enabled on this store, which is what it reports)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from opendeploy.api.s3 import xml
from opendeploy.api.s3.context import OWNER_DISPLAY_NAME, S3Context
from opendeploy.api.s3.errors import S3Error

MAX_CONFIGURATION_BYTES = 64 * 1024


async def list_buckets(context: S3Context) -> Response:
    buckets = await run_in_threadpool(context.store.list_buckets)
    prefix = context.query.get("prefix", "")
    root = xml.document("ListAllMyBucketsResult")
    owner = xml.child(root, "Owner")
    xml.child(owner, "ID", context.owner_id)
    xml.child(owner, "DisplayName", OWNER_DISPLAY_NAME)
    listed = xml.child(root, "Buckets")
    for bucket in buckets:
        if not bucket.name.startswith(prefix):
            continue
        entry = xml.child(listed, "Bucket")
        xml.child(entry, "Name", bucket.name)
        xml.child(entry, "CreationDate", xml.iso8601(bucket.created))
        xml.child(entry, "BucketRegion", context.state.settings.region)
    if prefix:
        xml.child(root, "Prefix", prefix)
    return xml.xml_response(root, context.base_headers())


async def create_bucket(context: S3Context) -> Response:
    region = context.state.settings.region
    if context.body and context.body.strip():
        configuration = xml.parse(context.body, "CreateBucketConfiguration")
        constraint = xml.text_of(configuration, "LocationConstraint")
        if constraint and constraint != region:
            raise S3Error(
                "IllegalLocationConstraintException",
                f"The {constraint} location constraint is incompatible for the region specific endpoint "
                f"this request was sent to ({region}).",
            )
    await run_in_threadpool(context.store.create_bucket, context.bucket, now=context.now)
    return Response(status_code=200, headers={**context.base_headers(), "Location": f"/{context.bucket}"})


async def head_bucket(context: S3Context) -> Response:
    await run_in_threadpool(context.store.head_bucket, context.bucket)
    headers = context.base_headers()
    headers["x-amz-bucket-region"] = context.state.settings.region
    return Response(status_code=200, headers=headers)


async def delete_bucket(context: S3Context) -> Response:
    await run_in_threadpool(context.store.delete_bucket, context.bucket)
    return Response(status_code=204, headers=context.base_headers())


async def get_bucket_location(context: S3Context) -> Response:
    await run_in_threadpool(context.store.head_bucket, context.bucket)
    root = xml.document("LocationConstraint")
    region = context.state.settings.region
    root.text = "" if region == "us-east-1" else region  # S3 reports us-east-1 as empty
    return xml.xml_response(root, context.base_headers())


async def get_bucket_versioning(context: S3Context) -> Response:
    await run_in_threadpool(context.store.head_bucket, context.bucket)
    return xml.xml_response(xml.document("VersioningConfiguration"), context.base_headers())

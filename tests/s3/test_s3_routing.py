"""The routing rule that shares the server's one port between S3 and the server's own routes."""

from __future__ import annotations

import httpx
import pytest
from starlette.routing import Match

from opendeploy.api.s3.routing import S3Route, operation_for


def _match(method: str, path: str) -> Match:
    route = S3Route.__new__(S3Route)  # matching needs no state
    return route.matches({"type": "http", "method": method, "path": path})[0]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/", Match.NONE),  # awsJson: CodeDeploy and the agent command service
        ("GET", "/", Match.FULL),  # ListBuckets
        ("GET", "/bundles", Match.FULL),
        ("PUT", "/bundles/app/rev.zip", Match.FULL),
        ("POST", "/bundles/app/rev.zip", Match.FULL),  # multipart
        ("GET", "/health", Match.PARTIAL),  # the server's own routes win wherever they are listed
        ("GET", "/metrics", Match.PARTIAL),
        ("GET", "/console/deployments", Match.PARTIAL),
        ("GET", "/agent/certificate", Match.PARTIAL),
    ],
)
def test_which_requests_are_s3(method, path, expected):
    assert _match(method, path) == expected


@pytest.mark.parametrize(
    ("method", "bucket", "key", "query", "operation"),
    [
        ("GET", "", "", {}, "ListBuckets"),
        ("PUT", "b", "", {}, "CreateBucket"),
        ("GET", "b", "", {"list-type": "2"}, "ListObjectsV2"),
        ("GET", "b", "", {}, "ListObjects"),
        ("GET", "b", "", {"uploads": ""}, "ListMultipartUploads"),
        ("POST", "b", "", {"delete": ""}, "DeleteObjects"),
        ("PUT", "b", "k", {}, "PutObject"),
        ("PUT", "b", "k", {"partNumber": "1", "uploadId": "u"}, "UploadPart"),
        ("POST", "b", "k", {"uploads": ""}, "CreateMultipartUpload"),
        ("POST", "b", "k", {"uploadId": "u"}, "CompleteMultipartUpload"),
        ("DELETE", "b", "k", {"uploadId": "u"}, "AbortMultipartUpload"),
        ("GET", "b", "k", {"uploadId": "u"}, "ListParts"),
    ],
)
def test_operations(method, bucket, key, query, operation):
    assert operation_for(method, bucket, key, query) == operation


def test_the_server_routes_still_answer(s3_server, s3, bucket):
    assert httpx.get(f"{s3_server.endpoint}/health").json()["status"] == "ok"
    # CodeDeploy's awsJson API on POST / is untouched by the S3 route.
    assert "applications" in s3_server.client("codedeploy").list_applications()
    # Unsupported S3 sub-resources are S3's NotImplemented, after authentication.
    with pytest.raises(s3.exceptions.ClientError) as error:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error.value.response["Error"]["Code"] == "NotImplemented"

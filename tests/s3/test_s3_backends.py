"""The S3 API on each database backend (signatures are checked against keys stored there)."""

from __future__ import annotations

from support.names import unique


def test_put_get_list_on_each_backend(server):
    s3 = server.client("s3")
    bucket = unique("backend")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=f"{server.backend}.txt", Body=server.backend.encode())
    assert s3.get_object(Bucket=bucket, Key=f"{server.backend}.txt")["Body"].read() == server.backend.encode()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [f"{server.backend}.txt"]

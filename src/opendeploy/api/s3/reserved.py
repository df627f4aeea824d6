"""Which first path segments belong to the server itself rather than to an S3 bucket.

The S3 API is served path-style on the server's one port: ``/<bucket>[/<key>]``. The rule that keeps
it apart from the server's other routes: ``POST /`` is the awsJson API (CodeDeploy, the agent command
service), ``GET /`` is S3's ListBuckets, and a first segment listed here is never a bucket (such a
bucket cannot be created) so those paths reach the server's own routes. New top-level routes of the
server must be added here.
"""

from __future__ import annotations

RESERVED_FIRST_SEGMENTS = frozenset(
    # service: RPC v2 CBOR; tls: GET /tls/certificate (api/tls.py), answered before the application;
    # events: GET /events (api/event_stream.py)
    {"health", "metrics", "console", "agent", "static", "favicon.ico", "service", "tls", "events"}
)


def is_reserved(first_segment: str) -> bool:
    return first_segment in RESERVED_FIRST_SEGMENTS

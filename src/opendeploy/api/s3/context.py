"""What an S3 operation handler is given: the request, its bucket and key, the store, the caller."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.requests import Request

from opendeploy.api import sigv4
from opendeploy.api.server_state import ServerState
from opendeploy.store.blob_store.filesystem import FilesystemBlobStore

OWNER_DISPLAY_NAME = "opendeploy"


@dataclass
class S3Context:
    request: Request
    state: ServerState
    store: FilesystemBlobStore
    request_id: str
    bucket: str  # "" for service-level requests (ListBuckets)
    key: str  # "" for bucket-level requests
    query: dict[str, str]
    verified: sigv4.VerifiedSignature | None = None
    body: bytes | None = None  # small (XML) bodies, read once the request is authenticated and authorised
    body_started: bool = False  # whether reading the body began (and so "100 Continue" was sent)
    now: float = field(default_factory=time.time)

    @property
    def headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.request.headers.items()}

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    @property
    def owner_id(self) -> str:
        """A canonical user id shaped like S3's (64 hex digits), stable for the server's account."""
        return hashlib.sha256(f"opendeploy:{self.state.settings.account_id}".encode()).hexdigest()

    def base_headers(self) -> dict[str, str]:
        return {"x-amz-request-id": self.request_id, "x-amz-id-2": self.request_id}


def parse_query(raw_query: str) -> dict[str, str]:
    """The query parameters (the last of repeated ones), with ``?uploads`` style flags as ``""``."""
    return dict(parse_qsl(raw_query, keep_blank_values=True))

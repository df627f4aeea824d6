"""Operation registry: maps a CodeDeploy operation name to the function that serves it.

A handler takes the request context and the request's parameters (already validated against
botocore's model, in wire form) and returns the response dict in wire form (timestamps as epoch
seconds). It raises ``ApiError`` for client faults.

Each request runs in one database transaction, committed before the response is sent; when the
handler raises, nothing it did is kept. Operations named ``Get*``, ``List*`` and ``BatchGet*`` run
in a read transaction and must not write. Every module in this package is imported at server start
(``api.app.import_handlers``), so a new module registers its operations with no other edit.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from opendeploy.settings import Settings


@dataclass
class Principal:
    """Who signed the request."""

    access_key_id: str
    arn: str
    is_admin: bool = False
    instance_name: str | None = None  # set when an on-premises instance's own key signed the request


@dataclass
class OperationContext:
    """What a handler may use: one database session (one transaction), settings, the caller, the time."""

    session: Session
    settings: Settings
    principal: Principal
    now: float  # epoch seconds, fixed for the whole request
    operation: str = ""  # the operation being served, e.g. "ListApplications"
    # Signs nextToken values (api.pagination). The server passes a key derived from its master key so
    # tokens survive restarts and work across replicas; the default suits in-process unit tests.
    pagination_key: bytes = field(default_factory=lambda: _PROCESS_PAGINATION_KEY)


_PROCESS_PAGINATION_KEY = secrets.token_bytes(32)


Handler = Callable[[OperationContext, dict[str, Any]], dict[str, Any] | None]

OPERATIONS: dict[str, Handler] = {}


def operation(name: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the implementation of CodeDeploy operation ``name``."""

    def register(handler: Handler) -> Handler:
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name} registered twice")
        OPERATIONS[name] = handler
        return handler

    return register

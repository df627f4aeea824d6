"""IAM's list pagination: ``MaxItems`` (default 100) and an opaque ``Marker``, with ``IsTruncated``.

Markers are the project's signed pagination tokens (``api.pagination``), bound to the operation and
its filters, so a made-up or altered marker is refused (``ValidationError``) instead of listing from
an arbitrary place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from opendeploy.api.iam.registry import IamContext, iam_error
from opendeploy.api.pagination import make_token, read_position

DEFAULT_MAX_ITEMS = 100
_NOT_SCOPE = ("Marker", "MaxItems")  # the same listing may be read in pages of any size

T = TypeVar("T")


def _scope(params: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if name not in _NOT_SCOPE}


def max_items(params: dict[str, Any]) -> int:
    return int(params.get("MaxItems") or DEFAULT_MAX_ITEMS)


def position(ctx: IamContext, params: dict[str, Any]) -> Any | None:
    """Where the request's ``Marker`` resumes the listing; ``None`` for the first page."""
    return read_position(ctx, {**_scope(params), "nextToken": params.get("Marker")})


def truncation(ctx: IamContext, params: dict[str, Any], next_position: Any | None) -> dict[str, Any]:
    """``IsTruncated`` and, when there is more, the ``Marker`` that resumes at ``next_position``."""
    if next_position is None:
        return {"IsTruncated": False}
    return {"IsTruncated": True, "Marker": make_token(ctx, _scope(params), next_position)}


def offset_page(
    ctx: IamContext, params: dict[str, Any], items: Sequence[T]
) -> tuple[list[T], dict[str, Any]]:
    """One page of an in-memory listing, with its ``IsTruncated`` / ``Marker`` members."""
    start = position(ctx, params) or 0
    if not isinstance(start, int) or start < 0:
        raise iam_error("ValidationError", "The marker is not valid for this listing")
    end = start + max_items(params)
    return list(items[start:end]), truncation(ctx, params, end if end < len(items) else None)

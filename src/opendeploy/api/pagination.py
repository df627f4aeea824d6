"""Opaque ``nextToken`` values a client cannot forge into another listing.

A token carries a position (the sort key of the last item returned, or an offset) and is bound by
an HMAC, keyed with the server's pagination key, to the listing it came from: the operation and every
other request parameter (its filters). A token altered, made up, or replayed against another listing
or other filters is refused with ``InvalidNextTokenException`` (or the operation's closest error).

Handlers use:

- ``keyset_page(ctx, params, stmt, order_by)``: one page of a SQLAlchemy select, ordered by unique
  columns, continuing after the token's position; returns ``(items, next_token_or_None)``.
- ``offset_page(ctx, params, items)``: one page of an in-memory sequence.
- ``read_position(ctx, params)`` / ``make_token(ctx, params, position)`` for anything else.

The page size is ``ctx.settings.page_size``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, tuple_

from opendeploy.api.codedeploy.registry import OperationContext
from opendeploy.api.errors import ApiError
from opendeploy.api.validation import modeled_error

TOKEN_MEMBERS = ("nextToken", "NextToken")
_MAC_BYTES = 16


def _scope(ctx: OperationContext, params: Mapping[str, Any]) -> bytes:
    """What a token is bound to: the operation and every request parameter except the token."""
    filters = {k: v for k, v in params.items() if k not in TOKEN_MEMBERS}
    return json.dumps([ctx.operation, filters], sort_keys=True, separators=(",", ":"), default=str).encode()


def _mac(ctx: OperationContext, scope: bytes, payload: bytes) -> bytes:
    return hmac.new(ctx.pagination_key, scope + b"\0" + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(ctx: OperationContext, params: Mapping[str, Any], position: Any) -> str:
    """A token that resumes this listing (same operation, same filters) at ``position``."""
    payload = json.dumps(position, separators=(",", ":")).encode()
    return _b64(payload) + "." + _b64(_mac(ctx, _scope(ctx, params), payload))


def _invalid_token(ctx: OperationContext) -> ApiError:
    code = modeled_error(ctx.operation, "InvalidNextTokenException")
    return ApiError(code, "The next token is not valid for this listing")


def read_position(ctx: OperationContext, params: Mapping[str, Any]) -> Any | None:
    """The position the request's token resumes at; ``None`` for the first page."""
    token = next((params[m] for m in TOKEN_MEMBERS if params.get(m) is not None), None)
    if token is None:
        return None
    if not isinstance(token, str) or token.count(".") != 1:
        raise _invalid_token(ctx)
    encoded_payload, encoded_mac = token.split(".")
    try:
        payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
    except (ValueError, TypeError) as error:
        raise _invalid_token(ctx) from error
    if not hmac.compare_digest(mac, _mac(ctx, _scope(ctx, params), payload)):
        raise _invalid_token(ctx)
    return json.loads(payload)


def page_size(ctx: OperationContext) -> int:
    return ctx.settings.page_size


def offset_page(
    ctx: OperationContext, params: Mapping[str, Any], items: Sequence[Any]
) -> tuple[list[Any], str | None]:
    """One page of ``items`` (already filtered and sorted) and the token for the next, if any."""
    start = read_position(ctx, params) or 0
    if not isinstance(start, int) or start < 0:
        raise _invalid_token(ctx)
    end = start + page_size(ctx)
    page = list(items[start:end])
    return page, (make_token(ctx, params, end) if end < len(items) else None)


def keyset_page(
    ctx: OperationContext,
    params: Mapping[str, Any],
    stmt: Select[Any],
    order_by: Sequence[Any],
    *,
    descending: bool = False,
    key: Callable[[Any], Sequence[Any]] | None = None,
) -> tuple[list[Any], str | None]:
    """One page of ``stmt`` ordered by ``order_by`` (columns whose values together are unique).

    Items are scalars when the statement selects one thing (an entity or a column), rows otherwise.
    ``key(item)`` gives an item's values of ``order_by``; by default they are read as attributes
    (an entity), or the item itself when it is a single column value.
    """
    columns = list(order_by)
    position = read_position(ctx, params)
    if position is not None:
        if not isinstance(position, list) or len(position) != len(columns):
            raise _invalid_token(ctx)
        left = columns[0] if len(columns) == 1 else tuple_(*columns)
        right = position[0] if len(columns) == 1 else tuple_(*position)
        stmt = stmt.where(left < right if descending else left > right)
    stmt = stmt.order_by(*(c.desc() if descending else c.asc() for c in columns))
    size = page_size(ctx)
    single = len(stmt.column_descriptions) == 1  # one entity or one column: hand back scalars
    result = ctx.session.execute(stmt.limit(size + 1))
    items = list(result.scalars() if single else result)
    if len(items) <= size:
        return items, None
    items = items[:size]
    last = items[-1]
    if key is not None:
        values = list(key(last))
    elif single and not hasattr(last, "__table__"):
        values = [last]
    else:
        values = [getattr(last, column.key) for column in columns]
    return items, make_token(ctx, params, values)

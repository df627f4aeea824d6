"""LookupEvents: the audit trail's events, most recent first, filtered by one lookup attribute and a time
range, in pages of ``MaxResults`` (1–50, default 50) with an opaque ``NextToken``.

As CloudTrail: at most one lookup attribute (``InvalidLookupAttributesException`` otherwise, and for a
``ReadOnly`` value other than ``true``/``false``); ``StartTime`` after ``EndTime`` is
``InvalidTimeRangeException``; both bounds are inclusive, to the second (as ``eventTime`` shows it).
A ``NextToken`` is bound (HMAC, ``api.pagination``) to the filters it came with, so one altered, made
up, or used with other filters is ``InvalidNextTokenException``; ``MaxResults`` may change between
pages. ``EventCategory: insight`` finds nothing (the trail holds no Insights events).

Deviation: AWS's event history holds management events only; this trail also holds S3 data events
(object reads and writes), told apart by the record's ``eventCategory``.
"""

from __future__ import annotations

import math
from typing import Any

from botocore.utils import parse_timestamp

from opendeploy.api.codedeploy.registry import Handler, OperationContext
from opendeploy.api.errors import ApiError
from opendeploy.api.pagination import make_token, read_position
from opendeploy.store.audit_trail import StoredEvent, lookup

DEFAULT_MAX_RESULTS = 50
OPERATIONS: dict[str, Handler] = {}


def _epoch(value: Any, member: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return parse_timestamp(value).timestamp()
    except (TypeError, ValueError):
        raise ApiError("InvalidTimeRangeException", f"{member} is not a valid time: {value!r}") from None


def _attribute(params: dict[str, Any]) -> tuple[str, str] | None:
    attributes = params.get("LookupAttributes") or []
    if len(attributes) > 1:
        raise ApiError(
            "InvalidLookupAttributesException", "LookupAttributes can contain only one lookup attribute"
        )
    if not attributes:
        return None
    key, value = attributes[0]["AttributeKey"], attributes[0]["AttributeValue"]
    if key == "ReadOnly" and value not in ("true", "false"):
        raise ApiError(
            "InvalidLookupAttributesException", f"The ReadOnly attribute is true or false, not {value!r}"
        )
    return key, value


def _position(ctx: OperationContext, bound: dict[str, Any]) -> tuple[float, int] | None:
    try:
        position = read_position(ctx, bound)
    except ApiError:
        position = False
    if position is None:
        return None
    valid = (
        isinstance(position, list)
        and len(position) == 2
        and isinstance(position[0], int | float)
        and isinstance(position[1], int)
    )
    if not valid:
        raise ApiError("InvalidNextTokenException", "The NextToken is not valid for this lookup")
    return float(position[0]), position[1]


def _event(event: StoredEvent) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "EventId": event.event_id,
        "EventName": event.event_name,
        "ReadOnly": "true" if event.read_only else "false",
    }
    if event.access_key_id:
        shown["AccessKeyId"] = event.access_key_id
    shown["EventTime"] = event.event_time
    shown["EventSource"] = event.event_source
    if event.username:
        shown["Username"] = event.username
    shown["Resources"] = [{"ResourceType": kind, "ResourceName": name} for kind, name in event.resources]
    shown["CloudTrailEvent"] = event.record
    return shown


def lookup_events(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    attribute = _attribute(params)
    start = _epoch(params["StartTime"], "StartTime") if params.get("StartTime") is not None else None
    end = _epoch(params["EndTime"], "EndTime") if params.get("EndTime") is not None else None
    if start is not None and end is not None and start > end:
        raise ApiError("InvalidTimeRangeException", "StartTime must not be after EndTime")
    # A token is bound to every member but the page size (and itself: api.pagination leaves it out).
    bound = {name: value for name, value in params.items() if name != "MaxResults"}
    after = _position(ctx, bound)
    if params.get("EventCategory") == "insight":
        return {"Events": []}
    page = lookup(
        ctx.session,
        attribute=attribute,
        # Event times are shown to the second (eventTime), and clients send whole seconds (botocore
        # drops the fraction): a bound names a whole second, so EndTime takes in all of its second.
        start=math.floor(start) if start is not None else None,
        until=math.floor(end) + 1 if end is not None else None,
        limit=params.get("MaxResults") or DEFAULT_MAX_RESULTS,
        after=after,
    )
    result: dict[str, Any] = {"Events": [_event(event) for event in page.events]}
    if page.next_position is not None:
        result["NextToken"] = make_token(ctx, bound, list(page.next_position))
    return result


OPERATIONS["LookupEvents"] = lookup_events

"""Smithy RPC v2 CBOR: ``POST /service/<ServiceName>/operation/<Operation>`` with CBOR bodies.

botocore's CodeDeploy model lists this protocol first (before awsJson 1.1), so SDKs that prefer it
may use it. Requests and responses carry the same members as awsJson; timestamps are CBOR tag 1
(epoch seconds). Requests are decoded to the same wire form handlers get from awsJson (timestamps
as epoch seconds) and run through the same pipeline (SigV4, model validation, one transaction);
timestamps in responses are tagged by walking the operation's output shape. Arrays, maps and tags may
nest at most ``json_text.MAX_NESTING_DEPTH`` levels, as in awsJson (the decoder enforces it as it reads).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import cbor2
from botocore.model import Shape
from starlette.responses import Response

from opendeploy.api.errors import ApiError
from opendeploy.api.validation import operation_model
from opendeploy.domain.json_text import MAX_NESTING_DEPTH, NestingTooDeep

CONTENT_TYPE = "application/cbor"
PROTOCOL_HEADER = "smithy-protocol"
PROTOCOL = "rpc-v2-cbor"


def _plain(value: Any) -> Any:
    """CBOR-decoded data in awsJson's wire form: datetimes as epoch seconds, bytes left as they are."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _tagged(value: Any, shape: Shape | None) -> Any:
    """Handler output with the output shape's timestamp members as CBOR tag 1."""
    if shape is None or value is None:
        return value
    if shape.type_name == "timestamp" and isinstance(value, int | float):
        return cbor2.CBORTag(1, value)
    if shape.type_name == "timestamp" and isinstance(value, dt.datetime):
        return cbor2.CBORTag(1, value.timestamp())
    if shape.type_name == "structure" and isinstance(value, Mapping):
        return {k: _tagged(v, shape.members.get(k)) for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_tagged(item, shape.member) for item in value]
    if shape.type_name == "map" and isinstance(value, Mapping):
        return {k: _tagged(v, shape.value) for k, v in value.items()}
    return value


class CborCodec:
    """The ``awsjson.Codec`` for RPC v2 CBOR."""

    def __init__(self, service_name: str | None) -> None:
        self.service_name = service_name

    def decode(self, body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        try:
            params = cbor2.loads(body, max_depth=MAX_NESTING_DEPTH)
        except (cbor2.CBORDecodeError, ValueError, TypeError) as error:
            if "nesting depth" in str(error):  # cbor2's words for max_depth
                message = str(NestingTooDeep("The request body", "arrays, maps and tags"))
                raise ApiError("SerializationException", message) from None
            raise ApiError("SerializationException", f"The request body is not valid CBOR: {error}") from None
        if not isinstance(params, dict):
            raise ApiError("SerializationException", "The request body must be a CBOR map")
        return _plain(params)

    def response(self, status: int, payload: Mapping[str, Any], operation: str, request_id: str) -> Response:
        if status == 200 and self.service_name:
            model = operation_model(operation, self.service_name)
            payload = _tagged(payload, model.output_shape if model else None)
        return Response(
            cbor2.dumps(payload),
            status_code=status,
            media_type=CONTENT_TYPE,
            headers={"x-amzn-RequestId": request_id, PROTOCOL_HEADER: PROTOCOL},
        )

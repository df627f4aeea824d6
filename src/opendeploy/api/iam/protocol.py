"""IAM's Query protocol on the wire: form-encoded requests in, XML documents out.

A request is ``Action=<Operation>&Version=2010-05-08&…`` with the operation's members flattened the
way botocore's query serializer writes them: a nested structure as ``A.B``, a list as ``A.member.N``
(N from 1), a map as ``A.entry.N.key`` / ``A.entry.N.value``, an empty list as ``A=``. ``decode``
rebuilds the nested parameters from the operation's input shape (botocore's model), so the request
can then be checked with botocore's validator; anything the shape does not name is refused.

A response is ``<OpResponse xmlns=…><OpResult>…</OpResult><ResponseMetadata><RequestId>…`` with the
output shape's members, lists as ``<member>`` elements, timestamps in ISO 8601 and booleans as
``true``/``false``, which is what botocore's query parser reads. An error is IAM's
``<ErrorResponse><Error><Type>Sender</Type><Code>…</Code><Message>…</Message></Error><RequestId>…``.
STS speaks the same protocol with its own XML namespace (``namespace=`` of ``response`` and
``error_response``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

from botocore.model import OperationModel, Shape
from starlette.responses import Response

from opendeploy.api.errors import ApiError
from opendeploy.domain.timestamps import iso_second

NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
XML_CONTENT_TYPE = "text/xml"
_ABSENT = object()
# Characters XML 1.0 cannot carry; a message echoing hostile input must still be a readable document.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# --- requests ---------------------------------------------------------------------------------------


def parse_form(body: bytes) -> dict[str, str]:
    """The form fields of a request body; ``MalformedQueryString`` if it is not a well-formed form."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (UnicodeDecodeError, ValueError) as error:
        raise ApiError(
            "MalformedQueryString", f"The request body is not a well-formed form: {error}"
        ) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise ApiError("MalformedQueryString", f"The parameter {name} is given more than once")
        form[name] = value
    return form


def read_action(form: Mapping[str, str], service: str, api_version: str) -> str:
    """The Query request's ``Action``, once its ``Version`` is ``api_version`` (``service`` names the
    service in the refusal: IAM, STS)."""
    action = form.get("Action", "")
    if not action:
        raise ApiError("MissingAction", "The request must contain the parameter Action.")
    version = form.get("Version")
    if version is None:
        raise ApiError("MissingParameter", "The request must contain the parameter Version.")
    if version != api_version:
        raise ApiError(
            "NoSuchVersion",
            f"The requested version ({version}) of service {service} does not exist; use {api_version}.",
        )
    return action


def decode(form: Mapping[str, str], operation: OperationModel) -> dict[str, Any]:
    """The operation's parameters from ``form`` (without ``Action`` and ``Version``), nested as the
    input shape describes them."""
    fields = {name: value for name, value in form.items() if name not in ("Action", "Version")}
    used: set[str] = set()
    params: dict[str, Any] = {}
    if operation.input_shape is not None:
        params = _structure(fields, operation.input_shape, "", used)
    unknown = sorted(set(fields) - used)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise ApiError("ValidationError", f"{operation.name} does not take the parameter(s) {names}")
    return params


def _name(shape: Shape, default: str) -> str:
    return shape.serialization.get("name", default)


def _structure(fields: Mapping[str, str], shape: Shape, prefix: str, used: set[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for member, member_shape in shape.members.items():
        value = _value(fields, member_shape, prefix + _name(member_shape, member), used)
        if value is not _ABSENT:
            result[member] = value
    return result


def _value(fields: Mapping[str, str], shape: Shape, name: str, used: set[str]) -> Any:
    if shape.type_name == "structure":
        if not any(key.startswith(name + ".") for key in fields):
            return _ABSENT
        return _structure(fields, shape, name + ".", used)
    if shape.type_name == "list":
        return _list(fields, shape, name, used)
    if shape.type_name == "map":
        return _map(fields, shape, name, used)
    if name not in fields:
        return _ABSENT
    used.add(name)
    return _scalar(fields[name], shape, name)


def _list(fields: Mapping[str, str], shape: Shape, name: str, used: set[str]) -> Any:
    if fields.get(name) == "":  # how the query protocol writes an empty list
        used.add(name)
        return []
    if shape.serialization.get("flattened"):
        item_name = ".".join([*name.split(".")[:-1], _name(shape.member, name.split(".")[-1])])
    else:
        item_name = f"{name}.{_name(shape.member, 'member')}"
    items = []
    while True:
        item = _value(fields, shape.member, f"{item_name}.{len(items) + 1}", used)
        if item is _ABSENT:
            break
        items.append(item)
    return items or _ABSENT


def _map(fields: Mapping[str, str], shape: Shape, name: str, used: set[str]) -> Any:
    entry = name if shape.serialization.get("flattened") else f"{name}.entry"
    result: dict[str, Any] = {}
    index = 1
    while True:
        key = _value(fields, shape.key, f"{entry}.{index}.{_name(shape.key, 'key')}", used)
        if key is _ABSENT:
            break
        result[key] = _value(fields, shape.value, f"{entry}.{index}.{_name(shape.value, 'value')}", used)
        index += 1
    return result or _ABSENT


def _scalar(text: str, shape: Shape, name: str) -> Any:
    if shape.type_name in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            raise ApiError("ValidationError", f"{name} must be an integer, not {text!r}") from None
    if shape.type_name == "boolean":
        if text not in ("true", "false"):
            raise ApiError("ValidationError", f"{name} must be true or false, not {text!r}")
        return text == "true"
    return text  # strings; IAM's operations here take no timestamps, numbers with fractions or blobs


# --- responses --------------------------------------------------------------------------------------


def _render(root: ElementTree.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="utf-8")


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _append(parent: ElementTree.Element, tag: str, value: Any, shape: Shape) -> None:
    element = ElementTree.SubElement(parent, tag)
    if shape.type_name == "structure":
        _members(element, value, shape)
    elif shape.type_name == "list":
        for item in value:
            _append(element, _name(shape.member, "member"), item, shape.member)
    elif shape.type_name == "timestamp":
        element.text = iso_second(value)
    elif shape.type_name == "boolean":
        element.text = "true" if value else "false"
    else:
        element.text = _text(str(value))


def _members(parent: ElementTree.Element, values: Mapping[str, Any], shape: Shape) -> None:
    for member, member_shape in shape.members.items():
        if values.get(member) is not None:
            _append(parent, _name(member_shape, member), values[member], member_shape)


def response(
    operation: OperationModel, result: Mapping[str, Any], request_id: str, *, namespace: str = NAMESPACE
) -> Response:
    """The XML response of ``operation`` for ``result`` (members of its output shape, in wire form:
    timestamps as epoch seconds), in the API's ``namespace`` (IAM's unless told: STS has its own)."""
    root = ElementTree.Element(f"{operation.name}Response", xmlns=namespace)
    output = operation.output_shape
    if output is not None:
        wrapper = ElementTree.SubElement(
            root, output.serialization.get("resultWrapper", f"{operation.name}Result")
        )
        _members(wrapper, result, output)
    metadata = ElementTree.SubElement(root, "ResponseMetadata")
    ElementTree.SubElement(metadata, "RequestId").text = request_id
    return Response(_render(root), media_type=XML_CONTENT_TYPE, headers={"x-amzn-RequestId": request_id})


def error_response(error: ApiError, request_id: str, *, namespace: str = NAMESPACE) -> Response:
    """IAM's error document (STS's too, in its ``namespace``): ``Sender`` faults for 4xx, ``Receiver``
    for 5xx."""
    root = ElementTree.Element("ErrorResponse", xmlns=namespace)
    detail = ElementTree.SubElement(root, "Error")
    ElementTree.SubElement(detail, "Type").text = "Receiver" if error.status >= 500 else "Sender"
    ElementTree.SubElement(detail, "Code").text = error.code
    ElementTree.SubElement(detail, "Message").text = _text(error.message)
    ElementTree.SubElement(root, "RequestId").text = request_id
    return Response(
        _render(root),
        status_code=error.status,
        media_type=XML_CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id},
    )

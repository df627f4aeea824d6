"""S3's XML: building response documents and reading request documents.

Responses are in S3's namespace (``http://s3.amazonaws.com/doc/2006-03-01/``) with S3's timestamp
formats. Request documents (CompleteMultipartUpload, Delete, CreateBucketConfiguration) are parsed
with the namespace stripped; anything that is not well-formed, or has the wrong root, is
``MalformedXML``. The standard library parser does not resolve external entities, and bodies are
size-limited before they get here. Nor does it recurse (expat, ElementTree's C tree builder and
iterator), so deeply nested elements cost memory in proportion to the body, never the stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import formatdate
from xml.etree import ElementTree

from starlette.responses import Response

from opendeploy.api.s3.errors import XML_CONTENT_TYPE, S3Error

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"

Element = ElementTree.Element


def document(tag: str) -> Element:
    return ElementTree.Element(tag, xmlns=NAMESPACE)


def child(parent: Element, tag: str, text: str | int | bool | None = None) -> Element:
    """Append ``<tag>text</tag>`` (booleans as ``true``/``false``) to ``parent``."""
    element = ElementTree.SubElement(parent, tag)
    if isinstance(text, bool):
        element.text = "true" if text else "false"
    elif text is not None:
        element.text = str(text)
    return element


def render(root: Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="utf-8")


def xml_response(root: Element, headers: Mapping[str, str], status: int = 200) -> Response:
    return Response(render(root), status_code=status, media_type=XML_CONTENT_TYPE, headers=dict(headers))


def iso8601(epoch: float) -> str:
    """S3's listing timestamps: ``2024-05-01T12:00:00.000Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def http_date(epoch: float) -> str:
    """HTTP's date format, as in ``Last-Modified``."""
    return formatdate(epoch, usegmt=True)


def malformed(message: str = "") -> S3Error:
    return S3Error(
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema"
        + (f": {message}" if message else "."),
    )


def parse(body: bytes, root_tag: str) -> Element:
    """The request document, namespaces removed; ``MalformedXML`` unless its root is ``root_tag``."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise malformed(str(error)) from None
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    if root.tag != root_tag:
        raise malformed(f"expected a {root_tag} document, got {root.tag}")
    return root


def text_of(element: Element, tag: str) -> str | None:
    found = element.find(tag)
    return None if found is None else (found.text or "")

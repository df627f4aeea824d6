"""S3's errors: an exception with S3's code, HTTP status and extra fields, rendered as S3's XML.

``<Error><Code>NoSuchKey</Code><Message>…</Message><Key>…</Key><RequestId>…</RequestId></Error>``;
a HEAD request's error has the status and no body, as S3 answers. Failures from the signature check
(``ApiError`` with S3's codes) and from the bundle store (``BlobStoreError``) are converted here.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

from starlette.responses import Response

from opendeploy.api.errors import ApiError
from opendeploy.store.blob_store.base import BlobStoreError

XML_CONTENT_TYPE = "application/xml"

# S3 answers these signature failures with 400 rather than sigv4.S3_ERRORS' common 403.
_BAD_REQUEST_AUTH_CODES = frozenset({"AuthorizationHeaderMalformed", "XAmzContentSHA256Mismatch"})
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_safe(text: str) -> str:
    """``text`` with the characters XML cannot carry (NUL, most controls) written as ``\\xNN`` escapes."""
    return _XML_FORBIDDEN.sub(lambda match: repr(match.group())[1:-1], text)


class S3Error(Exception):
    """A client-visible S3 failure."""

    def __init__(
        self, code: str, message: str, status: int = 400, *, close_connection: bool = False, **details: str
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.close_connection = close_connection  # the request's body was left half read
        self.details = details

    @classmethod
    def from_api_error(cls, error: ApiError) -> S3Error:
        status = 400 if error.code in _BAD_REQUEST_AUTH_CODES else error.status
        return cls(error.code, error.message, status)

    @classmethod
    def from_store_error(cls, error: BlobStoreError) -> S3Error:
        return cls(error.code, error.message, error.status, **error.details)


def not_implemented(what: str) -> S3Error:
    return S3Error("NotImplemented", f"{what} is not implemented by this server.", 501)


def invalid_argument(message: str, name: str, value: str) -> S3Error:
    return S3Error("InvalidArgument", message, 400, ArgumentName=name, ArgumentValue=value)


def error_response(error: S3Error, request_id: str, *, method: str, resource: str) -> Response:
    headers = {"x-amz-request-id": request_id}
    if error.close_connection:
        headers["Connection"] = "close"
    if method == "HEAD":
        return Response(status_code=error.status, headers=headers)
    root = ElementTree.Element("Error")
    ElementTree.SubElement(root, "Code").text = error.code
    ElementTree.SubElement(root, "Message").text = xml_safe(error.message)
    for name, value in error.details.items():
        ElementTree.SubElement(root, name).text = xml_safe(value)
    ElementTree.SubElement(root, "Resource").text = xml_safe(resource)
    ElementTree.SubElement(root, "RequestId").text = request_id
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="utf-8")
    return Response(body, status_code=error.status, media_type=XML_CONTENT_TYPE, headers=headers)

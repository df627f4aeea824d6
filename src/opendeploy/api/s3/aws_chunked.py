"""Streaming decoder for ``aws-chunked`` request bodies (S3's chunked uploads), chunk by chunk.

The body is ``<hex-size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n`` … ``0[;chunk-signature=…]\\r\\n``
then optional trailing headers (``x-amz-checksum-crc32:…``, ``x-amz-trailer-signature:…``) and a blank
line. With ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`` each chunk's signature is chained from the
request's signature (``sigv4.VerifiedSignature``) and checked as soon as the chunk is complete, and
the trailer's signature is checked too; ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` (what botocore sends
over TLS) has no signatures. Data is handed on as it arrives, so nothing is held whole in memory;
the caller commits the object only when ``finish`` succeeds.

``sigv4.decode_aws_chunked`` decodes a whole body in memory; this is its incremental counterpart.
"""

from __future__ import annotations

import hashlib
import hmac

from botocore.auth import EMPTY_SHA256_HASH

from opendeploy.api import sigv4

MAX_LINE = 8 * 1024  # a chunk header or trailer line
MAX_TRAILERS = 16 * 1024


class ChunkedPayloadError(ValueError):
    """The body is not valid aws-chunked encoding, or a signature in it does not match."""


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


class AwsChunkedDecoder:
    """Feed it the raw body as it arrives; it returns the object's data pieces, then the trailers."""

    def __init__(self, verified: sigv4.VerifiedSignature) -> None:
        self._verified = verified
        self._signed = verified.payload_hash in (sigv4.STREAMING_SIGNED, sigv4.STREAMING_SIGNED_TRAILER)
        self._previous = verified.signature
        self._buffer = bytearray()
        self._state = "header"
        self._remaining = 0
        self._chunk_hash = hashlib.sha256()
        self._chunk_signature = ""
        self._trailer_lines: list[str] = []
        self.decoded_length = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Consume ``data``; return the object bytes it completed (possibly none)."""
        if self._state == "done":
            if data.strip(b"\r\n"):
                raise ChunkedPayloadError("data after the end of the aws-chunked body")
            return []
        self._buffer += data
        out: list[bytes] = []
        while True:
            if self._state == "header":
                line = self._line()
                if line is None:
                    break
                self._start_chunk(line)
            elif self._state == "data":
                if not self._buffer:
                    break
                piece = bytes(self._buffer[: self._remaining])
                del self._buffer[: len(piece)]
                self._remaining -= len(piece)
                self.decoded_length += len(piece)
                if self._signed:
                    self._chunk_hash.update(piece)
                out.append(piece)
                if self._remaining == 0:
                    self._state = "data-end"
            elif self._state == "data-end":
                if len(self._buffer) < 2:
                    break
                if self._buffer[:2] != b"\r\n":
                    raise ChunkedPayloadError("chunk data is not followed by CRLF")
                del self._buffer[:2]
                self._end_chunk()
                self._state = "header"
            elif self._state == "trailers":
                line = self._line()
                if line is None:
                    break
                if line:
                    self._trailer_lines.append(line)
                    if sum(len(item) for item in self._trailer_lines) > MAX_TRAILERS:
                        raise ChunkedPayloadError("the trailing headers are too large")
                    continue
                self._state = "done"
                if bytes(self._buffer).strip(b"\r\n"):
                    raise ChunkedPayloadError("data after the end of the aws-chunked body")
                break
            else:  # done
                break
        return out

    def finish(self) -> dict[str, str]:
        """Check the body ended properly; return its trailing headers (names in lower case)."""
        if self._state == "trailers" and not self._buffer:
            self._state = "done"  # a client may omit the final blank line after no trailers
        if self._state != "done":
            raise ChunkedPayloadError("the aws-chunked body ended before its final chunk")
        trailers: dict[str, str] = {}
        signature = None
        canonical = []
        for line in self._trailer_lines:
            name, separator, value = line.partition(":")
            if not separator:
                raise ChunkedPayloadError(f"trailing header line {line!r} has no ':'")
            name, value = name.strip().lower(), value.strip()
            if name == "x-amz-trailer-signature":
                signature = value
                continue
            trailers[name] = value
            canonical.append(f"{name}:{value}\n")
        if self._verified.payload_hash == sigv4.STREAMING_SIGNED_TRAILER:
            if signature is None:
                raise ChunkedPayloadError("the trailing headers carry no x-amz-trailer-signature")
            string_to_sign = "\n".join(
                [
                    "AWS4-HMAC-SHA256-TRAILER",
                    self._verified.timestamp,
                    self._verified.scope,
                    self._previous,
                    hashlib.sha256("".join(canonical).encode()).hexdigest(),
                ]
            )
            if not hmac.compare_digest(_hmac_hex(self._verified.signing_key, string_to_sign), signature):
                raise ChunkedPayloadError("the trailer signature does not match")
        return trailers

    def _line(self) -> str | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > MAX_LINE:
                raise ChunkedPayloadError("a chunk header is too long or not terminated by CRLF")
            return None
        line = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 2]
        return line

    def _start_chunk(self, line: str) -> None:
        size_text, _, extension = line.partition(";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError:
            raise ChunkedPayloadError(f"chunk size {size_text!r} is not hexadecimal") from None
        if size < 0:
            raise ChunkedPayloadError("negative chunk size")
        self._chunk_signature = ""
        if self._signed:
            name, _, signature = extension.partition("=")
            if name.strip() != "chunk-signature" or not signature.strip():
                raise ChunkedPayloadError("a chunk has no chunk-signature")
            self._chunk_signature = signature.strip()
        self._chunk_hash = hashlib.sha256()
        self._remaining = size
        if size == 0:
            self._end_chunk()
            self._state = "trailers"
        else:
            self._state = "data"

    def _end_chunk(self) -> None:
        if not self._signed:
            return
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                self._verified.timestamp,
                self._verified.scope,
                self._previous,
                EMPTY_SHA256_HASH,
                self._chunk_hash.hexdigest(),
            ]
        )
        expected = _hmac_hex(self._verified.signing_key, string_to_sign)
        if not hmac.compare_digest(expected, self._chunk_signature):
            raise ChunkedPayloadError("a chunk signature does not match")
        self._previous = expected

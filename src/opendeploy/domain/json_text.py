"""JSON text from outside (requests, policy documents, agents' diagnostics) parsed with bounded nesting.

Python's parser recurses once per level and fails with ``RecursionError`` around 1,000 levels; deep but
shorter nesting parses and then threatens every recursive walk over the value. ``parse_json`` refuses
both with ``NestingTooDeep`` (a ``ValueError``), so callers handle it like any malformed JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

# How deeply arrays and objects (CBOR: arrays, maps and tags) may nest. CodeDeploy's deepest input shape
# nests 6 levels (UpdateDeploymentGroup), IAM's 5; a JSON parser's recursion limit is about 1,000.
MAX_NESTING_DEPTH = 64
# For measuring a JSON document's nesting: its string literals, and its brackets.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_ONE_BRACKET = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


class NestingTooDeep(ValueError):
    """A document nests its containers deeper than ``MAX_NESTING_DEPTH`` levels."""

    def __init__(self, kind: str, containers: str = "arrays and objects") -> None:
        super().__init__(
            f"{kind} is nested too deeply: {containers} may nest at most {MAX_NESTING_DEPTH} levels"
        )


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Whether the (valid) JSON document ``text`` nests arrays and objects more than ``limit`` deep.

    In C-speed string operations, never a Python loop over characters or values: drop the string
    literals; keep only the brackets, all as ``[``/``]`` (outside strings valid JSON is ASCII); then
    each ``replace`` removes one level, the innermost pairs, so what is left after ``limit`` rounds
    was nested deeper. Worst case (an 8 MiB body of chains just under the limit) about half the time
    ``json.loads`` takes to parse it; ordinary documents stop after a few rounds.
    """
    structure = _JSON_STRING.sub("", text).encode("ascii", "ignore").translate(_ONE_BRACKET, _NOT_BRACKETS)
    for _ in range(limit):
        if not structure:
            return False
        structure = structure.replace(b"[]", b"")
    return bool(structure)


def parse_json(document: str | bytes, kind: str = "The JSON document") -> Any:
    """``json.loads`` with nesting bounded by ``MAX_NESTING_DEPTH``.

    Raises ``ValueError``: ``json.JSONDecodeError`` or ``UnicodeDecodeError`` for what is not JSON,
    ``NestingTooDeep`` for nesting deeper than the limit (``kind`` names the document in its
    message). A document nested deeper than the parser's recursion limit fails inside the parser;
    below that, the nesting is measured only when the document has more brackets than the limit.
    """
    text = (
        document.decode(json.detect_encoding(document), "surrogatepass")
        if isinstance(document, bytes)
        else document
    )
    try:
        value = json.loads(text)
    except RecursionError:
        raise NestingTooDeep(kind) from None
    opened = text.count("[") + text.count("{")
    if opened > MAX_NESTING_DEPTH and _nesting_exceeds(text, MAX_NESTING_DEPTH):
        raise NestingTooDeep(kind)
    return value

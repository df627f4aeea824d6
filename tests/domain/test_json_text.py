"""JSON text with bounded nesting: what parses, and what is refused as nested too deeply."""

from __future__ import annotations

import json

import pytest

from opendeploy.domain.json_text import MAX_NESTING_DEPTH, NestingTooDeep, parse_json


@pytest.mark.parametrize(
    ("document", "parses"),
    [
        ("[" * MAX_NESTING_DEPTH + "]" * MAX_NESTING_DEPTH, True),  # exactly the limit
        ("[" * (MAX_NESTING_DEPTH + 1) + "]" * (MAX_NESTING_DEPTH + 1), False),
        ('{"a":' * (MAX_NESTING_DEPTH + 1) + "1" + "}" * (MAX_NESTING_DEPTH + 1), False),
        ("[" * 5000 + "]" * 5000, False),  # beyond the parser's own recursion limit
        # Many brackets, little depth: siblings are not nesting, and brackets inside strings do not count.
        ("[" + ",".join(["[[1]]"] * 1000) + "]", True),
        (json.dumps({"text": "[" * 500, "list": [[["x"]]]}), True),
        (json.dumps(['"[[[[', {"k": "\\\\]"}]), True),
    ],
)
def test_nesting_is_bounded(document: str, parses: bool) -> None:
    if parses:
        assert parse_json(document) == json.loads(document)
    else:
        with pytest.raises(NestingTooDeep, match=f"at most {MAX_NESTING_DEPTH} levels"):
            parse_json(document, "The policy")


def test_malformed_json_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_json("{not json")
    with pytest.raises(ValueError):
        parse_json(b"\xff\xfe\x00")

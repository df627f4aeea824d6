"""Reading AppSpec text (YAML, or JSON for Lambda and ECS) into a tree of nodes that remember where they were.

The validators work on this tree rather than on plain Python values because they need three things a plain
``yaml.safe_load`` loses: the line of every value (for error messages), the text of every scalar exactly as
written (so an unquoted ``mode: 0644`` stays ``"0644"`` instead of YAML 1.1's octal 420, and ``timeout: 0600``
is not 384), and duplicate keys (which YAML and JSON loaders silently collapse, dropping hook scripts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import yaml

from opendeploy.appspec.errors import AppSpecError

MAX_NODES = 100_000
"""Nodes a document may expand to; stops alias "billion laughs" documents."""

MAX_DEPTH = 64
"""Nesting depth a document may reach; an AppSpec needs about eight."""

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_YAML + name for name in ("str", "int", "float", "bool", "null"))
_TEXT_TAGS = frozenset(_YAML + name for name in ("timestamp", "value"))
"""Tags YAML 1.1 gives to plain text that merely looks like a date (or is ``=``): kept as the text."""


@dataclass(eq=False)
class Scalar:
    """A leaf value: ``value`` as the format reads it, ``text`` as it was written (unquoted)."""

    value: str | int | float | bool | None
    text: str
    line: int | None
    plain: bool
    """True for an unquoted YAML scalar or a JSON non-string: its type came from how it looks."""


@dataclass(eq=False)
class Mapping:
    """A mapping, with its keys in file order; duplicates are kept so that they can be reported."""

    entries: list[tuple[Scalar, Node]] = field(default_factory=list)
    line: int | None = None


@dataclass(eq=False)
class Sequence:
    """A list."""

    items: list[Node] = field(default_factory=list)
    line: int | None = None


Node = Scalar | Mapping | Sequence


def is_null(node: Node | None) -> bool:
    """True for an absent value or an explicit YAML/JSON null (``key:`` with nothing after it)."""
    return node is None or (isinstance(node, Scalar) and node.value is None)


def parse_yaml(text: str, source_name: str) -> Node | None:
    """Parse one YAML document into nodes; None for an empty document (only blanks and comments)."""
    loader = yaml.SafeLoader(_strip_bom(text))
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        return _YamlConverter(loader, source_name).convert(root, 0, frozenset())
    except yaml.MarkedYAMLError as error:
        raise AppSpecError.single(source_name, "", _mark_line(error), _yaml_message(error)) from error
    except yaml.YAMLError as error:
        raise AppSpecError.single(source_name, "", None, f"not valid YAML: {error}") from error
    except RecursionError as error:
        raise AppSpecError.single(source_name, "", None, "the document is nested too deeply") from error
    finally:
        loader.dispose()


def parse_json(text: str, source_name: str) -> Node | None:
    """Parse a JSON document into nodes, with line numbers whenever YAML reads the same text identically."""
    text = _strip_bom(text)
    try:
        data = json.loads(text, object_pairs_hook=_Pairs, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise AppSpecError.single(source_name, "", error.lineno, f"not valid JSON: {error.msg}") from error
    except ValueError as error:
        raise AppSpecError.single(source_name, "", None, f"not valid JSON: {error}") from error
    except RecursionError as error:
        raise AppSpecError.single(source_name, "", None, "the document is nested too deeply") from error
    from_json = _JsonConverter(source_name).convert(data, 0)
    # JSON is (nearly) YAML, and YAML knows lines; use its tree when it reads exactly the same values.
    try:
        from_yaml = parse_yaml(text, source_name)
    except AppSpecError:
        return from_json
    if from_yaml is not None and _same(from_yaml, from_json):
        return from_yaml
    return from_json


def parse_yaml_or_json(text: str, source_name: str) -> Node | None:
    """Parse text that may be JSON (it starts with ``{``) or YAML, as Lambda and ECS AppSpecs may be."""
    if _strip_bom(text).lstrip().startswith("{"):
        return parse_json(text, source_name)
    return parse_yaml(text, source_name)


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def _mark_line(error: yaml.MarkedYAMLError) -> int | None:
    mark = error.problem_mark or error.context_mark
    return mark.line + 1 if mark is not None else None


def _yaml_message(error: yaml.MarkedYAMLError) -> str:
    problem = error.problem or "malformed"
    message = f"not valid YAML: {problem}"
    if error.context:
        message += f" ({error.context})"
    if "'\\t'" in problem:
        message += "; YAML does not allow tabs for indentation, use spaces"
    if "expected a single document" in (error.context or ""):
        message = "not valid YAML: an AppSpec file holds one document, but this one has several ('---')"
    return message


class _Pairs(list):
    """A JSON object as the list of its (key, value) pairs, keeping duplicates."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


class _YamlConverter:
    """Turns composed YAML nodes into located nodes, guarding against alias cycles and alias explosions."""

    def __init__(self, loader: yaml.SafeLoader, source_name: str) -> None:
        self.loader = loader
        self.source_name = source_name
        self.count = 0

    def _fail(self, node: yaml.Node, message: str) -> AppSpecError:
        return AppSpecError.single(self.source_name, "", node.start_mark.line + 1, message)

    def convert(self, node: yaml.Node, depth: int, ancestors: frozenset[int]) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._fail(node, f"the document expands to more than {MAX_NODES} values (YAML aliases?)")
        if depth > MAX_DEPTH:
            raise self._fail(node, "the document is nested too deeply")
        if id(node) in ancestors:
            raise self._fail(node, "a YAML alias refers to a value that contains it")
        line = node.start_mark.line + 1
        inner = ancestors | {id(node)}
        if isinstance(node, yaml.ScalarNode):
            if node.tag in _TEXT_TAGS:
                return Scalar(value=node.value, text=node.value, line=line, plain=node.style is None)
            if node.tag not in _SCALAR_TAGS:
                raise self._fail(node, f"unsupported YAML tag {node.tag!r}")
            value = self.loader.construct_object(node, deep=True)
            return Scalar(value=value, text=node.value, line=line, plain=node.style is None)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _YAML + "seq":
                raise self._fail(node, f"unsupported YAML tag {node.tag!r}")
            return Sequence([self.convert(item, depth + 1, inner) for item in node.value], line)
        if isinstance(node, yaml.MappingNode):
            if node.tag != _YAML + "map":
                raise self._fail(node, f"unsupported YAML tag {node.tag!r}")
            own = {id(key) for key, _ in node.value}
            self.loader.flatten_mapping(node)  # resolves YAML merge keys ("<<: *defaults")
            # Merged-in keys come first; a later key of the same name (the mapping's own) overrides them.
            last = {_key_id(key): index for index, (key, _) in enumerate(node.value)}
            pairs = [
                (key, value)
                for index, (key, value) in enumerate(node.value)
                if id(key) in own or last[_key_id(key)] == index
            ]
            mapping = Mapping(line=line)
            for key_node, value_node in pairs:
                key = self.convert(key_node, depth + 1, inner)
                if not isinstance(key, Scalar):
                    raise self._fail(key_node, "a mapping key must be a plain value, not a list or mapping")
                mapping.entries.append((key, self.convert(value_node, depth + 1, inner)))
            return mapping
        raise self._fail(node, f"unsupported YAML node {type(node).__name__}")


def _key_id(key: yaml.Node) -> object:
    return key.value if isinstance(key, yaml.ScalarNode) else id(key)


class _JsonConverter:
    def __init__(self, source_name: str) -> None:
        self.source_name = source_name

    def convert(self, data: object, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise AppSpecError.single(self.source_name, "", None, "the document is nested too deeply")
        if isinstance(data, _Pairs):
            return Mapping(
                [(Scalar(key, key, None, False), self.convert(value, depth + 1)) for key, value in data]
            )
        if isinstance(data, list):
            return Sequence([self.convert(item, depth + 1) for item in data])
        if isinstance(data, str):
            return Scalar(data, data, None, False)
        if data is None:
            return Scalar(None, "null", None, True)
        if isinstance(data, bool):
            return Scalar(data, "true" if data else "false", None, True)
        assert isinstance(data, int | float)
        return Scalar(data, json.dumps(data), None, True)


def _same(a: Node, b: Node) -> bool:
    """Whether two trees hold the same values (lines and spelling aside)."""
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        return type(a.value) is type(b.value) and a.value == b.value
    if isinstance(a, Sequence) and isinstance(b, Sequence):
        return len(a.items) == len(b.items) and all(map(_same, a.items, b.items))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return len(a.entries) == len(b.entries) and all(
            _same(ka, kb) and _same(va, vb) for (ka, va), (kb, vb) in zip(a.entries, b.entries, strict=True)
        )
    return False

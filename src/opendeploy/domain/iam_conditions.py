"""The parts of an IAM policy below the statement: wildcard patterns, policy variables and conditions.

``iam_policy`` parses statements and decides requests; this module holds what it compiles them
from, parsed once and evaluated against a request context (condition keys lower-cased, since IAM
compares key names case-insensitively):

- ``PatternSet``: the values of ``Action``, ``Resource`` or a ``StringLike``/``ArnLike`` condition,
  with ``*`` and ``?``. Variable-free patterns are joined into one regular expression at parse time;
  only those holding a policy variable are compiled per request (and cached).
- ``Template``: text that may hold policy variables (``${aws:username}``, ``${aws:PrincipalTag/team,
  'default'}``) and the escapes ``${*}``, ``${?}``, ``${$}``. A variable the context cannot resolve
  makes that one value match nothing.
- ``Condition``: one (operator, key) pair of a ``Condition`` block, with the ``…IfExists`` suffix and
  the ``ForAnyValue:`` / ``ForAllValues:`` qualifiers.

Semantics followed (AWS IAM User Guide, "IAM JSON policy elements: Condition operators", "Resource",
"Single-valued vs. multivalued context keys" and "Policy variables"):

- A key missing from the context makes a condition false, except: negated operators (StringNotEquals,
  NotIpAddress, ArnNotLike …) are then true; ``…IfExists`` is true; ``Null`` tests presence itself;
  ``ForAllValues:`` is true and ``ForAnyValue:`` false. An empty multi-valued key counts as missing.
- Several values for one key are ORed; a negated operator is true when the context value matches
  none of them (NOR). Several keys, and several operators, are ANDed (by the caller).
- A multi-valued context key under an operator without a qualifier is matched like ``ForAnyValue:``
  (negated: no value may match). AWS requires a qualifier there and leaves this case unspecified.
- Policy variables are allowed in String, Bool and Arn condition values and in ``Resource``; never in
  Numeric, Date, IpAddress or Binary values (AWS's table), so those are validated at parse time.
- In ARN patterns a ``*`` or ``?`` stays inside its colon-separated segment, except that a ``*`` that
  ends a segment may run on across colons (``arn:aws:codedeploy:*`` covers every CodeDeploy ARN).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal

# A request context value: a string, a multi-valued key's strings, or a typed scalar the caller has
# at hand (aws:SecureTransport as bool, aws:EpochTime as int, aws:CurrentTime as datetime …).
ContextValue = str | bool | int | float | datetime | bytes | Sequence[str] | None
# Keys lower-cased (see ``normalize_context``).
Context = Mapping[str, ContextValue]
PatternKind = Literal["action", "arn", "string"]


class MalformedPolicy(ValueError):
    """A policy document IAM would refuse (``MalformedPolicyDocument``); the message says what is wrong."""


def normalize_context(context: Mapping[str, ContextValue]) -> dict[str, ContextValue]:
    """The context with its keys lower-cased: condition key names are case-insensitive in IAM."""
    return {key.lower(): value for key, value in context.items()}


# --- policy variables -----------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_WITH_DEFAULT = re.compile(r"^\s*([^,]*?)\s*,\s*'([^']*)'\s*$")
_ESCAPES = frozenset("*?$")


@dataclass(frozen=True, slots=True)
class Variable:
    """``${key}`` or ``${key, 'default'}``; ``key`` lower-cased."""

    key: str
    default: str | None


@dataclass(frozen=True, slots=True)
class Verbatim:
    """Text that stands for itself even in a wildcard pattern (from ``${*}`` or a variable's value)."""

    text: str


# Plain ``str`` parts are pattern text: their ``*`` and ``?`` are wildcards where the operator has them.
Part = str | Verbatim | Variable
Template = tuple[Part, ...]


def parse_template(text: str, variables: bool) -> Template:
    """Split ``text`` into pattern text, escapes and variables (``variables``: policy version 2012-10-17)."""
    if not variables or "${" not in text:
        return (text,)
    parts: list[Part] = []
    position = 0
    for match in _VARIABLE.finditer(text):
        if match.start() > position:
            parts.append(text[position : match.start()])
        body = match.group(1)
        if body in _ESCAPES:
            parts.append(Verbatim(body))
        else:
            with_default = _WITH_DEFAULT.match(body)
            key, default = (with_default.group(1), with_default.group(2)) if with_default else (body, None)
            if not key.strip():
                raise MalformedPolicy(f"The policy variable ${{{body}}} in {text!r} names no key")
            parts.append(Variable(key.strip().lower(), default))
        position = match.end()
    if position < len(text):
        parts.append(text[position:])
    return tuple(parts)


def is_static(template: Template) -> bool:
    return all(isinstance(part, str) for part in template)


def _variable_text(value: ContextValue) -> str | None:
    # Multi-valued keys cannot be policy variables (AWS), so a list resolves to nothing.
    if value is None or isinstance(value, list | tuple | set | frozenset | bytes):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def resolve(template: Template, context: Context) -> Template | None:
    """The template with its variables replaced by literal text; ``None`` if one has no value."""
    resolved: list[Part] = []
    for part in template:
        if isinstance(part, Variable):
            text = _variable_text(context.get(part.key))
            if text is None:
                text = part.default
            if text is None:
                return None
            resolved.append(Verbatim(text))
        else:
            resolved.append(part)
    return tuple(resolved)


def _text_of(part: Part) -> str:
    # Only called on resolved templates, which hold no Variable.
    return part if isinstance(part, str) else part.text if isinstance(part, Verbatim) else ""


def plain_text(template: Template) -> str:
    """A resolved template as the string it stands for (wildcards and escapes as plain characters)."""
    return "".join(_text_of(part) for part in template)


# --- wildcard patterns ----------------------------------------------------------------------------------


def _next_char(template: Template, index: int) -> str:
    for part in template[index:]:
        text = _text_of(part)
        if text:
            return text[0]
    return ""


def _regex_source(template: Template, kind: PatternKind) -> str:
    """A resolved template as a regular expression (unanchored; the caller adds ``\\Z``)."""
    out: list[str] = []
    for index, part in enumerate(template):
        if not isinstance(part, str):
            out.append(re.escape(_text_of(part)))
            continue
        for position, char in enumerate(part):
            if char == "*":
                if kind != "arn":
                    out.append(".*")
                else:
                    following = part[position + 1 : position + 2] or _next_char(template, index + 1)
                    out.append(".*" if following in (":", "") else "[^:]*")
            elif char == "?":
                out.append("[^:]" if kind == "arn" else ".")
            else:
                out.append(re.escape(char))
    return "".join(out)


@lru_cache(maxsize=4096)
def _compiled(template: Template, kind: PatternKind) -> re.Pattern[str]:
    flags = re.DOTALL | (re.IGNORECASE if kind == "action" else 0)
    return re.compile(rf"(?:{_regex_source(template, kind)})\Z", flags)


@dataclass(frozen=True, slots=True)
class PatternSet:
    """Wildcard patterns of one kind; ``matches`` is true when any of them matches the whole value.

    ``action``: case-insensitive, ``*`` and ``?`` match anything. ``string``: case-sensitive, likewise.
    ``arn``: case-sensitive, wildcards kept within colon-separated segments (see the module docstring).
    """

    sources: tuple[str, ...]
    kind: PatternKind
    anything: bool  # one pattern is a bare ``*``
    exact: frozenset[str]  # wildcard-free patterns (lower-cased for actions)
    regex: re.Pattern[str] | None  # every other variable-free pattern, joined
    templated: tuple[Template, ...]  # patterns with policy variables, compiled per context

    @classmethod
    def build(cls, sources: Sequence[str], kind: PatternKind, variables: bool) -> PatternSet:
        exact: set[str] = set()
        wild: list[Template] = []
        templated: list[Template] = []
        for source in sources:
            template = parse_template(source, variables)
            if not is_static(template):
                templated.append(template)
            elif "*" in source or "?" in source:
                wild.append(template)
            else:
                exact.add(source.lower() if kind == "action" else source)
        regex = None
        if wild:
            flags = re.DOTALL | (re.IGNORECASE if kind == "action" else 0)
            joined = "|".join(_regex_source(template, kind) for template in wild)
            regex = re.compile(rf"(?:{joined})\Z", flags)
        return cls(tuple(sources), kind, "*" in sources, frozenset(exact), regex, tuple(templated))

    def matches(self, value: str, context: Context) -> bool:
        """``value`` must already be lower-cased for ``action`` sets (the caller does it once)."""
        if self.anything or value in self.exact:
            return True
        if self.regex is not None and self.regex.match(value):
            return True
        for template in self.templated:
            resolved = resolve(template, context)
            if resolved is not None and _compiled(resolved, self.kind).match(value):
                return True
        return False


# --- condition values -----------------------------------------------------------------------------------


def _as_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return None


def _as_number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(value)
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _as_epoch(value: object) -> float | None:
    """Seconds since the epoch from an ISO 8601 date/time or epoch seconds (naive times are UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif isinstance(value, str):
        return _epoch_of_text(value)
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# Parsed once per distinct text: every request carries the same few source addresses and, within a
# second, the same aws:CurrentTime, and parsing them was most of a condition's cost.
@lru_cache(maxsize=1024)
def _epoch_of_text(value: str) -> float | None:
    text = value.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _as_ip(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    return _ip_of_text(value) if isinstance(value, str) else None


@lru_cache(maxsize=1024)
def _ip_of_text(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _as_bool_text(value: object) -> str | None:
    text = _as_text(value)
    return text.lower() if text is not None else None


def _as_base64(value: object) -> str | None:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value if isinstance(value, str) else None


# A per-value test: does one context value match any of the condition's policy values?
ValueTest = Callable[[object, Context], bool]


def _string_test(values: Sequence[str], variant: str, variables: bool) -> ValueTest:
    if variant == "Like":
        patterns = PatternSet.build(values, "string", variables)
        return lambda value, context: (
            (text := _as_text(value)) is not None and patterns.matches(text, context)
        )
    fold = variant == "EqualsIgnoreCase"
    templates = [parse_template(value, variables) for value in values]
    static = frozenset(
        (plain_text(t).casefold() if fold else plain_text(t)) for t in templates if is_static(t)
    )
    dynamic = tuple(t for t in templates if not is_static(t))

    def test(value: object, context: Context) -> bool:
        text = _as_text(value)
        if text is None:
            return False
        if fold:
            text = text.casefold()
        if text in static:
            return True
        for template in dynamic:
            resolved = resolve(template, context)
            if resolved is not None:
                wanted = plain_text(resolved)
                if text == (wanted.casefold() if fold else wanted):
                    return True
        return False

    return test


def _arn_test(values: Sequence[str], variables: bool) -> ValueTest:
    # ArnEquals and ArnLike behave alike: both take wildcards per ARN segment (AWS's operator table).
    patterns = PatternSet.build(values, "arn", variables)
    return lambda value, context: isinstance(value, str) and patterns.matches(value, context)


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "NotEquals": lambda a, b: a == b,  # negated by the caller
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}


def _ordered_test(
    operator: str, values: Sequence[str], variant: str, convert: Callable[[object], Any], what: str
) -> ValueTest:
    wanted = []
    for value in values:
        converted = convert(value)
        if converted is None:
            raise MalformedPolicy(f"{operator}: {value!r} is not a valid {what}")
        wanted.append(converted)
    compare = _COMPARISONS[variant]

    def test(value: object, context: Context) -> bool:
        actual = convert(value)
        return actual is not None and any(compare(actual, policy_value) for policy_value in wanted)

    return test


def _bool_test(operator: str, values: Sequence[str], variables: bool) -> ValueTest:
    templates = [parse_template(value, variables) for value in values]
    for template in templates:
        if is_static(template) and plain_text(template).lower() not in ("true", "false"):
            raise MalformedPolicy(f"{operator}: {plain_text(template)!r} is not true or false")

    def test(value: object, context: Context) -> bool:
        actual = _as_bool_text(value)
        for template in templates:
            resolved = resolve(template, context)
            if resolved is not None and actual == plain_text(resolved).lower():
                return True
        return False

    return test


def _ip_test(operator: str, values: Sequence[str]) -> ValueTest:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise MalformedPolicy(f"{operator}: {value!r} is not an IP address or CIDR range") from None

    def test(value: object, context: Context) -> bool:
        address = _as_ip(value)
        # An IPv4 address is never in an IPv6 range nor the reverse (``in`` answers False).
        return address is not None and any(address in network for network in networks)

    return test


def _binary_test(operator: str, values: Sequence[str]) -> ValueTest:
    for value in values:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedPolicy(f"{operator}: {value!r} is not base64") from None
    wanted = frozenset(values)
    return lambda value, context: _as_base64(value) in wanted


# --- operators ------------------------------------------------------------------------------------------

# Operator (without IfExists / qualifier) -> (family, variant, negated).
_OPERATORS: dict[str, tuple[str, str, bool]] = {
    "StringEquals": ("String", "Equals", False),
    "StringNotEquals": ("String", "Equals", True),
    "StringEqualsIgnoreCase": ("String", "EqualsIgnoreCase", False),
    "StringNotEqualsIgnoreCase": ("String", "EqualsIgnoreCase", True),
    "StringLike": ("String", "Like", False),
    "StringNotLike": ("String", "Like", True),
    "Bool": ("Bool", "Equals", False),
    "BinaryEquals": ("Binary", "Equals", False),
    "IpAddress": ("Ip", "In", False),
    "NotIpAddress": ("Ip", "In", True),
    "ArnEquals": ("Arn", "Like", False),
    "ArnLike": ("Arn", "Like", False),
    "ArnNotEquals": ("Arn", "Like", True),
    "ArnNotLike": ("Arn", "Like", True),
    "Null": ("Null", "Null", False),
}
for _family in ("Numeric", "Date"):
    for _variant in _COMPARISONS:
        _OPERATORS[f"{_family}{_variant}"] = (_family, _variant, _variant == "NotEquals")

_QUALIFIERS = ("ForAnyValue", "ForAllValues")


def condition_values(operator: str, key: str, raw: object) -> tuple[str, ...]:
    """A condition's value(s) as strings: one scalar or a non-empty list of scalars."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise MalformedPolicy(f"{operator}: the condition key {key!r} has an empty list of values")
    values = []
    for item in items:
        text = _as_text(item)
        if text is None:
            raise MalformedPolicy(
                f"{operator}: the value {item!r} of {key!r} is not a string, number or bool"
            )
        values.append(text)
    return tuple(values)


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition key under one operator, e.g. ``ForAnyValue:StringLikeIfExists`` / ``aws:TagKeys``."""

    operator: str  # as written in the policy
    key: str  # lower-cased
    values: tuple[str, ...]
    qualifier: str  # "", "ForAnyValue" or "ForAllValues"
    if_exists: bool
    negated: bool
    test: ValueTest | None  # ``None`` for Null
    null_wanted: bool  # Null: true when the key must be absent

    def holds(self, context: Context) -> bool:
        raw = context.get(self.key)
        values: tuple[object, ...] = (
            () if raw is None else tuple(raw) if isinstance(raw, list | tuple | set | frozenset) else (raw,)
        )
        if self.test is None:  # Null
            return (not values) == self.null_wanted
        if not values:
            if self.if_exists or self.qualifier == "ForAllValues":
                return True
            if self.qualifier == "ForAnyValue":
                return False
            return self.negated
        test = self.test
        if self.qualifier == "ForAllValues":
            return all(test(value, context) != self.negated for value in values)
        if self.qualifier == "ForAnyValue":
            return any(test(value, context) != self.negated for value in values)
        return any(test(value, context) for value in values) != self.negated


def parse_condition(operator: str, key: str, raw_values: object, variables: bool) -> Condition:
    """One (operator, key, values) entry of a ``Condition`` block; ``MalformedPolicy`` if invalid."""
    qualifier, _, base = operator.rpartition(":")
    if qualifier and qualifier not in _QUALIFIERS:
        raise MalformedPolicy(f"Unknown condition set operator {qualifier!r} in {operator!r}")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base not in _OPERATORS:
        raise MalformedPolicy(f"Unknown condition operator {operator!r}")
    family, variant, negated = _OPERATORS[base]
    if not isinstance(key, str) or not key:
        raise MalformedPolicy(f"{operator}: a condition key must be a non-empty string")
    values = condition_values(operator, key, raw_values)
    test: ValueTest | None
    null_wanted = False
    if family == "Null":
        if if_exists or qualifier:
            raise MalformedPolicy(f"{operator}: Null takes neither IfExists nor a set operator")
        if len(values) != 1 or values[0].lower() not in ("true", "false"):
            raise MalformedPolicy(f"Null: the value of {key!r} must be true or false")
        test, null_wanted = None, values[0].lower() == "true"
    elif family == "String":
        test = _string_test(values, variant, variables)
    elif family == "Arn":
        test = _arn_test(values, variables)
    elif family == "Bool":
        test = _bool_test(operator, values, variables)
    elif family == "Numeric":
        test = _ordered_test(operator, values, variant, _as_number, "number")
    elif family == "Date":
        test = _ordered_test(operator, values, variant, _as_epoch, "date (ISO 8601 or epoch seconds)")
    elif family == "Ip":
        test = _ip_test(operator, values)
    else:
        test = _binary_test(operator, values)
    return Condition(operator, key.lower(), values, qualifier, if_exists, negated, test, null_wanted)


def parse_condition_block(block: object, variables: bool) -> tuple[Condition, ...]:
    """A statement's ``Condition`` element: ``{operator: {key: value or [values]}}``, all ANDed."""
    if not isinstance(block, dict):
        raise MalformedPolicy("Condition must be a JSON object of condition operators")
    conditions = []
    for operator, entries in block.items():
        if not isinstance(entries, dict) or not entries:
            raise MalformedPolicy(f"{operator}: must map condition keys to values")
        for key, raw_values in entries.items():
            conditions.append(parse_condition(operator, key, raw_values, variables))
    return tuple(conditions)

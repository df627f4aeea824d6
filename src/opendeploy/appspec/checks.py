"""Checking a located document tree against an AppSpec grammar, collecting every problem with its place.

Each check reports what is wrong in the user's terms and returns the checked value, or None when the value is
unusable, so that one pass finds all problems rather than stopping at the first.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from opendeploy.appspec.document import Mapping, Node, Scalar, Sequence, is_null
from opendeploy.appspec.errors import AppSpecError, AppSpecProblem

_DECIMAL = re.compile(r"[+]?[0-9]+")


def child(path: str, key: str) -> str:
    """The key path of ``key`` under ``path``."""
    return f"{path}.{key}" if path else key


def item(path: str, index: int) -> str:
    """The key path of list item ``index`` under ``path``."""
    return f"{path}[{index}]"


def describe(node: Node | None) -> str:
    """How a value looks, for "got …" in messages."""
    if is_null(node):
        return "nothing"
    if isinstance(node, Mapping):
        return "a mapping"
    if isinstance(node, Sequence):
        return "a list"
    assert isinstance(node, Scalar)
    if isinstance(node.value, str):
        return repr(node.text)
    if isinstance(node.value, bool):
        return f"{node.text} (a boolean)"
    return node.text


def suggestion(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'X'?"`` when a choice is close to ``word`` (also ignoring case), else ``""``."""
    choices = list(choices)
    by_lower = {choice.lower(): choice for choice in choices}
    if word.lower() in by_lower:
        return f"; did you mean {by_lower[word.lower()]!r}?"
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.75)
    if not close:
        close = [
            by_lower[m] for m in difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.75)
        ]
    return f"; did you mean {close[0]!r}?" if close else ""


class Checker:
    """Collects the problems found in one AppSpec file."""

    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        self.problems: list[AppSpecProblem] = []

    def report(self, path: str, where: Node | int | None, message: str) -> None:
        """Record a problem at ``path``; ``where`` is the offending node, or a line."""
        line = where if isinstance(where, int) or where is None else where.line
        self.problems.append(AppSpecProblem(self.source_name, path, line, message))

    def raise_if_any(self) -> None:
        """Raise AppSpecError with every problem recorded, if there is one, in file order."""
        if self.problems:
            # Problems without a line (missing keys) keep their place after those the file shows.
            raise AppSpecError(sorted(self.problems, key=lambda p: (p.line is None, p.line or 0)))

    def mapping(
        self, node: Node | None, path: str, what: str = "a mapping of keys to values"
    ) -> Mapping | None:
        """``node`` as a mapping, or a problem."""
        if isinstance(node, Mapping):
            return node
        self.report(path, node, f"must be {what}, got {describe(node)}")
        return None

    def sequence(self, node: Node | None, path: str, what: str = "a list") -> Sequence | None:
        """``node`` as a list, or a problem."""
        if isinstance(node, Sequence):
            return node
        self.report(path, node, f"must be {what}, got {describe(node)}")
        return None

    def top_level(
        self,
        root: Node | None,
        known: Iterable[str],
        *,
        required: tuple[str, ...],
        document: str,
        where: str,
        case_insensitive: bool = False,
    ) -> dict[str, tuple[Scalar, Node]]:
        """The top-level entries of an AppSpec ``document`` (e.g. "the AppSpec file"); an empty document or
        one that is not a mapping is refused at once, as nothing else in it can be checked."""
        wanted = " and ".join(f"'{key}'" for key in required)
        if is_null(root):
            raise AppSpecError.single(
                self.source_name, "", None, f"{document} is empty; it must define at least {wanted}"
            )
        keys = list(known)
        mapping = self.mapping(root, "", f"a mapping with the keys {', '.join(keys[:-1])} and {keys[-1]}")
        self.raise_if_any()
        assert isinstance(mapping, Mapping)
        return self.fields(
            mapping, "", keys, required=required, case_insensitive=case_insensitive, where=where
        )

    def fields(
        self,
        mapping: Mapping,
        path: str,
        known: Iterable[str],
        *,
        required: Iterable[str] = (),
        case_insensitive: bool = False,
        where: str = "here",
    ) -> dict[str, tuple[Scalar, Node]]:
        """The entries of ``mapping`` by canonical key name; unknown, duplicate and missing keys are problems.

        With ``case_insensitive`` a key matches whatever its case (``Resources`` is ``resources``), and the
        result is keyed by the spelling in ``known``.
        """
        known = list(known)
        canonical = {(k.lower() if case_insensitive else k): k for k in known}
        found: dict[str, tuple[Scalar, Node]] = {}
        for key, value in mapping.entries:
            name = key.text
            lookup = name.lower() if case_insensitive else name
            if lookup not in canonical:
                hint = suggestion(name, known)
                allowed = ", ".join(known)
                self.report(
                    child(path, name), key, f"unknown key {name!r} {where}{hint} (allowed: {allowed})"
                )
                continue
            key_name = canonical[lookup]
            if key_name in found:
                first = found[key_name][0]
                self.report(
                    child(path, name),
                    key,
                    f"{name!r} appears more than once (first at line {first.line})"
                    if first.line is not None
                    else f"{name!r} appears more than once",
                )
                continue
            found[key_name] = (key, value)
        for name in required:
            if name not in found or is_null(found[name][1]):
                # A missing top-level key has no line of its own to point at.
                line = found[name][0].line if name in found else (mapping.line if path else None)
                self.report(child(path, name), line, "is required but missing")
        return found

    def string(self, node: Node | None, path: str, what: str = "a string") -> str | None:
        """A non-empty string. An unquoted YAML number or boolean counts as the text it was written as."""
        if (
            isinstance(node, Scalar)
            and node.value is not None
            and (isinstance(node.value, str) or node.plain)
        ):
            text = node.value if isinstance(node.value, str) else node.text
            if text.strip():
                return text
            self.report(path, node, f"must be {what}, got an empty string")
            return None
        self.report(path, node, f"must be {what}, got {describe(node)}")
        return None

    def integer(
        self,
        node: Node | None,
        path: str,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        what: str = "a whole number",
        allow_string: bool = True,
    ) -> int | None:
        """A whole number written in decimal (``0600`` is 600, never YAML 1.1's octal 384).

        A quoted number (``"180"``) is accepted when ``allow_string`` is set, as AWS's agent accepts it.
        """
        number: int | None = None
        if isinstance(node, Scalar) and not isinstance(node.value, bool):
            numeric = isinstance(node.value, int) or (allow_string and isinstance(node.value, str))
            if numeric and _DECIMAL.fullmatch(node.text.strip()):
                number = int(node.text.strip(), 10)
        out_of_range = number is not None and (
            (minimum is not None and number < minimum) or (maximum is not None and number > maximum)
        )
        if number is None or out_of_range:
            self.report(path, node, f"must be {what}, got {describe(node)}")
            return None
        return number

    def boolean(self, node: Node | None, path: str) -> bool | None:
        """``true`` or ``false``."""
        if isinstance(node, Scalar) and isinstance(node.value, bool):
            return node.value
        self.report(path, node, f"must be true or false, got {describe(node)}")
        return None

    def choice(self, node: Node | None, path: str, allowed: Iterable[str]) -> str | None:
        """One of ``allowed``, spelt exactly."""
        allowed = list(allowed)
        text = self.string(node, path, "one of " + ", ".join(allowed))
        if text is None:
            return None
        if text in allowed:
            return text
        self.report(
            path, node, f"must be one of {', '.join(allowed)}, got {text!r}{suggestion(text, allowed)}"
        )
        return None

    def string_list(
        self, node: Node | None, path: str, what: str = "a list of strings"
    ) -> tuple[str, ...] | None:
        """A list of non-empty strings."""
        sequence = self.sequence(node, path, what)
        if sequence is None:
            return None
        values = [self.string(entry, item(path, i)) for i, entry in enumerate(sequence.items)]
        if any(value is None for value in values):
            return None
        return tuple(value for value in values if value is not None)

    def version(self, node: Node | None, path: str) -> str | None:
        """The AppSpec ``version``: only 0.0 exists (guide L23172–L23175).

        Accepted as the YAML/JSON number 0.0 (every example) and as the string "0.0" (the guide says to
        "specify version with a string").
        """
        if isinstance(node, Scalar) and not isinstance(node.value, bool):
            if isinstance(node.value, int | float) and node.value == 0:
                return "0.0"
            if isinstance(node.value, str) and node.value.strip() == "0.0":
                return "0.0"
        self.report(
            path, node, f"must be 0.0 (the only AppSpec version; do not change it), got {describe(node)}"
        )
        return None

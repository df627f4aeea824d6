"""The EC2/On-Premises ``permissions`` section: checking each entry (object, pattern, except, owner, group,
mode, acls, context, type) into a Permission (guide L23713–L23977)."""

from __future__ import annotations

import re

from opendeploy.appspec.checks import Checker, child, describe, item
from opendeploy.appspec.document import Node, Scalar, is_null
from opendeploy.appspec.model import Permission, SELinuxContext

PERMISSION_KEYS = ("object", "pattern", "except", "owner", "group", "mode", "acls", "context", "type")
OBJECT_TYPES = ("file", "directory")
CONTEXT_KEYS = ("user", "name", "type", "range")

_MODE = re.compile(r"[0-7]{1,4}")
# A user or group as chown and setfacl take it: no separators, no blanks.
_ACCOUNT = re.compile(r"[^\s:,]+")
_ACL_TAGS = {"u": "user", "user": "user", "g": "group", "group": "group", "m": "mask", "mask": "mask"}
_ACL_TAGS |= {"o": "other", "other": "other"}
_SELINUX_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_SELINUX_LEVEL = re.compile(r"s(\d+)")
_SELINUX_CATEGORY = re.compile(r"c(\d+)")
MAX_SELINUX_CATEGORY = 1023


def check_permissions(checker: Checker, node: Node | None, path: str) -> tuple[Permission, ...]:
    """The ``permissions`` list as Permission objects in file order (later entries win on the same object)."""
    if is_null(node):
        return ()
    sequence = checker.sequence(node, path, "a list of permission entries ('- object: …')")
    if sequence is None:
        return ()
    permissions = []
    for index, entry in enumerate(sequence.items):
        permission = _check_entry(checker, entry, item(path, index))
        if permission is not None:
            permissions.append(permission)
    return tuple(permissions)


def _check_entry(checker: Checker, node: Node, path: str) -> Permission | None:
    mapping = checker.mapping(node, path, "a permission entry (a mapping with at least 'object')")
    if mapping is None:
        return None
    before = len(checker.problems)
    fields = checker.fields(
        mapping, path, PERMISSION_KEYS, required=("object",), where="in a permission entry"
    )

    def value(key: str) -> Node | None:
        return fields[key][1] if key in fields and not is_null(fields[key][1]) else None

    obj = None
    if (node_ := value("object")) is not None:
        obj = checker.string(node_, child(path, "object"), "an absolute path")
        if obj is not None and not obj.startswith("/"):
            checker.report(
                child(path, "object"),
                node_,
                f"must be an absolute path (permissions apply on Linux), got {obj!r}",
            )
    pattern = "**"
    if (node_ := value("pattern")) is not None:
        pattern = _check_pattern(checker, node_, child(path, "pattern")) or pattern
    except_: tuple[str, ...] = ()
    if (node_ := value("except")) is not None:
        except_ = (
            checker.string_list(node_, child(path, "except"), "a list of names, e.g. [my-file-4.txt]") or ()
        )
    owner = _check_account(checker, value("owner"), child(path, "owner"), "user")
    group = _check_account(checker, value("group"), child(path, "group"), "group")
    mode = _check_mode(checker, value("mode"), child(path, "mode")) if value("mode") is not None else None
    types: tuple[str, ...] = OBJECT_TYPES
    if (node_ := value("type")) is not None:
        types = _check_types(checker, node_, child(path, "type")) or types
    acls: tuple[str, ...] = ()
    if (node_ := value("acls")) is not None:
        acls = _check_acls(checker, node_, child(path, "acls"), types)
    context = None
    if (node_ := value("context")) is not None:
        context = _check_context(checker, node_, child(path, "context"))
    if len(checker.problems) > before or obj is None:
        return None
    return Permission(
        object=obj,
        pattern=pattern,
        except_=except_,
        owner=owner,
        group=group,
        mode=mode,
        acls=acls,
        context=context,
        types=types,
    )


def _check_pattern(checker: Checker, node: Node, path: str) -> str | None:
    pattern = checker.string(node, path, 'a pattern such as "*.txt" or "**"')
    if pattern is None:
        return None
    if pattern.startswith("/"):
        # A pattern is matched against paths inside object; an absolute one would silently match nothing.
        checker.report(
            path,
            node,
            f'must be relative to object (such as "*.log" or "logs/*.log"), got {pattern!r}; '
            "name the directory in object instead",
        )
        return None
    return pattern


def _check_account(checker: Checker, node: Node | None, path: str, kind: str) -> str | None:
    if node is None:
        return None
    name = checker.string(node, path, f"a {kind} name")
    if name is not None and not _ACCOUNT.fullmatch(name):
        checker.report(path, node, f"must be a single {kind} name, got {name!r}")
        return None
    return name


def _check_mode(checker: Checker, node: Node | None, path: str) -> str | None:
    """The mode's octal digits exactly as written (``0644`` unquoted is "0644", not YAML 1.1's 420)."""
    valued = isinstance(node, Scalar) and node.value is not None and not isinstance(node.value, bool)
    if valued and _MODE.fullmatch(node.text):
        return node.text
    shown = repr(node.text) if isinstance(node, Scalar) else describe(node)
    checker.report(
        path,
        node,
        'must be a numeric mode of 1 to 4 octal digits as chmod takes it, e.g. 644 or "0644" '
        f"(symbolic modes such as u+x are not supported), got {shown}",
    )
    return None


def _check_types(checker: Checker, node: Node, path: str) -> tuple[str, ...] | None:
    sequence = checker.sequence(node, path, "a list of object types, e.g. [file] or [file, directory]")
    if sequence is None:
        return None
    types: list[str] = []
    for index, entry in enumerate(sequence.items):
        kind = checker.choice(entry, item(path, index), OBJECT_TYPES)
        if kind is None:
            return None
        if kind not in types:
            types.append(kind)
    if not types:
        checker.report(path, node, "must name at least one object type: file, directory")
        return None
    return tuple(types)


def _check_acls(checker: Checker, node: Node, path: str, types: tuple[str, ...]) -> tuple[str, ...]:
    sequence = checker.sequence(node, path, "a list of setfacl entries, e.g. - u:jane:rw")
    if sequence is None:
        return ()
    entries: list[str] = []
    for index, entry_node in enumerate(sequence.items):
        entry_path = item(path, index)
        entry = checker.string(entry_node, entry_path, "a setfacl entry such as u:jane:rw")
        if entry is None:
            continue
        problem = acl_entry_problem(entry)
        if problem is None and entry.split(":", 1)[0] in ("d", "default") and "directory" not in types:
            problem = (
                "is a default ACL entry, which applies to directories only, but this entry's type is [file]"
            )
        if problem is not None:
            checker.report(entry_path, entry_node, f"{problem}, got {entry!r}")
        else:
            entries.append(entry)
    return tuple(entries)


def acl_entry_problem(entry: str) -> str | None:
    """What is wrong with a setfacl entry (``[d[efault]:]{u|g|m|o}:[name]:perms`` or ``name:perms``), if any.

    Unnamed user, group and other entries are refused: the guide says to use ``mode`` for those
    (guide L23807–L23810); the mask entry has no name and is allowed, as in the guide's own example.
    """
    parts = entry.split(":")
    default = parts[0] in ("d", "default") and len(parts) > 1
    if default:
        parts = parts[1:]
    if len(parts) == 2:  # "name:perms" names a user
        parts = ["user", *parts]
    if len(parts) != 3:
        return "must be a setfacl entry of the form [default:]{user|group|mask|other}:[name]:permissions"
    tag, name, perms = parts
    if tag not in _ACL_TAGS:
        return f"must start with user (u), group (g), mask (m) or other (o), not {tag!r}"
    kind = _ACL_TAGS[tag]
    if not _acl_perms_valid(perms):
        return "must give permissions as r, w, x and - (e.g. rw or r-x) or one octal digit"
    if kind in ("mask", "other") and name:
        return f"a {kind} entry takes no name"
    if name and not _ACCOUNT.fullmatch(name):
        return f"names an invalid {kind} {name!r}"
    if kind in ("user", "group", "other") and not name and not default:
        return f"sets the unnamed {kind} entry; use mode for the owner, group and other permissions instead"
    return None


def _check_context(checker: Checker, node: Node, path: str) -> SELinuxContext | None:
    mapping = checker.mapping(node, path, "a mapping with the SELinux labels user, type and range")
    if mapping is None:
        return None
    before = len(checker.problems)
    fields = checker.fields(mapping, path, CONTEXT_KEYS, required=("type",), where="in a context")
    labels: dict[str, str | None] = {}
    for key in ("user", "name", "type"):
        if key in fields and not is_null(fields[key][1]):
            label = checker.string(fields[key][1], child(path, key), f"an SELinux {key} label")
            if label is not None and not _SELINUX_NAME.fullmatch(label):
                checker.report(
                    child(path, key), fields[key][1], f"must be an SELinux label name, got {label!r}"
                )
            labels[key] = label
    if "user" in labels and "name" in labels:
        # AWS's agent reads the user from "name"; both at once is a contradiction, not a choice to make.
        checker.report(
            child(path, "name"), fields["name"][0], "duplicates 'user' (name is another spelling of user)"
        )
    range_ = None
    if "range" in fields and not is_null(fields["range"][1]):
        range_ = checker.string(fields["range"][1], child(path, "range"), "an SELinux range such as s0")
        if range_ is not None:
            problem = selinux_range_problem(range_)
            if problem is not None:
                checker.report(child(path, "range"), fields["range"][1], f"{problem}, got {range_!r}")
    if len(checker.problems) > before or labels.get("type") is None:
        return None
    return SELinuxContext(
        type=labels["type"] or "", user=labels.get("user") or labels.get("name"), range=range_
    )


def selinux_range_problem(text: str) -> str | None:
    """What is wrong with an SELinux MLS/MCS range (``s0``, ``s0-s2:c0.c10,c12``), if anything."""
    levels, _, categories = text.partition(":")
    low, _, high = levels.partition("-")
    low_match = _SELINUX_LEVEL.fullmatch(low)
    high_match = _SELINUX_LEVEL.fullmatch(high) if high else low_match
    if low_match is None or high_match is None:
        return (
            "must be an SELinux range: a sensitivity s<N>, optionally -s<M>, then optionally :c<a>[.c<b>],…"
        )
    if int(high_match.group(1)) < int(low_match.group(1)):
        return "must not have a high sensitivity below its low one"
    if not categories and ":" not in text:
        return None
    seen: set[int] = set()
    for part in categories.split(","):
        first, _, last = part.partition(".")
        first_match = _SELINUX_CATEGORY.fullmatch(first)
        last_match = _SELINUX_CATEGORY.fullmatch(last) if last else first_match
        if first_match is None or last_match is None:
            return "must list categories as c<N> or c<N>.c<M>, separated by commas"
        start, end = int(first_match.group(1)), int(last_match.group(1))
        if end < start or end > MAX_SELINUX_CATEGORY:
            return f"must have category ranges in order and categories up to c{MAX_SELINUX_CATEGORY}"
        span = set(range(start, end + 1))
        if span & seen:
            return "must not repeat a category"
        seen |= span
    return None


def _acl_perms_valid(perms: str) -> bool:
    """``rw``, ``r-x``, ``rwx``… (each of r, w, x at most once) or a single octal digit."""
    if re.fullmatch(r"[0-7]", perms):
        return True
    letters = perms.replace("-", "")
    return 0 < len(perms) <= 3 and set(perms) <= set("rwx-") and len(set(letters)) == len(letters)

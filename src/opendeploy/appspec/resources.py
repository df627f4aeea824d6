"""The ``resources`` section of Lambda and ECS AppSpecs: a list holding one single-key mapping, the resource's
logical name -> its ``type`` and ``properties`` (guide L23509–L23711)."""

from __future__ import annotations

from opendeploy.appspec.checks import Checker, child, item
from opendeploy.appspec.document import Mapping, Node, Scalar, is_null


def check_single_resource(
    checker: Checker,
    node: Node | None,
    path: str,
    *,
    platform: str,
    example: str,
    fixed_name: str | None = None,
) -> tuple[str, str, Mapping] | None:
    """The one resource of a Lambda or ECS AppSpec as (logical name, key path, body mapping), or None.

    A deployment deploys exactly one Lambda function or one ECS service, so the list holds exactly one entry.
    With ``fixed_name`` the logical name must be that word (matched whatever its case).
    """
    sequence = checker.sequence(node, path, f"a list with one resource, such as '- {example}:'")
    if sequence is None:
        return None
    if len(sequence.items) != 1:
        checker.report(
            path,
            sequence,
            f"must list exactly one resource (a {platform} deployment deploys one), "
            f"got {len(sequence.items)}",
        )
        return None
    entry_path = item(path, 0)
    mapping = checker.mapping(sequence.items[0], entry_path, f"a single-key mapping such as '{example}:'")
    if mapping is None:
        return None
    if len(mapping.entries) != 1:
        checker.report(
            entry_path,
            mapping,
            f"must be one logical name holding Type and Properties, such as '{example}:', "
            f"got {len(mapping.entries)} keys (are Type and Properties indented under the name?)",
        )
        return None
    key, body = mapping.entries[0]
    name = key.text
    body_path = child(entry_path, name)
    if fixed_name is not None and name.lower() != fixed_name.lower():
        checker.report(body_path, key, f"the resource must be named {fixed_name}, got {name!r}")
        return None
    body_mapping = checker.mapping(body, body_path, "a mapping with Type and Properties")
    if body_mapping is None:
        return None
    return (name, body_path, body_mapping)


def key_path(path: str, fields: dict[str, tuple[Scalar, Node]], key: str) -> str:
    """The key path of ``key`` under ``path``, in the user's spelling of the key when it is there."""
    return child(path, fields[key][0].text if key in fields else key)


def present(fields: dict[str, tuple[Scalar, Node]], key: str) -> Node | None:
    """The value of ``key`` unless it is absent or null."""
    return fields[key][1] if key in fields and not is_null(fields[key][1]) else None

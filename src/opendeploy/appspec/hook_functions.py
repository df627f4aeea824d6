"""The ``hooks`` section of Lambda and ECS AppSpecs: a list of single-key mappings, lifecycle event -> the
Lambda function that validates the deployment at that event (guide L23996–L24250)."""

from __future__ import annotations

from opendeploy.appspec.aws_shapes import lambda_hook_function
from opendeploy.appspec.checks import Checker, child, item, suggestion
from opendeploy.appspec.document import Node, is_null
from opendeploy.appspec.lifecycle_events import ECS_ALL_EVENTS, LAMBDA_ALL_EVENTS, SERVER_ALL_EVENTS


def check_hook_functions(
    checker: Checker,
    node: Node | None,
    path: str,
    *,
    platform: str,
    all_events: tuple[str, ...],
    hook_events: tuple[str, ...],
) -> dict[str, str]:
    """Event name -> function name or ARN, in file order.

    Event names match whatever their case (the keys of Lambda and ECS AppSpecs are case-insensitive) and are
    returned in the guide's spelling. Each event may appear once: each hook runs once per deployment
    (guide L24011, L24147).
    """
    if is_null(node):
        return {}
    example = f"'- {hook_events[-1]}: MyValidationFunction'"
    sequence = checker.sequence(node, path, f"a list of single-key mappings such as {example}")
    if sequence is None:
        return {}
    by_lower = {event.lower(): event for event in hook_events}
    reserved = {event.lower(): event for event in all_events if event not in hook_events}
    elsewhere = {e.lower(): e for e in (*SERVER_ALL_EVENTS, *LAMBDA_ALL_EVENTS, *ECS_ALL_EVENTS)}
    hooks: dict[str, str] = {}
    lines: dict[str, int | None] = {}
    for index, entry in enumerate(sequence.items):
        entry_path = item(path, index)
        mapping = checker.mapping(entry, entry_path, f"a single-key mapping such as {example}")
        if mapping is None:
            continue
        if len(mapping.entries) != 1:
            checker.report(
                entry_path,
                mapping,
                f"must name exactly one lifecycle event and its function, such as {example}; "
                f"got {len(mapping.entries)} keys (write each hook as its own '- ' item)",
            )
            continue
        key, value = mapping.entries[0]
        name = key.text
        event_path = child(entry_path, name)
        lookup = name.lower()
        allowed = ", ".join(hook_events)
        if lookup in reserved:
            checker.report(
                event_path,
                key,
                f"{reserved[lookup]} is run by CodeDeploy itself and takes no hook function "
                f"(hooks of {platform} deployments: {allowed})",
            )
            continue
        if lookup not in by_lower:
            if lookup in elsewhere:
                why = f"{elsewhere[lookup]} is not a lifecycle event of {platform} deployments"
            else:
                why = f"unknown lifecycle event {name!r}{suggestion(name, hook_events)}"
            checker.report(event_path, key, f"{why} (hooks of {platform} deployments: {allowed})")
            continue
        event = by_lower[lookup]
        if event in hooks or event in lines:
            first = lines[event]
            where = f" (first at line {first})" if first is not None else ""
            checker.report(
                event_path, key, f"{event} has a hook already{where}; each hook runs once per deployment"
            )
            continue
        lines[event] = key.line
        function = checker.string(value, event_path, "the name or ARN of a Lambda function")
        if function is None:
            continue
        if not lambda_hook_function().accepts(function):
            checker.report(
                event_path, value, f"must be the name or ARN of a Lambda function, got {function!r}"
            )
            continue
        hooks[event] = function
    return hooks

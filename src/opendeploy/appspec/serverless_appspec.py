"""The top level that AWS Lambda and Amazon ECS AppSpecs share: ``version``, ``Resources`` (one resource,
checked by the platform's own function) and ``Hooks`` (functions by lifecycle event), in YAML or JSON,
with keys matching whatever their case (guide L23155–L23224)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from opendeploy.appspec.checks import Checker
from opendeploy.appspec.document import Node, parse_yaml_or_json
from opendeploy.appspec.hook_functions import check_hook_functions
from opendeploy.appspec.resources import key_path, present

TOP_LEVEL_KEYS = ("version", "Resources", "Hooks")

ResourceT = TypeVar("ResourceT")


@dataclass(frozen=True)
class TopLevel(Generic[ResourceT]):
    version: str
    resource: ResourceT
    hooks: dict[str, str]


def load_top_level(
    text: str,
    source_name: str,
    *,
    platform: str,
    check_resources: Callable[[Checker, Node, str], ResourceT | None],
    all_events: tuple[str, ...],
    hook_events: tuple[str, ...],
) -> TopLevel[ResourceT]:
    """Parse ``text`` and check its three sections. Raises AppSpecError naming every problem."""
    checker = Checker(source_name)
    fields = checker.top_level(
        parse_yaml_or_json(text, source_name),
        TOP_LEVEL_KEYS,
        required=("version", "Resources"),
        document="the AppSpec",
        where=f"at the top level of an {platform} AppSpec",
        case_insensitive=True,
    )
    version = None
    if (node := present(fields, "version")) is not None:
        version = checker.version(node, key_path("", fields, "version"))
    resource = None
    if (node := present(fields, "Resources")) is not None:
        resource = check_resources(checker, node, key_path("", fields, "Resources"))
    hooks = check_hook_functions(
        checker,
        present(fields, "Hooks"),
        key_path("", fields, "Hooks"),
        platform=platform,
        all_events=all_events,
        hook_events=hook_events,
    )
    checker.raise_if_any()
    assert version is not None and resource is not None
    return TopLevel(version, resource, hooks)

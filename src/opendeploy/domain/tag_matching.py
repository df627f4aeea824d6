"""Tag matching: which instances a deployment group's tag filters and tag groups select.

The guide's rules (L11365–11638, L15396–15414):

- a tag filter is ``KEY_ONLY``, ``VALUE_ONLY`` or ``KEY_AND_VALUE`` (API ``EC2TagFilter`` / ``TagFilter``);
- keys and values are case-sensitive; ``*`` in the Value field matches any run of characters
  (``Name`` = ``GRP-*a`` matches ``GRP-1a``, ``GRP-2a`` and ``GRP-XYZ-a``);
- within one tag group an instance needs at least one of the group's tags (OR); across tag groups it
  must match every group (AND); other tags an instance carries do not matter;
- at most three tag groups of at most ten tags each.

A plain filter list (``ec2TagFilters`` / ``onPremisesInstanceTagFilters``) is one tag group; a tag set
(``ec2TagSet`` / ``onPremisesTagSet``) is a list of tag groups. EC2 and on-premises filters each select
from their own kind of instance, and a deployment group's instances are the union of the two.
Deregistered instances are never selected (L14143–14145).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

MAX_TAG_GROUPS = 3
MAX_TAGS_PER_GROUP = 10


class TagFilterType(StrEnum):
    KEY_ONLY = "KEY_ONLY"
    VALUE_ONLY = "VALUE_ONLY"
    KEY_AND_VALUE = "KEY_AND_VALUE"


class TagFilterError(ValueError):
    """A tag filter or tag set the API must refuse; the message says what is wrong."""


def _value_pattern(value: str) -> re.Pattern[str]:
    # Only ``*`` is a wildcard (the guide names no other); everything else matches literally.
    return re.compile(".*".join(re.escape(part) for part in value.split("*")), re.DOTALL)


@dataclass(frozen=True)
class TagFilter:
    """One tag filter: ``{Key, Value, Type}`` as the API spells it."""

    type: TagFilterType
    key: str | None = None
    value: str | None = None

    def __post_init__(self) -> None:
        if self.type in (TagFilterType.KEY_ONLY, TagFilterType.KEY_AND_VALUE) and not self.key:
            raise TagFilterError(f"a {self.type} tag filter needs a Key")
        if self.type is TagFilterType.VALUE_ONLY and self.value is None:
            raise TagFilterError("a VALUE_ONLY tag filter needs a Value")

    @classmethod
    def from_wire(cls, data: Mapping[str, str]) -> TagFilter:
        """Read ``{"Key", "Value", "Type"}``. Without ``Type`` the filter is what its fields say:
        KEY_AND_VALUE with both, KEY_ONLY with only a Key, VALUE_ONLY with only a Value."""
        key, value, type_ = data.get("Key"), data.get("Value"), data.get("Type")
        if type_ is None:
            if key and value is not None:
                type_ = TagFilterType.KEY_AND_VALUE
            elif key:
                type_ = TagFilterType.KEY_ONLY
            elif value is not None:
                type_ = TagFilterType.VALUE_ONLY
            else:
                raise TagFilterError("a tag filter needs a Key, a Value or both")
        try:
            filter_type = TagFilterType(type_)
        except ValueError:
            allowed = ", ".join(t.value for t in TagFilterType)
            raise TagFilterError(f"tag filter Type {type_!r} is not one of {allowed}") from None
        return cls(filter_type, key, value)

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        return _value_pattern(self.value or "")

    def value_matches(self, value: str) -> bool:
        return self._pattern.fullmatch(value) is not None

    def matches(self, tags: Mapping[str, str]) -> bool:
        """Whether an instance with ``tags`` (key -> value, ``""`` for no value) carries this tag."""
        if self.type is TagFilterType.KEY_ONLY:
            return self.key in tags
        if self.type is TagFilterType.KEY_AND_VALUE:
            value = tags.get(self.key or "")
            return value is not None and self.value_matches(value)
        return any(self.value_matches(v) for v in tags.values())


@dataclass(frozen=True)
class TagSet:
    """Tag groups: an instance matches when it matches at least one filter of every group."""

    groups: tuple[tuple[TagFilter, ...], ...] = ()

    @classmethod
    def single_group(cls, filters: Iterable[TagFilter]) -> TagSet:
        """A plain filter list (``ec2TagFilters``): one tag group, any filter selects."""
        filters = tuple(filters)
        return cls((filters,) if filters else ())

    @classmethod
    def from_wire(cls, groups: Sequence[Sequence[Mapping[str, str]]]) -> TagSet:
        """Read ``ec2TagSetList`` / ``onPremisesTagSetList`` and check the guide's limits."""
        tag_set = cls(tuple(tuple(TagFilter.from_wire(f) for f in group) for group in groups))
        tag_set.validate()
        return tag_set

    def validate(self) -> None:
        """Refuse what the guide does not allow: more than 3 groups, more than 10 tags, empty groups."""
        if len(self.groups) > MAX_TAG_GROUPS:
            raise TagFilterError(
                f"a tag set has at most {MAX_TAG_GROUPS} tag groups, this one has {len(self.groups)}"
            )
        for number, group in enumerate(self.groups, start=1):
            if not group:
                raise TagFilterError(f"tag group {number} is empty; give it at least one tag")
            if len(group) > MAX_TAGS_PER_GROUP:
                raise TagFilterError(
                    f"tag group {number} has {len(group)} tags; a tag group has at most {MAX_TAGS_PER_GROUP}"
                )

    def matches(self, tags: Mapping[str, str]) -> bool:
        # An empty tag set selects nothing: a group with no tag criteria has no instances.
        return bool(self.groups) and all(any(f.matches(tags) for f in group) for group in self.groups)


@dataclass(frozen=True)
class TaggedInstance:
    """An instance as tag matching sees it: its name, its tags, whether it is still registered."""

    name: str
    tags: Mapping[str, str] = field(default_factory=dict)
    registered: bool = True


def matching_instances(tag_set: TagSet, instances: Iterable[TaggedInstance]) -> tuple[str, ...]:
    """Names of the registered instances ``tag_set`` selects, sorted."""
    return tuple(sorted({i.name for i in instances if i.registered and tag_set.matches(i.tags)}))


NO_TAGS = TagSet()


def deployment_group_instances(
    *,
    ec2_tag_set: TagSet = NO_TAGS,
    ec2_instances: Iterable[TaggedInstance] = (),
    on_premises_tag_set: TagSet = NO_TAGS,
    on_premises_instances: Iterable[TaggedInstance] = (),
) -> tuple[str, ...]:
    """The instances a deployment group targets: EC2 matches plus on-premises matches, sorted."""
    selected = set(matching_instances(ec2_tag_set, ec2_instances))
    selected.update(matching_instances(on_premises_tag_set, on_premises_instances))
    return tuple(sorted(selected))

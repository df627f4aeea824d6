"""Tag filters and tag groups on the guide's four examples (guide L11395–11638) and its matching rules."""

from __future__ import annotations

import pytest

from opendeploy.domain.tag_matching import (
    TagFilter,
    TagFilterError,
    TagFilterType,
    TaggedInstance,
    TagSet,
    deployment_group_instances,
    matching_instances,
)


def kv(key: str, value: str) -> dict[str, str]:
    return {"Type": "KEY_AND_VALUE", "Key": key, "Value": value}


def instance(name: str, **tags: str) -> TaggedInstance:
    return TaggedInstance(name, tags)


# --- the guide's four examples ---------------------------------------------------------------------------


def test_example_1_single_tag_group_single_tag() -> None:
    """Guide L11403–11430: every instance tagged Name=AppVersion-ABC is in, even with other tags."""
    tag_set = TagSet.from_wire([[kv("Name", "AppVersion-ABC")]])
    fleet = [
        instance("plain", Name="AppVersion-ABC"),
        instance("extra-tags", Name="AppVersion-ABC", Region="North", Owner="ops"),
        instance("other-name", Name="AppVersion-XYZ"),
        instance("untagged"),
    ]
    assert matching_instances(tag_set, fleet) == ("extra-tags", "plain")


def test_example_2_single_tag_group_multiple_tags() -> None:
    """Guide L11431–11473: any of Region=North, South or East is enough; Region=West is not included."""
    tag_set = TagSet.from_wire([[kv("Region", "North"), kv("Region", "South"), kv("Region", "East")]])
    fleet = [
        instance("north", Region="North"),
        instance("south", Region="South", Name="x"),
        instance("east", Region="East"),
        instance("west", Region="West"),
    ]
    assert matching_instances(tag_set, fleet) == ("east", "north", "south")


def test_example_3_multiple_tag_groups_single_tags() -> None:
    """Guide L11474–11531: with three tag groups only instances carrying Name=AppVersion-ABC and
    Region=North and Type=t2.medium are in."""
    tag_set = TagSet.from_wire(
        [[kv("Name", "AppVersion-ABC")], [kv("Region", "North")], [kv("Type", "t2.medium")]]
    )
    fleet = [
        instance("all-three", Name="AppVersion-ABC", Region="North", Type="t2.medium"),
        instance("all-three-and-more", Name="AppVersion-ABC", Region="North", Type="t2.medium", Env="x"),
        instance("other-region", Name="AppVersion-ABC", Region="South", Type="t2.medium"),
        instance("other-type", Name="AppVersion-ABC", Region="North", Type="t2.large"),
        instance("only-name", Name="AppVersion-ABC"),
    ]
    assert matching_instances(tag_set, fleet) == ("all-three", "all-three-and-more")


def test_example_4_multiple_tag_groups_multiple_tags() -> None:
    """Guide L11532–11638: the three included and the three excluded instances of the example."""
    tag_set = TagSet.from_wire(
        [
            [kv("Environment", "Beta"), kv("Environment", "Staging")],
            [kv("Region", "North"), kv("Region", "South"), kv("Region", "East")],
            [kv("Type", "t2.medium"), kv("Type", "t2.large")],
        ]
    )
    included = [
        instance("in-1", Environment="Beta", Region="North", Type="t2.medium"),
        instance("in-2", Environment="Staging", Region="East", Type="t2.large"),
        instance("in-3", Environment="Staging", Region="South", Type="t2.large"),
    ]
    excluded = [
        instance("out-west", Environment="Beta", Region="West", Type="t2.medium"),
        instance("out-micro", Environment="Staging", Region="East", Type="t2.micro"),
        instance("out-production", Environment="Production", Region="South", Type="t2.large"),
    ]
    assert matching_instances(tag_set, included + excluded) == ("in-1", "in-2", "in-3")


# --- filter types, case, wildcards -------------------------------------------------------------------------


def test_key_and_value_is_case_sensitive() -> None:
    """Guide L11716 and L15404: keys and values are case-sensitive."""
    tag_set = TagSet.single_group([TagFilter(TagFilterType.KEY_AND_VALUE, "Name", "CodeDeployDemo")])
    fleet = [
        instance("exact", Name="CodeDeployDemo"),
        instance("lower-value", Name="codedeploydemo"),
        TaggedInstance("lower-key", {"name": "CodeDeployDemo"}),
    ]
    assert matching_instances(tag_set, fleet) == ("exact",)


def test_wildcard_in_the_value() -> None:
    """Guide L15398–15404: Name = GRP-*a matches GRP-1a, GRP-2a and GRP-XYZ-a (case-sensitive)."""
    tag_set = TagSet.single_group([TagFilter(TagFilterType.KEY_AND_VALUE, "Name", "GRP-*a")])
    fleet = [
        instance("1a", Name="GRP-1a"),
        instance("2a", Name="GRP-2a"),
        instance("xyz", Name="GRP-XYZ-a"),
        instance("capital-A", Name="GRP-1A"),
        instance("lower-grp", Name="grp-1a"),
        instance("suffix", Name="GRP-1ab"),
    ]
    assert matching_instances(tag_set, fleet) == ("1a", "2a", "xyz")


def test_only_the_star_is_a_wildcard() -> None:
    """Other pattern characters match themselves: a tag value with dots or brackets is literal."""
    literal = TagFilter(TagFilterType.KEY_AND_VALUE, "Type", "t2.[ab]?")
    assert literal.matches({"Type": "t2.[ab]?"})
    assert not literal.matches({"Type": "t2xa"})
    assert TagFilter(TagFilterType.KEY_AND_VALUE, "Type", "*").matches({"Type": ""})


def test_key_only_matches_any_value() -> None:
    """API EC2TagFilter Type KEY_ONLY: an instance with the key, whatever its value (even none)."""
    tag_set = TagSet.from_wire([[{"Type": "KEY_ONLY", "Key": "Canary"}]])
    fleet = [instance("yes", Canary="true"), instance("empty", Canary=""), instance("no", Other="Canary")]
    assert matching_instances(tag_set, fleet) == ("empty", "yes")


def test_value_only_matches_the_value_under_any_key() -> None:
    """API EC2TagFilter Type VALUE_ONLY: an instance with that value under any key."""
    tag_set = TagSet.from_wire([[{"Type": "VALUE_ONLY", "Value": "blue"}]])
    fleet = [instance("a", Color="blue"), instance("b", Slot="blue"), instance("c", Blue="green")]
    assert matching_instances(tag_set, fleet) == ("a", "b")


def test_filter_type_defaults_to_what_the_fields_say() -> None:
    """Decision: a filter without Type is KEY_AND_VALUE with both fields, else KEY_ONLY or VALUE_ONLY."""
    assert TagFilter.from_wire({"Key": "k", "Value": "v"}).type is TagFilterType.KEY_AND_VALUE
    assert TagFilter.from_wire({"Key": "k"}).type is TagFilterType.KEY_ONLY
    assert TagFilter.from_wire({"Value": "v"}).type is TagFilterType.VALUE_ONLY


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ({"Type": "KEY_ONLY"}, "KEY_ONLY tag filter needs a Key"),
        ({"Type": "KEY_AND_VALUE", "Value": "v"}, "KEY_AND_VALUE tag filter needs a Key"),
        ({"Type": "VALUE_ONLY", "Key": "k"}, "VALUE_ONLY tag filter needs a Value"),
        ({"Type": "KEY", "Key": "k"}, "'KEY' is not one of KEY_ONLY, VALUE_ONLY, KEY_AND_VALUE"),
        ({}, "needs a Key, a Value or both"),
    ],
)
def test_bad_filters_are_refused_by_name(wire: dict[str, str], message: str) -> None:
    with pytest.raises(TagFilterError, match=message):
        TagFilter.from_wire(wire)


def test_tag_set_limits() -> None:
    """Guide L11384–11385, L15413–15414: at most three tag groups of at most ten tags each."""
    ten = [kv("Name", f"v{k}") for k in range(10)]
    TagSet.from_wire([ten, ten, ten])
    with pytest.raises(TagFilterError, match="at most 3 tag groups, this one has 4"):
        TagSet.from_wire([ten, ten, ten, ten])
    with pytest.raises(TagFilterError, match="tag group 2 has 11 tags"):
        TagSet.from_wire([ten, [*ten, kv("Name", "v10")]])
    with pytest.raises(TagFilterError, match="tag group 1 is empty"):
        TagSet.from_wire([[]])


def test_no_tags_select_nothing() -> None:
    """A deployment group without tag criteria selects no instance (it would fail with NO_INSTANCES)."""
    assert matching_instances(TagSet(), [instance("a", Name="x")]) == ()
    assert matching_instances(TagSet.single_group([]), [instance("a", Name="x")]) == ()


# --- a deployment group's instances ------------------------------------------------------------------------


def test_deregistered_instances_are_never_targets() -> None:
    """Guide L14143–14145: a deregistered instance is not included even if its tags still match."""
    tag_set = TagSet.from_wire([[kv("Name", "CodeDeployDemo-OnPrem")]])
    fleet = [
        TaggedInstance("registered", {"Name": "CodeDeployDemo-OnPrem"}),
        TaggedInstance("deregistered", {"Name": "CodeDeployDemo-OnPrem"}, registered=False),
    ]
    assert deployment_group_instances(on_premises_tag_set=tag_set, on_premises_instances=fleet) == (
        "registered",
    )


def test_ec2_and_on_premises_filters_each_select_their_own_instances() -> None:
    """Guide L7620–7621: a group may carry EC2 and on-premises tag filters; each applies to its own kind
    of instance and the group deploys to both."""
    ec2 = [TaggedInstance("i-0abc", {"Name": "web"}), TaggedInstance("i-0def", {"Name": "db"})]
    on_premises = [TaggedInstance("rack-1", {"Name": "web"}), TaggedInstance("rack-2", {"Role": "web"})]
    targets = deployment_group_instances(
        ec2_tag_set=TagSet.from_wire([[kv("Name", "web")]]),
        ec2_instances=ec2,
        on_premises_tag_set=TagSet.from_wire([[{"Type": "VALUE_ONLY", "Value": "web"}]]),
        on_premises_instances=on_premises,
    )
    assert targets == ("i-0abc", "rack-1", "rack-2")

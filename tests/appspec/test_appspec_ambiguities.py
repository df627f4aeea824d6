"""Decisions on the ambiguities of §15 of the AppSpec reference digest that concern the AppSpec grammar and
the lifecycle event catalogue; one named test per decision, citing the guide's lines.

Recorded elsewhere: §15 #1 (missing run-order diagrams: termination and blue/green rollback orders) in
test_lifecycle_events.py (``test_decision_*``). Not AppSpec questions, so decided by the install engine, the
agent or the deployment engine: #2 working directory, #12 the Lambda hook callback, #16/#17 how permission
rules match files (the parser keeps object, pattern, except and type exactly as written, see below), #29
environment variables, #30–#33 agent configuration and instruction files, #36–#37 quotas; #3, #34 and #35
describe no behaviour.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from appspec_fixtures import fixture_text, whole_server_appspec

from opendeploy.appspec import (
    AppSpecError,
    HookScript,
    load_ecs_appspec,
    load_lambda_appspec,
    load_server_appspec,
)
from opendeploy.appspec.lifecycle_events import (
    SERVER_RESERVED_EVENTS,
    AppSpecSource,
    appspec_source,
    ecs_events,
    server_events,
)

ECS = """\
version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: arn:aws:ecs:us-east-1:111222333444:task-definition/web:3
        LoadBalancerInfo:
          ContainerName: web
          ContainerPort: 80
"""
LAMBDA = """\
version: 0.0
Resources:
  - myLambdaFunction:
      Type: AWS::Lambda::Function
      Properties:
        Name: myLambdaFunction
        Alias: live
        CurrentVersion: "1"
        TargetVersion: "2"
"""


# §15 #4 — event names


def test_4_the_ecs_test_traffic_event_is_allow_test_traffic() -> None:
    """The ECS note calls it TestTraffic (L24040), the ECS overview AllowTestTraffic (L1228). Decision: the
    event is AllowTestTraffic; it is run by CodeDeploy, so neither name takes a hook function."""
    assert "AllowTestTraffic" in [event.name for event in ecs_events()]
    for name in ("AllowTestTraffic", "TestTraffic"):
        with pytest.raises(AppSpecError) as caught:
            load_ecs_appspec(ECS + f"Hooks:\n  - {name}: check\n")
        assert caught.value.key_path == f"Hooks[0].{name}"


def test_4_block_and_allow_traffic_are_reserved_in_place_too() -> None:
    """The in-place note (L24587) leaves BlockTraffic and AllowTraffic out of its unscriptable list, but
    footnote 3 (L24547) reserves them. Decision: reserved in every deployment type."""
    assert {"BlockTraffic", "AllowTraffic"} <= SERVER_RESERVED_EVENTS
    in_place = {event.name: event for event in server_events(load_balancer=True)}
    assert in_place["BlockTraffic"].reserved and in_place["AllowTraffic"].reserved


def test_4_validate_service_is_followed_by_the_traffic_events_behind_a_load_balancer() -> None:
    """ValidateService is called "the last deployment lifecycle event" (L24333); behind a load balancer the
    allow-traffic events follow it (L24576–L24584). Decision: the last install event, not the last event."""
    names = [event.name for event in server_events(load_balancer=True)]
    assert names[names.index("ValidateService") + 1 :] == [
        "BeforeAllowTraffic",
        "AllowTraffic",
        "AfterAllowTraffic",
    ]
    assert [event.name for event in server_events()][-1] == "ValidateService"


# §15 #5 — key case


def test_5_lambda_and_ecs_keys_match_whatever_their_case() -> None:
    """The structure sections write lower case (L23198–L23202, L23530–L23537), every example PascalCase
    (L24874–L25035). Decision: Lambda and ECS keys are case-insensitive, values exact."""
    lower = load_lambda_appspec(LAMBDA.lower().replace("aws::lambda::function", "AWS::Lambda::Function"))
    assert lower.function.target_version == 2
    mixed = load_ecs_appspec(
        ECS.replace("LoadBalancerInfo", "loadBalancerINFO").replace("Resources", "RESOURCES")
    )
    assert mixed.target_service.container_port == 80
    with pytest.raises(AppSpecError, match="did you mean 'AWS::ECS::Service'"):
        load_ecs_appspec(ECS.replace("AWS::ECS::Service", "aws::ecs::service"))


def test_5_ec2_keys_are_lower_case_and_exact() -> None:
    """Every EC2 key in the guide is lower case (L23228–L23276) and AWS's agent matches them exactly.
    Decision: the same here, with a hint when only the case is wrong."""
    with pytest.raises(AppSpecError) as caught:
        load_server_appspec("Version: 0.0\nos: linux\n")
    assert caught.value.key_path == "Version"
    assert "did you mean 'version'?" in str(caught.value)


# §15 #6 — version


@pytest.mark.parametrize("written", ["0.0", '"0.0"', "'0.0'", "0.00"])
def test_6_version_may_be_the_number_or_the_string(written: str) -> None:
    """ "Specify version with a string" (L23175), yet every example writes the number 0.0 (L25062, L25015).
    Decision: accept both; anything else is refused."""
    assert load_server_appspec(f"version: {written}\nos: linux\n").version == "0.0"


def test_6_json_version_number_is_accepted() -> None:
    """The JSON examples write "version": 0.0, a number (L24907, L25015)."""
    spec = load_lambda_appspec(
        '{"version": 0.0, "Resources": [{"f": {"Type": "AWS::Lambda::Function", '
        '"Properties": {"Name": "f", "Alias": "a", "CurrentVersion": "1", "TargetVersion": "2"}}}]}'
    )
    assert spec.version == "0.0"


# §15 #7 — ECS and Lambda value types


def test_7_container_port_may_be_quoted() -> None:
    """ContainerPort "is a number" (L23640) but the guide's template quotes it (L23581). Decision: both."""
    assert (
        load_ecs_appspec(
            ECS.replace("ContainerPort: 80", 'ContainerPort: "8080"')
        ).target_service.container_port
        == 8080
    )


def test_7_lambda_versions_may_be_numbers() -> None:
    """Versions are "specified with a string" that "must be a valid positive integer" (L23555–L23565).
    Decision: the quoted "1" of the examples and an unquoted 1 both mean version 1."""
    spec = load_lambda_appspec(LAMBDA.replace('CurrentVersion: "1"', "CurrentVersion: 1"))
    assert (spec.function.current_version, spec.function.target_version) == (1, 2)


# §15 #8 — capacity provider base


def test_8_base_zero_does_not_count_as_a_defined_base() -> None:
    """ "Only one capacity provider ... can have a base defined" (L23688–L23689), yet the official example
    sets Base: 1 and Base: 0 (L24892–L24897). Decision: at most one provider may have Base above 0."""
    assert (
        len(
            load_ecs_appspec(
                fixture_text("ecs_appspec_full_yaml.yml")
            ).target_service.capacity_provider_strategy
        )
        == 2
    )
    strategy = (
        "        CapacityProviderStrategy:\n"
        "          - CapacityProvider: A\n            Base: 1\n            Weight: 1\n"
        "          - CapacityProvider: B\n            Base: 1\n            Weight: 1\n"
    )
    with pytest.raises(AppSpecError, match="only one capacity provider may have a base"):
        load_ecs_appspec(ECS + strategy)


# §15 #9 — subnets and security groups


def test_9_subnets_may_be_a_list_or_a_comma_separated_string() -> None:
    """Subnets and SecurityGroups are a "comma-separated list" (L23666–L23669) but the examples write YAML
    and JSON arrays (L24887–L24888). Decision: both; and all three settings or none (L23674–L23679)."""
    network = (
        "        NetworkConfiguration:\n          AwsvpcConfiguration:\n"
        "            Subnets: {subnets}\n            SecurityGroups: sg-1\n"
        "            AssignPublicIp: ENABLED\n"
    )
    as_list = load_ecs_appspec(ECS + network.format(subnets="[subnet-1, subnet-2]"))
    as_text = load_ecs_appspec(ECS + network.format(subnets='"subnet-1,subnet-2"'))
    assert as_list.target_service.network_configuration == as_text.target_service.network_configuration
    assert as_text.target_service.network_configuration.subnets == ("subnet-1", "subnet-2")


# §15 #10 — resources


def test_10_the_ecs_resource_is_named_target_service() -> None:
    """The Lambda resource name is a placeholder (L23531 "name-of-function-to-deploy"), the ECS one is always
    the literal TargetService (L23575, L24873, L24910). Decision: ECS requires TargetService (any case)."""
    with pytest.raises(AppSpecError, match="must be named TargetService"):
        load_ecs_appspec(ECS.replace("TargetService", "WebService"))
    assert (
        load_ecs_appspec(ECS.replace("TargetService", "targetService")).target_service.logical_name
        == "targetService"
    )


@pytest.mark.parametrize("loader,text", [(load_lambda_appspec, LAMBDA), (load_ecs_appspec, ECS)])
def test_10_exactly_one_resource(loader: Callable[[str], object], text: str) -> None:
    """The guide never says how many resources there may be; every example has one. A Lambda deployment
    shifts one alias and an ECS deployment replaces one service's task set. Decision: exactly one."""
    head, body = text.split("Resources:\n", 1)
    with pytest.raises(AppSpecError, match="exactly one resource"):
        loader(f"{head}Resources:\n{body}{body}")


# §15 #11 — hook values


def test_11_hook_functions_are_names_or_arns_each_event_once() -> None:
    """A hook is "one Lambda function specified with a string" (L24010–L24012), by name in the examples and by
    ARN in L8452/L8471; the same function may serve several events (L24078–L24081). Unknown event names and
    an event listed twice are unspecified. Decision: names, partial ARNs and ARNs are accepted; unknown
    events and repeated events are refused (each hook runs once per deployment, L24011, L24147)."""
    arn = "arn:aws:lambda:us-east-1:111222333444:function:Validate:live"
    spec = load_lambda_appspec(
        LAMBDA + f"Hooks:\n  - BeforeAllowTraffic: {arn}\n  - AfterAllowTraffic: {arn}\n"
    )
    assert spec.hooks == {"BeforeAllowTraffic": arn, "AfterAllowTraffic": arn}
    with pytest.raises(AppSpecError, match="has a hook already"):
        load_lambda_appspec(LAMBDA + "Hooks:\n  - BeforeAllowTraffic: a\n  - beforeallowtraffic: b\n")


# §15 #13 — the guide's examples as printed


def test_13_examples_broken_by_the_pdf_give_a_clear_yaml_error() -> None:
    """PDF page breaks put a stray leading space into some examples (e.g. L23454 of example 6), which makes
    them invalid YAML. Decision: no guessing at repairs; the error names the line."""
    raw = "files:\n   - source: .\\my-folder\n    destination: c:\\temp\\other-folder\n"
    with pytest.raises(AppSpecError) as caught:
        load_server_appspec(whole_server_appspec(raw, "windows"))
    assert caught.value.line == 5
    assert "not valid YAML" in str(caught.value)


# §15 #14 — files


def test_14_destinations_must_be_fully_qualified_and_sources_stay_in_the_revision() -> None:
    """A destination "must be a fully qualified path" (L23314–L23316); a relative one is unspecified.
    Decision: refused. A source is a path in the revision (L23311–L23312): one that climbs out with .. is
    refused. A source is a literal path: '*' is kept as written, never expanded."""
    with pytest.raises(AppSpecError, match="fully qualified"):
        load_server_appspec(whole_server_appspec("files:\n  - source: a\n    destination: srv\n"))
    with pytest.raises(AppSpecError, match="inside the revision"):
        load_server_appspec(whole_server_appspec("files:\n  - source: a/../../b\n    destination: /srv\n"))
    spec = load_server_appspec(
        whole_server_appspec("files:\n  - source: 'conf/*.xml'\n    destination: /srv\n")
    )
    assert spec.files[0].source == "conf/*.xml"


# §15 #15 — file_exists_behavior


def test_15_file_exists_behavior_belongs_at_the_top_level() -> None:
    """Its place is shown only by indentation (L23298, L23501). Decision: top level only; indented inside a
    files entry it is an unknown key there, named as such."""
    text = "files:\n  - source: /\n    destination: /srv\n    file_exists_behavior: RETAIN\n"
    with pytest.raises(AppSpecError) as caught:
        load_server_appspec(whole_server_appspec(text))
    assert caught.value.key_path == "files[0].file_exists_behavior"


# §15 #16–#20 — permissions


def test_17_except_items_are_kept_exactly_as_written() -> None:
    """Except items appear as a bare name (L23879), a path without leading slash (L23920) and an absolute path
    (L23964). Decision for the parser: keep each verbatim; how they match is the install engine's rule."""
    spec = load_server_appspec(fixture_text("ec2_permissions_full_appspec.yml"))
    assert spec.permissions[1].except_ == ("my-file-3.txt",)
    assert spec.permissions[4].except_ == ("tmp/my-app/my-folder-2/my-folder-3",)
    acls = load_server_appspec(whole_server_appspec(fixture_text("ec2_permissions_acls_context.yml")))
    assert acls.permissions[0].except_ == ("/var/www/html/WordPress/ReadMe.txt",)


def test_18_patterns_match_names_inside_object() -> None:
    """Pattern syntax is defined only by "**" and *-globs of names (L23749–L23753, L23875–L23917). Decision
    for the parser: a pattern is kept as written (the install engine matches it against paths relative to
    object), but an absolute one is refused, since it would silently match nothing."""
    spec = load_server_appspec(fixture_text("ec2_permissions_full_appspec.yml"))
    assert [p.pattern for p in spec.permissions] == ["*-3.txt", "*.txt", "**", "**", "*my-folder*", "**"]
    nested = load_server_appspec(whole_server_appspec('permissions:\n  - object: /srv\n    pattern: "*/x"\n'))
    assert nested.permissions[0].pattern == "*/x"
    with pytest.raises(AppSpecError, match="must be relative to object"):
        load_server_appspec(whole_server_appspec('permissions:\n  - object: /srv\n    pattern: "/srv/x"\n'))


def test_19_and_20_type_defaults_to_both_and_rules_keep_file_order() -> None:
    """The default of type is not stated (L23828–L23835); AWS's agent uses both. Decision: both. Rules are
    kept in file order, so that later rules can win on the same object."""
    spec = load_server_appspec(
        whole_server_appspec(
            "permissions:\n  - object: /srv\n    mode: 755\n  - object: /srv\n    mode: 700\n"
        )
    )
    assert [(p.types, p.mode) for p in spec.permissions] == [
        (("file", "directory"), "755"),
        (("file", "directory"), "700"),
    ]


def test_21_mask_is_allowed_but_unnamed_user_group_other_are_not() -> None:
    """ "Setting unnamed users, unnamed groups, or other similar ACL entries causes the AppSpec file to fail"
    (L23807–L23810), yet the guide's example sets m::rw (L23972). Decision: the unnamed mask is allowed
    (it has no name by nature); unnamed user, group and other entries are refused; default: entries, which
    AWS's agent allows unnamed, are allowed on directories."""
    spec = load_server_appspec(
        whole_server_appspec(
            "permissions:\n  - object: /srv\n    acls: ['m::rw', 'd:u::rwx', 'default:g:staff:r-x']\n"
        )
    )
    assert spec.permissions[0].acls == ("m::rw", "d:u::rwx", "default:g:staff:r-x")
    for entry in ("u::rw", "g::r", "o::r", "user::7"):
        with pytest.raises(AppSpecError, match="unnamed"):
            load_server_appspec(
                whole_server_appspec(f"permissions:\n  - object: /srv\n    acls: ['{entry}']\n")
            )


def test_22_context_user_may_be_spelt_name_and_type_is_required() -> None:
    """The guide writes context.user (L23815); AWS's agent reads the user from name and requires type.
    Decision: accept name as another spelling of user (existing bundles keep working), refuse both at once,
    and require type."""
    text = "permissions:\n  - object: /srv\n    context:\n      {first}: unconfined_u\n      type: httpd_t\n"
    by_name = load_server_appspec(whole_server_appspec(text.format(first="name")))
    by_user = load_server_appspec(whole_server_appspec(text.format(first="user")))
    assert by_name.permissions[0].context == by_user.permissions[0].context
    assert by_name.permissions[0].context.user == "unconfined_u"
    both = text.format(first="user") + "      name: system_u\n"
    with pytest.raises(AppSpecError, match="duplicates 'user'"):
        load_server_appspec(whole_server_appspec(both))


def test_23_numeric_owner_and_group_are_kept_as_written() -> None:
    """Owner and group are names (L23759–L23768); an unquoted number such as 1000 reads as an integer in YAML.
    Decision: keep the text as written ("1000"); resolving it to an account is the install engine's job."""
    spec = load_server_appspec(
        whole_server_appspec("permissions:\n  - object: /srv\n    owner: 1000\n    group: 0100\n")
    )
    assert (spec.permissions[0].owner, spec.permissions[0].group) == ("1000", "0100")


def test_24_an_unquoted_leading_zero_mode_is_read_as_written() -> None:
    """ "If the value includes a leading zero, you must surround it with double-quotes, or remove the leading
    zero" (L23775–L23776): a YAML 1.1 loader turns an unquoted 0644 into 420. Decision: accept it and read it
    as written, "0644", since that is what the user means."""
    spec = load_server_appspec(whole_server_appspec("permissions:\n  - object: /srv\n    mode: 0644\n"))
    assert spec.permissions[0].mode == "0644"


# §15 #25–#27 — runas and timeouts


def test_25_runas_is_for_linux_and_refused_on_windows() -> None:
    """runas applies to "Amazon Linux and Ubuntu Server instances only" (L24634–L24635); for Windows the guide
    says to leave it out (L25086). Decision: allowed with os: linux (which includes RHEL; the os key cannot
    tell distributions apart), refused with os: windows."""
    hooks = "hooks:\n  ValidateService:\n    - location: check.sh\n      runas: app\n"
    assert load_server_appspec(whole_server_appspec(hooks)).scripts_for("ValidateService")[0].runas == "app"
    with pytest.raises(AppSpecError, match="Linux instances only"):
        load_server_appspec(whole_server_appspec(hooks, "windows"))


def test_26_only_written_timeouts_count_towards_the_hour() -> None:
    """The timeouts of one event "must add up to no more than 3600" (L24624–L24629), but a script without a
    timeout defaults to 3600 (L24621–L24622) and the guide's own example pairs such a script with a 300 s one
    (L25155–L25159). Decision: the written timeouts must add up to at most 3600 and each be at least 1 (else
    the file is refused); at run time the event as a whole may run at most 3600 s (``event_timeout``)."""
    spec = load_server_appspec(fixture_text("ec2_appspec_spacing_example.yml"))
    assert [s.timeout for s in spec.scripts_for("ApplicationStart")] == [3600, 300]
    assert spec.event_timeout("ApplicationStart") == 3600
    over = (
        "hooks:\n  AfterInstall:\n    - location: a\n      timeout: 3000\n"
        "    - location: b\n      timeout: 601\n"
    )
    with pytest.raises(AppSpecError, match="add up to 3601 seconds"):
        load_server_appspec(whole_server_appspec(over))


def test_27_runas_is_the_user_the_appspec_names() -> None:
    """The example's narrative says "as the user codedeploy" (L25105) but its AppSpec says codedeployuser
    (L25082). Decision: the AppSpec is what runs: codedeployuser."""
    spec = load_server_appspec(fixture_text("ec2_appspec_full_linux.yml"))
    assert spec.scripts_for("ValidateService") == (
        HookScript("Scripts/MonitorService.sh", 3600, runas="codedeployuser"),
    )


# §15 #28 — which AppSpec a hook uses


def test_28_before_install_runs_from_the_new_revision() -> None:
    """L10231–L10235 says the last-successful-install file decides "which ApplicationStop and BeforeInstall
    scripts to run"; L26916–L26921 says ApplicationStop, BeforeBlockTraffic and AfterBlockTraffic come from
    the previous successful deployment and "all other scripts" from the current one. Decision: the latter,
    the more specific statement; BeforeInstall runs from the new revision, which is downloaded by then."""
    assert appspec_source("BeforeInstall") is AppSpecSource.NEW
    for event in ("ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"):
        assert appspec_source(event) is AppSpecSource.LAST_SUCCESSFUL

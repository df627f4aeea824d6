"""The lifecycle event catalogue: orders, scriptable vs reserved events, and which revision's AppSpec each
event runs from, for every kind of deployment the guide describes."""

from __future__ import annotations

import pytest

from opendeploy.appspec.lifecycle_events import (
    SERVER_ALL_EVENTS,
    SERVER_ORDERED_EVENTS,
    SERVER_RESERVED_EVENTS,
    SERVER_SCRIPTABLE_EVENTS,
    AppSpecSource,
    LifecycleEvent,
    appspec_source,
    blue_green_role_order,
    ecs_events,
    lambda_events,
    server_events,
)

IN_PLACE_WITH_LOAD_BALANCER = [
    "BeforeBlockTraffic",
    "BlockTraffic",
    "AfterBlockTraffic",
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
]


def names(events: tuple[LifecycleEvent, ...]) -> list[str]:
    return [event.name for event in events]


def test_scriptable_and_reserved_server_events() -> None:
    """Guide L24270–L24362 lists the events; footnote 3 (L24547) reserves DownloadBundle, Install,
    BlockTraffic and AllowTraffic for CodeDeploy."""
    assert {"DownloadBundle", "Install", "BlockTraffic", "AllowTraffic"} == SERVER_RESERVED_EVENTS
    assert {
        "ApplicationStop",
        "BeforeInstall",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
        "BeforeBlockTraffic",
        "AfterBlockTraffic",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    } == SERVER_SCRIPTABLE_EVENTS
    assert set(SERVER_ALL_EVENTS) == SERVER_SCRIPTABLE_EVENTS | SERVER_RESERVED_EVENTS


def test_codedeploy_local_default_order() -> None:
    """The eleven events an instance runs, in the order codedeploy-local runs them by default."""
    assert SERVER_ORDERED_EVENTS == (
        "BeforeBlockTraffic",
        "AfterBlockTraffic",
        "ApplicationStop",
        "DownloadBundle",
        "BeforeInstall",
        "Install",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    )


def test_in_place_with_a_load_balancer_runs_all_thirteen_events() -> None:
    """Guide L24576–L24589 (in-place run order), the availability table's in-place column (L24370–L24547)."""
    events = server_events(load_balancer=True)
    assert names(events) == IN_PLACE_WITH_LOAD_BALANCER
    assert [e.name for e in events if e.reserved] == [
        "BlockTraffic",
        "DownloadBundle",
        "Install",
        "AllowTraffic",
    ]


def test_in_place_without_a_load_balancer_skips_the_traffic_events() -> None:
    """Guide L24582–L24584: the six hooks related to blocking and allowing traffic apply only with a load
    balancer in the deployment group."""
    assert names(server_events()) == [
        "ApplicationStop",
        "DownloadBundle",
        "BeforeInstall",
        "Install",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
    ]


def test_rollback_of_an_in_place_deployment_runs_like_one() -> None:
    """Guide L24545 (footnote 2) and L24576: in-place rollback uses the in-place column and order."""
    assert server_events(load_balancer=True, rollback=True) == server_events(load_balancer=True)


def test_blue_green_replacement_instances_install_then_allow_traffic() -> None:
    """Guide L24591–L24599 and the table's replacement column."""
    events = server_events(deployment_type="BLUE_GREEN", role="replacement")
    assert names(events) == IN_PLACE_WITH_LOAD_BALANCER[3:]


def test_blue_green_original_instances_block_traffic() -> None:
    """Guide L24591–L24599 and the table's original column."""
    events = server_events(deployment_type="BLUE_GREEN", role="original")
    assert names(events) == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    assert all(e.appspec_source is AppSpecSource.LAST_SUCCESSFUL for e in events if e.scriptable)


def test_blue_green_installs_on_replacements_before_blocking_originals() -> None:
    """Guide L24591–L24599: replacement instances run to AfterAllowTraffic, then original instances block."""
    assert blue_green_role_order() == ("replacement", "original")


def test_blue_green_rollback_events_per_role() -> None:
    """The availability table's rollback columns (L24370–L24547): original instances allow traffic again,
    replacement instances block it; nothing is installed."""
    original = server_events(deployment_type="BLUE_GREEN", role="original", rollback=True)
    replacement = server_events(deployment_type="BLUE_GREEN", role="replacement", rollback=True)
    assert names(original) == ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    assert names(replacement) == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]


def test_decision_blue_green_rollback_allows_traffic_to_originals_first() -> None:
    """Decision (guide §15 #1, the rollback order is not given, L24591–L24599): traffic goes back to the
    original instances before it is blocked on the replacements, so the application keeps serving."""
    assert blue_green_role_order(rollback=True) == ("original", "replacement")


def test_blue_green_rollback_revision_sources() -> None:
    """Replacement instances block traffic with the revision they most recently received; original instances
    allow traffic with the revision they last ran successfully."""
    original = server_events(deployment_type="BLUE_GREEN", role="original", rollback=True)
    replacement = server_events(deployment_type="BLUE_GREEN", role="replacement", rollback=True)
    assert {e.name: e.appspec_source for e in original if e.scriptable} == {
        "BeforeAllowTraffic": AppSpecSource.LAST_SUCCESSFUL,
        "AfterAllowTraffic": AppSpecSource.LAST_SUCCESSFUL,
    }
    assert {e.name: e.appspec_source for e in replacement if e.scriptable} == {
        "BeforeBlockTraffic": AppSpecSource.MOST_RECENT,
        "AfterBlockTraffic": AppSpecSource.MOST_RECENT,
    }


def test_auto_scaling_launch_installs_and_allows_traffic() -> None:
    """The table's Auto Scaling launch column and its run-order note (L24551–L24562)."""
    assert names(server_events(scale_out=True, load_balancer=True)) == IN_PLACE_WITH_LOAD_BALANCER[3:]
    assert names(server_events(scale_out=True)) == IN_PLACE_WITH_LOAD_BALANCER[3:10]


def test_decision_auto_scaling_termination_blocks_traffic_then_stops_the_application() -> None:
    """Decision (guide §15 #1): the table marks ApplicationStop for termination deployments (L24431) and
    L2987–L2989 suggests hooking ApplicationStop "to a script that shuts down your application gracefully
    before the instance is terminated", but the termination diagram (L24563–L24574) is missing.
    ApplicationStop runs after the instance stops receiving traffic, as it does in an in-place deployment."""
    events = server_events(scale_in=True, load_balancer=True)
    assert names(events) == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop"]
    # Nothing new is deployed (L2985–L2986): every script comes from the last successful revision.
    assert all(e.appspec_source is AppSpecSource.LAST_SUCCESSFUL for e in events if e.scriptable)


def test_decision_termination_without_a_load_balancer_only_stops_the_application() -> None:
    """Decision: the traffic events need a load balancer (L24582–L24584) in termination deployments too."""
    assert names(server_events(scale_in=True)) == ["ApplicationStop"]


@pytest.mark.parametrize("event", ["ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"])
def test_stop_and_block_events_run_from_the_last_successful_revision(event: str) -> None:
    """Guide L26916–L26921: the agent runs the scripts for ApplicationStop, BeforeBlockTraffic and
    AfterBlockTraffic from the AppSpec of the previous successful deployment; also L24279–L24283."""
    assert appspec_source(event) is AppSpecSource.LAST_SUCCESSFUL
    assert appspec_source(event, deployment_type="BLUE_GREEN") is AppSpecSource.LAST_SUCCESSFUL
    assert appspec_source(event, deployment_creator="codeDeployRollback") is AppSpecSource.LAST_SUCCESSFUL


@pytest.mark.parametrize(
    "event",
    [
        "DownloadBundle",
        "BeforeInstall",
        "Install",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
        "CustomEvent",
    ],
)
def test_every_other_event_runs_from_the_new_revision(event: str) -> None:
    """Guide L26919–L26921: "All other scripts are run from the AppSpec file in the current deployment."""
    assert appspec_source(event) is AppSpecSource.NEW
    assert appspec_source(event, deployment_creator="autoscaling") is AppSpecSource.NEW


def test_blue_green_rollback_exceptions() -> None:
    """In a blue/green rollback, Before/AfterBlockTraffic use the most recent revision and
    Before/AfterAllowTraffic the last successful one; ApplicationStop keeps the last successful one."""
    rollback = {"deployment_type": "BLUE_GREEN", "deployment_creator": "codeDeployRollback"}
    assert appspec_source("BeforeBlockTraffic", **rollback) is AppSpecSource.MOST_RECENT
    assert appspec_source("AfterBlockTraffic", **rollback) is AppSpecSource.MOST_RECENT
    assert appspec_source("BeforeAllowTraffic", **rollback) is AppSpecSource.LAST_SUCCESSFUL
    assert appspec_source("AfterAllowTraffic", **rollback) is AppSpecSource.LAST_SUCCESSFUL
    assert appspec_source("ApplicationStop", **rollback) is AppSpecSource.LAST_SUCCESSFUL
    assert appspec_source("AfterInstall", **rollback) is AppSpecSource.NEW
    # An in-place rollback is an ordinary deployment of the earlier revision (L24545).
    assert appspec_source("BeforeAllowTraffic", deployment_creator="codeDeployRollback") is AppSpecSource.NEW


def test_app_spec_source_values_are_the_wire_words() -> None:
    assert [source.value for source in AppSpecSource] == ["New", "LastSuccessful", "MostRecent"]


def test_lambda_events() -> None:
    """Guide L24146–L24169: Start, BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic, End; only the two
    hooks run functions (Start and End are diagram markers, not events)."""
    events = lambda_events()
    assert names(events) == ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    assert [e.name for e in events if e.scriptable] == ["BeforeAllowTraffic", "AfterAllowTraffic"]
    assert all(e.appspec_source is AppSpecSource.NEW for e in events)


def test_ecs_events() -> None:
    """Guide L1214–L1250 (ECS lifecycle events in the order they execute) and L24010–L24041 (hooks)."""
    events = ecs_events()
    assert names(events) == [
        "BeforeInstall",
        "Install",
        "AfterInstall",
        "AllowTestTraffic",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AllowTraffic",
        "AfterAllowTraffic",
    ]
    assert [e.name for e in events if e.reserved] == ["Install", "AllowTestTraffic", "AllowTraffic"]


def test_decision_ecs_without_a_test_listener_has_no_test_traffic_events() -> None:
    """Decision: guide L24982–L24983 says AfterAllowTestTraffic is ignored without a test listener; with no
    test traffic to route, AllowTestTraffic is left out as well."""
    assert "AllowTestTraffic" not in names(ecs_events(test_listener=False))
    assert "AfterAllowTestTraffic" not in names(ecs_events(test_listener=False))
    assert len(ecs_events(test_listener=False)) == 6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"deployment_type": "CANARY"},
        {"deployment_type": "BLUE_GREEN"},
        {"deployment_type": "BLUE_GREEN", "role": "green"},
        {"role": "original"},
        {"scale_in": True, "scale_out": True},
        {"scale_in": True, "rollback": True},
        {"scale_out": True, "deployment_type": "BLUE_GREEN", "role": "replacement"},
    ],
)
def test_impossible_combinations_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        server_events(**kwargs)


def test_who_runs_each_event() -> None:
    """The server moves traffic (BlockTraffic, AllowTraffic, ECS AllowTestTraffic); Lambda and ECS hooks
    are functions; every other EC2/On-Premises event, DownloadBundle and Install included, is the agent's."""
    from opendeploy.appspec.lifecycle_events import EventRunner

    server = server_events(load_balancer=True)
    assert {event.name for event in server if event.runner == EventRunner.LOAD_BALANCER} == {
        "BlockTraffic",
        "AllowTraffic",
    }
    assert all(
        event.runner == EventRunner.AGENT
        for event in server
        if event.name not in ("BlockTraffic", "AllowTraffic")
    )
    assert [(event.name, event.runner) for event in lambda_events()] == [
        ("BeforeAllowTraffic", EventRunner.HOOK_FUNCTION),
        ("AllowTraffic", EventRunner.LOAD_BALANCER),
        ("AfterAllowTraffic", EventRunner.HOOK_FUNCTION),
    ]
    ecs = {event.name: event.runner for event in ecs_events()}
    assert ecs["Install"] == EventRunner.PLATFORM
    assert ecs["AllowTestTraffic"] == ecs["AllowTraffic"] == EventRunner.LOAD_BALANCER
    assert {name for name, runner in ecs.items() if runner == EventRunner.HOOK_FUNCTION} == {
        "BeforeInstall",
        "AfterInstall",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    }

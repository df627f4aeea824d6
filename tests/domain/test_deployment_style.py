"""Deployment options read from their stored wire form (``domain.deployment_style``), as tables."""

from __future__ import annotations

from typing import Any

import pytest

from opendeploy.domain.deployment_style import (
    AlarmConfiguration,
    AutoRollbackConfiguration,
    BlueGreenConfiguration,
    DeploymentOption,
    DeploymentStyle,
    DeploymentType,
    GreenFleetProvisioning,
    InstanceAction,
    LoadBalancerInfo,
    ReadyAction,
    RollbackEvent,
    TargetGroupPair,
)

IN_PLACE, BLUE_GREEN = DeploymentType.IN_PLACE, DeploymentType.BLUE_GREEN
WITH, WITHOUT = DeploymentOption.WITH_TRAFFIC_CONTROL, DeploymentOption.WITHOUT_TRAFFIC_CONTROL


@pytest.mark.parametrize(
    ("wire", "kind", "option"),
    [
        (None, IN_PLACE, WITHOUT),
        ({}, IN_PLACE, WITHOUT),
        ({"deploymentType": "IN_PLACE"}, IN_PLACE, WITHOUT),
        ({"deploymentType": "BLUE_GREEN"}, BLUE_GREEN, WITH),
        ({"deploymentOption": "WITH_TRAFFIC_CONTROL"}, IN_PLACE, WITH),
        ({"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"}, IN_PLACE, WITH),
        ({"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}, BLUE_GREEN, WITH),
        (
            {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"},
            BLUE_GREEN,
            WITHOUT,
        ),
    ],
)
def test_deployment_style(
    wire: dict[str, Any] | None, kind: DeploymentType, option: DeploymentOption
) -> None:
    style = DeploymentStyle.from_wire(wire)
    assert (style.deployment_type, style.deployment_option) == (kind, option)
    assert style.blue_green == (kind == BLUE_GREEN)
    assert style.in_place == (kind == IN_PLACE)
    assert style.traffic_control == (option == WITH)


def test_an_unknown_deployment_type_is_an_error() -> None:
    with pytest.raises(ValueError):
        DeploymentStyle.from_wire({"deploymentType": "CANARY"})


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (None, LoadBalancerInfo()),
        ({}, LoadBalancerInfo()),
        (
            {"elbInfoList": [{"name": "web"}, {"name": "api"}]},
            LoadBalancerInfo(elb_names=("web", "api")),
        ),
        ({"targetGroupInfoList": [{"name": "tg-1"}]}, LoadBalancerInfo(target_group_names=("tg-1",))),
        (
            {
                "targetGroupPairInfoList": [
                    {
                        "targetGroups": [{"name": "blue"}, {"name": "green"}],
                        "prodTrafficRoute": {"listenerArns": ["arn:prod"]},
                        "testTrafficRoute": {"listenerArns": ["arn:test"]},
                    }
                ]
            },
            LoadBalancerInfo(
                target_group_pairs=(TargetGroupPair(("blue", "green"), ("arn:prod",), ("arn:test",)),)
            ),
        ),
        (
            {"targetGroupPairInfoList": [{"targetGroups": [{"name": "a"}, {"name": "b"}]}]},
            LoadBalancerInfo(target_group_pairs=(TargetGroupPair(("a", "b"), (), ()),)),
        ),
    ],
)
def test_load_balancer_info(wire: dict[str, Any] | None, expected: LoadBalancerInfo) -> None:
    info = LoadBalancerInfo.from_wire(wire)
    assert info == expected
    assert info.empty == (expected == LoadBalancerInfo())


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (None, BlueGreenConfiguration()),
        (
            {
                "terminateBlueInstancesOnDeploymentSuccess": {
                    "action": "KEEP_ALIVE",
                    "terminationWaitTimeInMinutes": 60,
                },
                "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 30},
                "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"},
            },
            BlueGreenConfiguration(
                InstanceAction.KEEP_ALIVE,
                60,
                ReadyAction.STOP_DEPLOYMENT,
                30,
                GreenFleetProvisioning.COPY_AUTO_SCALING_GROUP,
            ),
        ),
        (
            {"terminateBlueInstancesOnDeploymentSuccess": {"terminationWaitTimeInMinutes": 5}},
            BlueGreenConfiguration(termination_wait_minutes=5),
        ),
        (
            {"deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT"}},
            BlueGreenConfiguration(ready_action=ReadyAction.STOP_DEPLOYMENT),
        ),
    ],
)
def test_blue_green_configuration(wire: dict[str, Any] | None, expected: BlueGreenConfiguration) -> None:
    assert BlueGreenConfiguration.from_wire(wire) == expected


@pytest.mark.parametrize(
    ("wire", "failure", "stop", "alarm"),
    [
        (None, False, False, False),
        ({"enabled": False, "events": ["DEPLOYMENT_FAILURE"]}, False, False, False),
        ({"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}, True, False, False),
        ({"enabled": True, "events": ["DEPLOYMENT_STOP_ON_REQUEST"]}, False, True, False),
        (
            {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
            True,
            False,
            True,
        ),
        ({"enabled": True}, False, False, False),
    ],
)
def test_auto_rollback_configuration(
    wire: dict[str, Any] | None, failure: bool, stop: bool, alarm: bool
) -> None:
    rollback = AutoRollbackConfiguration.from_wire(wire)
    assert rollback.rolls_back_on(RollbackEvent.DEPLOYMENT_FAILURE) == failure
    assert rollback.rolls_back_on(RollbackEvent.DEPLOYMENT_STOP_ON_REQUEST) == stop
    assert rollback.rolls_back_on(RollbackEvent.DEPLOYMENT_STOP_ON_ALARM) == alarm


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (None, AlarmConfiguration()),
        (
            {"enabled": True, "alarms": [{"name": "5xx"}, {"name": "latency"}]},
            AlarmConfiguration(True, False, ("5xx", "latency")),
        ),
        ({"enabled": True, "ignorePollAlarmFailure": True, "alarms": []}, AlarmConfiguration(True, True, ())),
    ],
)
def test_alarm_configuration(wire: dict[str, Any] | None, expected: AlarmConfiguration) -> None:
    assert AlarmConfiguration.from_wire(wire) == expected


def test_options_read_typed_from_the_stored_columns() -> None:
    from opendeploy.store.models import Deployment, DeploymentGroup

    group = DeploymentGroup(
        deployment_style={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        load_balancer_info={"targetGroupInfoList": [{"name": "web"}]},
        auto_rollback_configuration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    )
    assert group.style.blue_green and group.style.traffic_control
    assert group.load_balancer.target_group_names == ("web",)
    assert group.auto_rollback.rolls_back_on(RollbackEvent.DEPLOYMENT_FAILURE)
    assert Deployment().style == DeploymentStyle()
    assert Deployment().blue_green == BlueGreenConfiguration()

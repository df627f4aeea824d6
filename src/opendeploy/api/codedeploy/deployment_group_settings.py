"""A deployment group's settings: checked against its compute platform, defaulted, stored as given.

CreateDeploymentGroup and UpdateDeploymentGroup hand their members here as a ``GroupSettings`` (wire
form, the botocore model's member names). ``check_settings`` applies the guide's and the API's rules
and raises the exception the model names for each problem; ``with_defaults`` fills what a group of
that platform has when the member was not given. Values are otherwise kept exactly as given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from opendeploy.api.errors import ApiError
from opendeploy.domain.deployment_config import ComputePlatform, DeploymentConfig
from opendeploy.domain.deployment_style import DeploymentOption, DeploymentStyle, DeploymentType
from opendeploy.settings import Quotas

# Members of CreateDeploymentGroup / UpdateDeploymentGroup that are settings of the group, with the
# column each is stored in.
SETTING_COLUMNS: Mapping[str, str] = {
    "deploymentConfigName": "deployment_config_name",
    "serviceRoleArn": "service_role_arn",
    "ec2TagFilters": "ec2_tag_filters",
    "onPremisesInstanceTagFilters": "on_premises_instance_tag_filters",
    "ec2TagSet": "ec2_tag_set",
    "onPremisesTagSet": "on_premises_tag_set",
    "autoScalingGroups": "auto_scaling_groups",
    "ecsServices": "ecs_services",
    "triggerConfigurations": "trigger_configurations",
    "alarmConfiguration": "alarm_configuration",
    "autoRollbackConfiguration": "auto_rollback_configuration",
    "deploymentStyle": "deployment_style",
    "blueGreenDeploymentConfiguration": "blue_green_deployment_configuration",
    "loadBalancerInfo": "load_balancer_info",
    "outdatedInstancesStrategy": "outdated_instances_strategy",
    "ec2DeploymentOptions": "ec2_deployment_options",
    "terminationHookEnabled": "termination_hook_enabled",
}

GroupSettings = dict[str, Any]

# Fixed limits (not adjustable in the guide's quotas table); the adjustable ones are Settings.quotas.
MAX_TAG_GROUPS = 3  # "10 tags each in a maximum of three tag groups" (guide L11384–11385)
MAX_TAGS_PER_GROUP = 10
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_LOAD_BALANCERS = 10  # 10 Classic Load Balancers + 10 target groups (guide L16231–16234)
MAX_WAIT_MINUTES = 2880  # blue/green waits: 48 hours (guide quotas table)

_ROLE_ARN = re.compile(r"^arn:[\w-]+:iam::[^:]*:role/.+$")


def check_settings(
    settings: Mapping[str, Any],
    *,
    platform: str,
    config: DeploymentConfig,
    given: Mapping[str, Any],
    quotas: Quotas,
) -> None:
    """Raise the modeled exception for the first problem with ``settings`` (the group's settings after
    this request, defaults included). ``given`` is the request's own members: combinations are only
    refused when the request itself names both."""
    _check_role(settings.get("serviceRoleArn"))
    _check_instances(settings, platform, given, quotas.auto_scaling_groups_per_deployment_group)
    _check_triggers(settings.get("triggerConfigurations") or [], quotas.triggers_per_deployment_group)
    check_alarms(settings.get("alarmConfiguration"), quotas.alarms_per_deployment_group)
    check_auto_rollback(settings.get("autoRollbackConfiguration"), settings.get("alarmConfiguration"))
    _check_style(settings, platform)
    _check_load_balancer(settings, platform)
    _check_blue_green(settings.get("blueGreenDeploymentConfiguration"), platform)
    _check_config(config, platform, settings)
    if platform != ComputePlatform.SERVER and settings.get("ec2DeploymentOptions"):
        raise ApiError(
            "InvalidInputException",
            f"ec2DeploymentOptions applies to the Server compute platform, not {platform}",
        )


def with_defaults(settings: Mapping[str, Any], platform: str) -> GroupSettings:
    """``settings`` plus what a group of ``platform`` has when a member was not given."""
    result = dict(settings)
    style = dict(result.get("deploymentStyle") or {})
    if platform == ComputePlatform.SERVER:
        typed = DeploymentStyle.from_wire(style)  # the absent members as AWS assumes them
        style.setdefault("deploymentType", str(typed.deployment_type))
        style.setdefault("deploymentOption", str(typed.deployment_option))
    else:  # Lambda and ECS deployments are always blue/green with traffic control (guide L15302–15312)
        style.setdefault("deploymentType", str(DeploymentType.BLUE_GREEN))
        style.setdefault("deploymentOption", str(DeploymentOption.WITH_TRAFFIC_CONTROL))
    result["deploymentStyle"] = style
    result.setdefault("outdatedInstancesStrategy", "UPDATE")  # guide L17127–17158
    if result.get("terminationHookEnabled") is None:
        result["terminationHookEnabled"] = False
    return result


# --- the individual rules ---------------------------------------------------------------------------


def _check_role(role: str | None) -> None:
    if role is not None and not _ROLE_ARN.match(role):
        raise ApiError(
            "InvalidRoleException",
            f"The service role ARN {role!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
        )


def check_tag_filters(filters: Sequence[Mapping[str, Any]], *, member: str, exception: str) -> None:
    """Each filter names what its Type needs: KEY_ONLY a key, VALUE_ONLY a value, KEY_AND_VALUE both."""
    if len(filters) > MAX_TAGS_PER_GROUP:
        raise ApiError(exception, f"{member} can have at most {MAX_TAGS_PER_GROUP} tags, got {len(filters)}")
    for index, tag in enumerate(filters):
        key, value, kind = tag.get("Key"), tag.get("Value"), tag.get("Type")
        where = f"{member}[{index}]"
        if kind is None:
            kind = "KEY_AND_VALUE" if key and value is not None else ("KEY_ONLY" if key else "VALUE_ONLY")
        if kind in ("KEY_ONLY", "KEY_AND_VALUE") and not key:
            raise ApiError(exception, f"{where}: a {kind} tag filter needs a Key")
        if kind in ("VALUE_ONLY", "KEY_AND_VALUE") and value is None:
            raise ApiError(exception, f"{where}: a {kind} tag filter needs a Value")
        if key is not None and len(key) > MAX_TAG_KEY:
            raise ApiError(exception, f"{where}: the Key is longer than {MAX_TAG_KEY} characters")
        if value is not None and len(value) > MAX_TAG_VALUE:
            raise ApiError(exception, f"{where}: the Value is longer than {MAX_TAG_VALUE} characters")


def check_tag_set(
    tag_set: Mapping[str, Any] | None, *, member: str, list_member: str, exception: str
) -> None:
    groups = (tag_set or {}).get(list_member) or []
    if len(groups) > MAX_TAG_GROUPS:
        raise ApiError(
            "TagSetListLimitExceededException",
            f"{member}.{list_member} can have at most {MAX_TAG_GROUPS} tag groups, got {len(groups)}",
        )
    for index, group in enumerate(groups):
        if not group:
            raise ApiError(exception, f"{member}.{list_member}[{index}] is an empty tag group")
        check_tag_filters(group, member=f"{member}.{list_member}[{index}]", exception=exception)


def _check_instances(
    settings: Mapping[str, Any], platform: str, given: Mapping[str, Any], max_auto_scaling_groups: int
) -> None:
    ec2_filters = settings.get("ec2TagFilters") or []
    onprem_filters = settings.get("onPremisesInstanceTagFilters") or []
    ec2_set = settings.get("ec2TagSet")
    onprem_set = settings.get("onPremisesTagSet")
    groups = settings.get("autoScalingGroups") or []
    ecs_services = settings.get("ecsServices") or []
    if given.get("ec2TagFilters") and (given.get("ec2TagSet") or {}).get("ec2TagSetList"):
        raise ApiError(
            "InvalidEC2TagCombinationException",
            "Specify either ec2TagFilters or ec2TagSet, not both",
        )
    if given.get("onPremisesInstanceTagFilters") and (given.get("onPremisesTagSet") or {}).get(
        "onPremisesTagSetList"
    ):
        raise ApiError(
            "InvalidOnPremisesTagCombinationException",
            "Specify either onPremisesInstanceTagFilters or onPremisesTagSet, not both",
        )
    check_tag_filters(ec2_filters, member="ec2TagFilters", exception="InvalidEC2TagException")
    check_tag_filters(onprem_filters, member="onPremisesInstanceTagFilters", exception="InvalidTagException")
    check_tag_set(
        ec2_set, member="ec2TagSet", list_member="ec2TagSetList", exception="InvalidEC2TagException"
    )
    check_tag_set(
        onprem_set,
        member="onPremisesTagSet",
        list_member="onPremisesTagSetList",
        exception="InvalidTagException",
    )
    if len(groups) > max_auto_scaling_groups:
        raise ApiError(
            "InvalidAutoScalingGroupException",
            f"A deployment group can have at most {max_auto_scaling_groups} Auto Scaling groups",
        )
    if any(not name for name in groups) or len(set(groups)) != len(groups):
        raise ApiError(
            "InvalidAutoScalingGroupException", "Auto Scaling group names must be non-empty and distinct"
        )
    if platform != ComputePlatform.SERVER:
        for member, exception, present in (
            ("ec2TagFilters", "InvalidEC2TagException", ec2_filters),
            ("ec2TagSet", "InvalidEC2TagException", (ec2_set or {}).get("ec2TagSetList")),
            ("onPremisesInstanceTagFilters", "InvalidTagException", onprem_filters),
            ("onPremisesTagSet", "InvalidTagException", (onprem_set or {}).get("onPremisesTagSetList")),
            ("autoScalingGroups", "InvalidAutoScalingGroupException", groups),
        ):
            if present:
                raise ApiError(exception, f"{member} applies to the Server compute platform, not {platform}")
    if platform == ComputePlatform.ECS:
        if len(ecs_services) != 1:
            raise ApiError(
                "InvalidECSServiceException",
                f"An ECS deployment group targets exactly one ECS service, got {len(ecs_services)}",
            )
        service = ecs_services[0]
        if not service.get("serviceName") or not service.get("clusterName"):
            raise ApiError(
                "InvalidECSServiceException", "ecsServices[0] needs a serviceName and a clusterName"
            )
    elif ecs_services:
        raise ApiError(
            "InvalidECSServiceException", f"ecsServices applies to the ECS compute platform, not {platform}"
        )


def _check_triggers(triggers: Sequence[Mapping[str, Any]], limit: int) -> None:
    if len(triggers) > limit:
        raise ApiError(
            "TriggerTargetsLimitExceededException",
            f"A deployment group can have at most {limit} triggers, got {len(triggers)}",
        )
    names: set[str] = set()
    for index, trigger in enumerate(triggers):
        name, target = trigger.get("triggerName"), trigger.get("triggerTargetArn")
        if not name:
            raise ApiError(
                "InvalidTriggerConfigException", f"triggerConfigurations[{index}] needs a triggerName"
            )
        if name in names:
            raise ApiError("InvalidTriggerConfigException", f"Trigger name {name!r} is used twice")
        names.add(name)
        if not target or not target.startswith("arn:"):
            raise ApiError(
                "InvalidTriggerConfigException",
                f"Trigger {name!r} needs a triggerTargetArn (the ARN of the topic to notify), got {target!r}",
            )
        if not trigger.get("triggerEvents"):
            raise ApiError(
                "InvalidTriggerConfigException", f"Trigger {name!r} needs at least one triggerEvents entry"
            )


def check_alarms(alarm_configuration: Mapping[str, Any] | None, limit: int) -> None:
    if not alarm_configuration:
        return
    alarms = alarm_configuration.get("alarms") or []
    if len(alarms) > limit:
        raise ApiError(
            "AlarmsLimitExceededException", f"At most {limit} alarms can be configured, got {len(alarms)}"
        )
    names = [alarm.get("name") for alarm in alarms]
    if any(not name for name in names):
        raise ApiError("InvalidAlarmConfigException", "Every alarm needs a name")
    if len(set(names)) != len(names):
        raise ApiError("InvalidAlarmConfigException", "An alarm is named twice")
    if alarm_configuration.get("enabled") and not alarms:
        raise ApiError(
            "InvalidAlarmConfigException", "The alarm configuration is enabled but names no alarms"
        )


def check_auto_rollback(
    rollback: Mapping[str, Any] | None, alarm_configuration: Mapping[str, Any] | None
) -> None:
    if not rollback or not rollback.get("enabled"):
        return
    events = rollback.get("events") or []
    if not events:
        raise ApiError(
            "InvalidAutoRollbackConfigException",
            "Automatic rollback is enabled but names no events (DEPLOYMENT_FAILURE, "
            "DEPLOYMENT_STOP_ON_ALARM, DEPLOYMENT_STOP_ON_REQUEST)",
        )
    if "DEPLOYMENT_STOP_ON_ALARM" in events and not (alarm_configuration or {}).get("alarms"):
        raise ApiError(
            "InvalidAutoRollbackConfigException",
            "Rolling back on DEPLOYMENT_STOP_ON_ALARM needs an alarm configuration with at least one alarm",
        )


def _check_style(settings: Mapping[str, Any], platform: str) -> None:
    style = DeploymentStyle.from_wire(settings["deploymentStyle"])
    kind, option = style.deployment_type, style.deployment_option
    if platform != ComputePlatform.SERVER and not (style.blue_green and style.traffic_control):
        raise ApiError(
            "InvalidDeploymentStyleException",
            f"{platform} deployments are BLUE_GREEN with WITH_TRAFFIC_CONTROL, got {kind} / {option}",
        )
    if style.blue_green and not style.traffic_control:
        raise ApiError(
            "InvalidDeploymentStyleException",
            "A blue/green deployment reroutes traffic through a load balancer: use WITH_TRAFFIC_CONTROL",
        )


def _check_load_balancer(settings: Mapping[str, Any], platform: str) -> None:
    info = settings.get("loadBalancerInfo") or {}
    elbs = info.get("elbInfoList") or []
    target_groups = info.get("targetGroupInfoList") or []
    pairs = info.get("targetGroupPairInfoList") or []
    for member, items in (("elbInfoList", elbs), ("targetGroupInfoList", target_groups)):
        if len(items) > MAX_LOAD_BALANCERS:
            raise ApiError(
                "InvalidLoadBalancerInfoException",
                f"loadBalancerInfo.{member} can have at most {MAX_LOAD_BALANCERS} entries",
            )
        if any(not item.get("name") for item in items):
            raise ApiError(
                "InvalidLoadBalancerInfoException", f"Every loadBalancerInfo.{member} entry needs a name"
            )
    traffic_control = DeploymentStyle.from_wire(settings["deploymentStyle"]).traffic_control
    if platform == ComputePlatform.LAMBDA:
        if elbs or target_groups or pairs:
            raise ApiError(
                "InvalidLoadBalancerInfoException", "Lambda deployment groups have no load balancer"
            )
        return
    if platform == ComputePlatform.ECS:
        if elbs or target_groups:
            raise ApiError(
                "InvalidLoadBalancerInfoException",
                "An ECS deployment group names its target groups in targetGroupPairInfoList",
            )
        _check_pairs(pairs, "An ECS deployment group")
        return
    if pairs:
        # Beyond AWS (ECS only there): a Server blue/green group may shift its traffic between the two
        # target groups of a pair; an in-place deployment has no second group to move traffic to.
        if not DeploymentStyle.from_wire(settings["deploymentStyle"]).blue_green:
            raise ApiError(
                "InvalidTargetGroupPairException",
                "targetGroupPairInfoList applies to ECS and to Server BLUE_GREEN deployment groups: an "
                "in-place deployment takes each instance out of and back into its target groups, named "
                "in targetGroupInfoList",
            )
        _check_pairs(pairs, "A Server blue/green deployment group")
        if (pairs[0].get("testTrafficRoute") or {}).get("listenerArns"):
            raise ApiError(
                "InvalidTargetGroupPairException",
                "testTrafficRoute applies to ECS deployment groups (a Server deployment has no "
                "AllowTestTraffic event)",
            )
        shared = {group["name"] for group in pairs[0]["targetGroups"]} & {g["name"] for g in target_groups}
        if shared:
            raise ApiError(
                "InvalidLoadBalancerInfoException",
                f"Target group {sorted(shared)[0]!r} is named both in targetGroupInfoList and in the "
                "target group pair: the pair alone registers and deregisters its instances",
            )
    if traffic_control and not (elbs or target_groups or pairs):
        raise ApiError(
            "InvalidLoadBalancerInfoException",
            "WITH_TRAFFIC_CONTROL needs a load balancer: name at least one elbInfoList or "
            "targetGroupInfoList entry, or a targetGroupPairInfoList entry for blue/green",
        )


def _check_pairs(pairs: Sequence[Mapping[str, Any]], who: str) -> None:
    """One pair of two different named target groups, one production listener, at most one test one."""
    if len(pairs) != 1:
        raise ApiError(
            "InvalidTargetGroupPairException",
            f"{who} needs exactly one targetGroupPairInfoList entry, got {len(pairs)}",
        )
    pair = pairs[0]
    groups = pair.get("targetGroups") or []
    if len(groups) != 2 or any(not group.get("name") for group in groups):
        raise ApiError(
            "InvalidTargetGroupPairException", "The target group pair needs two named target groups"
        )
    if groups[0]["name"] == groups[1]["name"]:
        raise ApiError("InvalidTargetGroupPairException", "The two target groups of the pair must differ")
    production = (pair.get("prodTrafficRoute") or {}).get("listenerArns") or []
    if len(production) != 1:
        raise ApiError("InvalidTargetGroupPairException", "prodTrafficRoute needs exactly one listener ARN")
    test = (pair.get("testTrafficRoute") or {}).get("listenerArns") or []
    if len(test) > 1:
        raise ApiError("InvalidTargetGroupPairException", "testTrafficRoute takes at most one listener ARN")


def _check_blue_green(configuration: Mapping[str, Any] | None, platform: str) -> None:
    if not configuration:
        return
    exception = "InvalidBlueGreenDeploymentConfigurationException"
    if platform == ComputePlatform.LAMBDA:
        raise ApiError(exception, "Lambda deployment groups take no blueGreenDeploymentConfiguration")
    termination = configuration.get("terminateBlueInstancesOnDeploymentSuccess") or {}
    ready = configuration.get("deploymentReadyOption") or {}
    for where, minutes in (
        (
            "terminateBlueInstancesOnDeploymentSuccess.terminationWaitTimeInMinutes",
            termination.get("terminationWaitTimeInMinutes"),
        ),
        ("deploymentReadyOption.waitTimeInMinutes", ready.get("waitTimeInMinutes")),
    ):
        if minutes is not None and not 0 <= minutes <= MAX_WAIT_MINUTES:
            raise ApiError(
                exception, f"{where} must be between 0 and {MAX_WAIT_MINUTES} minutes, got {minutes}"
            )
    if platform == ComputePlatform.ECS and configuration.get("greenFleetProvisioningOption"):
        raise ApiError(exception, "greenFleetProvisioningOption applies to EC2/On-Premises deployment groups")


def _check_config(config: DeploymentConfig, platform: str, settings: Mapping[str, Any]) -> None:
    if config.compute_platform != platform:
        raise ApiError(
            "InvalidDeploymentConfigNameException",
            f"Deployment configuration {config.name} is for the {config.compute_platform} compute platform; "
            f"this deployment group's compute platform is {platform}",
        )
    if config.zonal_config is not None and DeploymentStyle.from_wire(settings["deploymentStyle"]).blue_green:
        raise ApiError(
            "InvalidDeploymentConfigNameException",
            f"Deployment configuration {config.name} has a zonal configuration, which supports only in-place "
            "deployments (guide: zonal configuration is not for blue/green)",
        )

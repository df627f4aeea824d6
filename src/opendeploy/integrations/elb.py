"""AWS load balancers behind the :class:`~opendeploy.integrations.traffic.LoadBalancer` interface: ELBv2
target groups (Application and Network Load Balancers) and Classic Load Balancers.

A deployment group names them in ``loadBalancerInfo`` (``elbInfoList[].name`` for Classic Load
Balancers, ``targetGroupInfoList[].name`` for target groups; at most 10 of each, guide L15427–15433);
:func:`load_balancers` turns that into drivers. ``targetGroupPairInfoList`` is ECS blue/green and not
read here.

**Targets.** The engine names a target with one string:

- ELBv2: ``"i-…"`` is an EC2 instance id (registered on the target group's port); an IP address,
  ``"10.0.0.5"``, ``"10.0.0.5:8080"``, ``"fd00::5"`` or ``"[fd00::5]:8080"``, is an IP target (``Id`` and
  the optional ``Port``); any other string is passed as the ``Id`` as it is (a Lambda function's or an
  ALB's ARN).
- Classic ELB: an EC2 instance id.

An on-premises instance is known to a load balancer by an address or instance id that the engine reads
from one of its tags; that lookup is the engine's, not this module's.

**What each call does.**

=============  ====================================  =============================================
call           target group                          Classic Load Balancer
=============  ====================================  =============================================
block          DeregisterTargets                     DeregisterInstancesFromLoadBalancer
finish_block   nothing (the target group drains for  nothing (connection draining does)
               its deregistration delay)
allow          RegisterTargets                       RegisterInstancesWithLoadBalancer
observe        DescribeTargetHealth                  DescribeInstanceHealth
timing         DescribeTargetGroupAttributes +       DescribeLoadBalancerAttributes +
               DescribeTargetGroups                  DescribeLoadBalancers
=============  ====================================  =============================================

Every call is idempotent: registering a registered target changes nothing, and deregistering a target
that is not registered (``InvalidTarget`` / ``InvalidInstance``) is taken as done, so a step repeated
after a crash succeeds. A misspelt target id then shows up when it is allowed, which AWS refuses.

**States.** Target group: ``healthy`` → IN_SERVICE; ``initial``, ``unhealthy``, ``unavailable`` →
UNHEALTHY (``unavailable`` because health checks are disabled, which only Lambda target groups allow,
→ IN_SERVICE: the load balancer sends it traffic); ``draining``, ``unhealthy.draining`` → DRAINING;
``unused`` and reason ``Target.NotRegistered`` → OUT_OF_SERVICE; a target AWS does not know
(``InvalidTarget``) → UNKNOWN. Classic: ``InService`` → IN_SERVICE, but "Instance deregistration
currently in progress." → DRAINING; ``OutOfService`` → UNHEALTHY, but "Instance is not currently
registered with the LoadBalancer." → OUT_OF_SERVICE; ``Unknown`` → UNHEALTHY when the instance is
registered (DescribeLoadBalancers says), else OUT_OF_SERVICE; an instance AWS does not know
(``InvalidInstance``, or terminated and left out of the answer) → UNKNOWN. Neither API counts
connections: ``active_connections`` is always 0.

**Timing.** Target group: drain limit = ``deregistration_delay.timeout_seconds`` (300 when absent);
healthy expected = HealthyThresholdCount × HealthCheckIntervalSeconds + one interval (0 when health
checks are disabled). Classic: drain limit = ConnectionDraining's timeout when enabled (300 if it names
none), 0 when disabled; healthy expected = HealthyThreshold × Interval + Interval.

Every AWS error becomes a :class:`TrafficError` that names the load balancer or target group, the
operation and AWS's own code and message.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import botocore.exceptions
import botocore.parsers

from opendeploy.integrations import aws_clients
from opendeploy.integrations.traffic import (
    HealthTiming,
    LoadBalancer,
    TargetObservation,
    TargetState,
    TrafficError,
    TrafficMisconfigured,
)

MAX_CLASSIC_LOAD_BALANCERS = 10
MAX_TARGET_GROUPS = 10
DEFAULT_DEREGISTRATION_DELAY = 300.0
DEFAULT_CONNECTION_DRAINING_TIMEOUT = 300.0
MAX_MESSAGE = 400  # characters of an unparsable answer kept in a TrafficError


# --- errors ---------------------------------------------------------------------------------------


# AWS's answers that no retry changes: what the deployment group names does not exist or is refused.
_MISCONFIGURED = frozenset(
    {
        "TargetGroupNotFound",
        "LoadBalancerNotFound",
        "AccessPointNotFound",
        "ValidationError",
        "InvalidConfigurationRequest",
        "AccessDenied",
        "AccessDeniedException",
    }
)


def _error_code(error: Exception) -> str | None:
    if isinstance(error, botocore.exceptions.ClientError):
        return error.response.get("Error", {}).get("Code")
    return None


def _call(
    client: Any,
    what: str,
    method: str,
    detail: str = "",
    *,
    tolerate: Iterable[str] = (),
    **kwargs: Any,
) -> dict[str, Any] | None:
    """``client.<method>(**kwargs)``; None when AWS answered an error code in ``tolerate``; every other
    failure as a TrafficError naming ``what`` (the load balancer), the operation and AWS's message."""
    operation = client.meta.method_to_api_mapping.get(method, method)
    try:
        return getattr(client, method)(**kwargs)
    except botocore.exceptions.ClientError as error:
        code = _error_code(error)
        if code in tuple(tolerate):
            return None
        message = error.response.get("Error", {}).get("Message") or str(error)
        kind = TrafficMisconfigured if code in _MISCONFIGURED else TrafficError
        raise kind(f"{what}: {operation}{detail} failed: {code}: {message}") from error
    except (botocore.exceptions.BotoCoreError, botocore.parsers.ResponseParserError) as error:
        # no answer, no credentials, or one that is not AWS's (a proxy's or a stand-in's error page)
        text = str(error)
        if len(text) > MAX_MESSAGE:
            text = text[:MAX_MESSAGE] + "…"
        raise TrafficError(f"{what}: {operation}{detail} failed: {text}") from error


# --- ELBv2 target groups --------------------------------------------------------------------------


def target_description(target: str) -> dict[str, Any]:
    """The ELBv2 ``TargetDescription`` for an engine target string (see the module docstring)."""
    if target.startswith("i-"):
        return {"Id": target}
    try:
        return {"Id": str(ipaddress.ip_address(target))}  # an IPv4 or IPv6 address alone
    except ValueError:
        pass
    host, colon, port = target.rpartition(":")
    if colon and port.isdigit():
        bracketed = host.startswith("[") and host.endswith("]")
        try:
            address = ipaddress.ip_address(host[1:-1] if bracketed else host)
        except ValueError:
            return {"Id": target}
        if address.version == 4 or bracketed:  # an IPv6 address takes a port only as [address]:port
            return {"Id": str(address), "Port": int(port)}
    return {"Id": target}


def _target_group_state(health: Mapping[str, Any]) -> TargetState:
    state, reason = health.get("State"), health.get("Reason")
    if reason == "Target.NotRegistered":  # AWS says unused; moto says unavailable for an IP target
        return TargetState.OUT_OF_SERVICE
    if state == "healthy":
        return TargetState.IN_SERVICE
    if state in ("draining", "unhealthy.draining"):
        return TargetState.DRAINING
    if state == "unused":
        return TargetState.OUT_OF_SERVICE
    if state == "unavailable" and reason == "Target.HealthCheckDisabled":
        return TargetState.IN_SERVICE
    if state in ("initial", "unhealthy", "unavailable"):
        return TargetState.UNHEALTHY
    return TargetState.UNKNOWN


class TargetGroup:
    """An ELBv2 target group, named by its name (resolved to its ARN on first use) or by its ARN."""

    def __init__(self, name_or_arn: str, client: Any) -> None:
        if not name_or_arn:
            raise TrafficMisconfigured("a target group needs a name or an ARN")
        self._client = client
        self._lock = threading.Lock()
        if name_or_arn.startswith("arn:"):
            self._arn: str | None = name_or_arn
            # arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>
            parts = name_or_arn.split(":", 5)[-1].split("/")
            self._name = parts[1] if len(parts) >= 2 and parts[0] == "targetgroup" else name_or_arn
        else:
            self._arn = None
            self._name = name_or_arn

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"TargetGroup({self._name!r})"

    @property
    def _what(self) -> str:
        return f"target group '{self._name}'"

    @property
    def arn(self) -> str:
        """The target group's ARN (DescribeTargetGroups by name, once)."""
        with self._lock:
            if self._arn is None:
                response = _call(
                    self._client,
                    self._what,
                    "describe_target_groups",
                    tolerate=("TargetGroupNotFound",),
                    Names=[self._name],
                )
                groups = (response or {}).get("TargetGroups") or []
                if not groups:
                    raise TrafficMisconfigured(
                        f"{self._what} does not exist in {self._client.meta.region_name} "
                        "(DescribeTargetGroups found no target group of that name)"
                    )
                self._arn = groups[0]["TargetGroupArn"]
            return self._arn

    def timing(self) -> HealthTiming:
        arn = self.arn
        attributes = (
            _call(self._client, self._what, "describe_target_group_attributes", TargetGroupArn=arn) or {}
        )
        values = {a.get("Key"): a.get("Value") for a in attributes.get("Attributes", [])}
        delay = values.get("deregistration_delay.timeout_seconds")
        drain_limit = float(delay) if delay not in (None, "") else DEFAULT_DEREGISTRATION_DELAY
        groups = (_call(self._client, self._what, "describe_target_groups", TargetGroupArns=[arn]) or {}).get(
            "TargetGroups"
        ) or [{}]
        group = groups[0]
        if group.get("HealthCheckEnabled") is False:
            return HealthTiming(drain_limit=drain_limit, healthy_expected=0.0)
        interval = float(group.get("HealthCheckIntervalSeconds") or 30)
        threshold = float(group.get("HealthyThresholdCount") or 5)
        return HealthTiming(drain_limit=drain_limit, healthy_expected=threshold * interval + interval)

    def block(self, target: str) -> None:
        _call(
            self._client,
            self._what,
            "deregister_targets",
            f" of {target}",
            tolerate=("InvalidTarget",),  # not registered (moto; AWS for an unknown id): already out
            TargetGroupArn=self.arn,
            Targets=[target_description(target)],
        )

    def finish_block(self, target: str) -> None:
        """Nothing: the target group itself ends the drain after its deregistration delay."""

    def allow(self, target: str) -> None:
        _call(
            self._client,
            self._what,
            "register_targets",
            f" of {target}",
            TargetGroupArn=self.arn,
            Targets=[target_description(target)],
        )

    def observe(self, targets: Sequence[str]) -> Mapping[str, TargetObservation]:
        if not targets:
            return {}
        wanted = {target: target_description(target) for target in dict.fromkeys(targets)}
        descriptions = self._describe_health(list(wanted.values()))
        if descriptions is None:  # one of them is unknown to AWS: ask one by one
            result: dict[str, TargetObservation] = {}
            for target, description in wanted.items():
                single = self._describe_health([description])
                result[target] = (
                    TargetObservation(TargetState.UNKNOWN)
                    if single is None
                    else self._observation(description, single)
                )
            return result
        return {target: self._observation(wanted[target], descriptions) for target in wanted}

    def _describe_health(self, descriptions: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        response = _call(
            self._client,
            self._what,
            "describe_target_health",
            tolerate=("InvalidTarget",),
            TargetGroupArn=self.arn,
            Targets=descriptions,
        )
        return None if response is None else response.get("TargetHealthDescriptions", [])

    @staticmethod
    def _observation(wanted: Mapping[str, Any], answers: Sequence[Mapping[str, Any]]) -> TargetObservation:
        for answer in answers:
            target = answer.get("Target", {})
            if target.get("Id") != wanted["Id"]:
                continue
            if "Port" in wanted and target.get("Port") not in (None, wanted["Port"]):
                continue
            return TargetObservation(_target_group_state(answer.get("TargetHealth", {})))
        return TargetObservation(TargetState.UNKNOWN)


# --- Classic Load Balancers -----------------------------------------------------------------------

_NOT_REGISTERED = "not currently registered"
_DEREGISTERING = "deregistration currently in progress"


class ClassicLoadBalancer:
    """A Classic Load Balancer; its targets are EC2 instance ids."""

    def __init__(self, name: str, client: Any) -> None:
        if not name:
            raise TrafficMisconfigured("a Classic Load Balancer needs a name")
        self._name = name
        self._client = client

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"ClassicLoadBalancer({self._name!r})"

    @property
    def _what(self) -> str:
        return f"Classic Load Balancer '{self._name}'"

    def timing(self) -> HealthTiming:
        attributes = (
            _call(
                self._client,
                self._what,
                "describe_load_balancer_attributes",
                LoadBalancerName=self._name,
            )
            or {}
        ).get("LoadBalancerAttributes", {})
        draining = attributes.get("ConnectionDraining") or {}
        if draining.get("Enabled"):
            timeout = draining.get("Timeout")
            drain_limit = float(timeout) if timeout is not None else DEFAULT_CONNECTION_DRAINING_TIMEOUT
        else:
            drain_limit = 0.0
        check = self._description().get("HealthCheck") or {}
        interval = float(check.get("Interval") or 30)
        threshold = float(check.get("HealthyThreshold") or 10)
        return HealthTiming(drain_limit=drain_limit, healthy_expected=threshold * interval + interval)

    def block(self, target: str) -> None:
        _call(
            self._client,
            self._what,
            "deregister_instances_from_load_balancer",
            f" of {target}",
            tolerate=("InvalidInstance",),  # not registered / no such instance: nothing to block
            LoadBalancerName=self._name,
            Instances=[{"InstanceId": target}],
        )

    def finish_block(self, target: str) -> None:
        """Nothing: connection draining ends by itself after its timeout."""

    def allow(self, target: str) -> None:
        _call(
            self._client,
            self._what,
            "register_instances_with_load_balancer",
            f" of {target}",
            LoadBalancerName=self._name,
            Instances=[{"InstanceId": target}],
        )

    def observe(self, targets: Sequence[str]) -> Mapping[str, TargetObservation]:
        if not targets:
            return {}
        wanted = list(dict.fromkeys(targets))
        states = self._instance_health(wanted)
        if states is None:  # one of them is unknown to AWS: ask one by one
            states = {}
            for target in wanted:
                states.update(self._instance_health([target]) or {})
        registered: set[str] | None = None
        result: dict[str, TargetObservation] = {}
        for target in wanted:
            health = states.get(target)
            if health is None:
                result[target] = TargetObservation(TargetState.UNKNOWN)
                continue
            state = _classic_state(health)
            if state is None:  # "Unknown": registered or not?
                if registered is None:
                    registered = {i["InstanceId"] for i in self._description().get("Instances", [])}
                state = TargetState.UNHEALTHY if target in registered else TargetState.OUT_OF_SERVICE
            result[target] = TargetObservation(state)
        return result

    def _instance_health(self, targets: list[str]) -> dict[str, dict[str, Any]] | None:
        response = _call(
            self._client,
            self._what,
            "describe_instance_health",
            tolerate=("InvalidInstance",),
            LoadBalancerName=self._name,
            Instances=[{"InstanceId": t} for t in targets],
        )
        if response is None:
            return None
        return {s["InstanceId"]: s for s in response.get("InstanceStates", []) if "InstanceId" in s}

    def _description(self) -> dict[str, Any]:
        response = (
            _call(self._client, self._what, "describe_load_balancers", LoadBalancerNames=[self._name]) or {}
        )
        descriptions = response.get("LoadBalancerDescriptions") or []
        if not descriptions:
            raise TrafficMisconfigured(f"{self._what}: DescribeLoadBalancers returned no such load balancer")
        return descriptions[0]


def _classic_state(health: Mapping[str, Any]) -> TargetState | None:
    """The state of one DescribeInstanceHealth answer; None for ``Unknown`` (registration decides)."""
    state = health.get("State")
    description = (health.get("Description") or "").lower()
    if _NOT_REGISTERED in description:
        return TargetState.OUT_OF_SERVICE
    if _DEREGISTERING in description:
        return TargetState.DRAINING
    if state == "InService":
        return TargetState.IN_SERVICE
    if state == "OutOfService":
        return TargetState.UNHEALTHY
    return None


# --- a deployment group's loadBalancerInfo --------------------------------------------------------


def load_balancers(
    load_balancer_info: Mapping[str, Any] | None,
    *,
    client: Callable[[str], Any] = aws_clients.client,
) -> list[LoadBalancer]:
    """The Classic Load Balancers (``elbInfoList``), then the target groups (``targetGroupInfoList``),
    of a deployment group's ``loadBalancerInfo``, without calling AWS. ``client`` makes the botocore
    clients (``"elb"``, ``"elbv2"``); by default the server's own (:mod:`aws_clients`)."""
    info = load_balancer_info or {}
    classic_names = _names(info, "elbInfoList", "Classic Load Balancers", MAX_CLASSIC_LOAD_BALANCERS)
    group_names = _names(info, "targetGroupInfoList", "target groups", MAX_TARGET_GROUPS)
    result: list[LoadBalancer] = []
    if classic_names:
        elb = _client(client, "elb")
        result.extend(ClassicLoadBalancer(name, elb) for name in classic_names)
    if group_names:
        elbv2 = _client(client, "elbv2")
        result.extend(TargetGroup(name, elbv2) for name in group_names)
    return result


def _names(info: Mapping[str, Any], key: str, kind: str, limit: int) -> list[str]:
    entries = info.get(key) or []
    names: list[str] = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not name:
            raise TrafficMisconfigured(f"loadBalancerInfo.{key}: every entry needs a name, got {entry!r}")
        if name not in names:
            names.append(name)
    if len(names) > limit:
        raise TrafficMisconfigured(
            f"loadBalancerInfo.{key} names {len(names)} {kind}; a deployment group may name at most {limit}"
        )
    return names


def _client(make: Callable[[str], Any], service: str) -> Any:
    try:
        return make(service)
    except aws_clients.AwsConfigurationError as error:
        raise TrafficError(f"cannot reach AWS for load balancers ({service}): {error}") from error

"""AWS load balancers behind the :class:`~opendeploy.integrations.traffic.LoadBalancer` interface: ELBv2
target groups (Application and Network Load Balancers) and Classic Load Balancers.

A deployment group names them in ``loadBalancerInfo`` (``elbInfoList[].name`` for Classic Load
Balancers, ``targetGroupInfoList[].name`` for target groups; at most 10 of each, guide L15427–15433);
:func:`load_balancers` turns that into drivers. A ``targetGroupPairInfoList`` entry (two target groups
and the production listeners forwarding to them; ECS blue/green in AWS, server blue/green here too) is
:class:`TargetGroupPair`, through :func:`target_group_pairs`: the one AWS load balancer that can shift
traffic by weight.

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

**Weighted shifting** (canary and linear for server blue/green, issue 11). A target group pair sets each
production listener's default ``forward`` action to both target groups with weights (``ForwardConfig
.TargetGroups[].Weight``, 0–999): the replacement gets ``round(10 × percent)`` of 1000, so shares are
exact to a tenth of a percent. Other default actions (authentication) and the forward action's
stickiness setting are kept; a listener already at the wanted weights is not modified. A listener whose
default action forwards elsewhere (or does not forward) is refused, not taken over. A single target
group or a Classic ELB cannot split traffic: ``shift`` and ``observe_shift`` raise TrafficMisconfigured.
In a pair, the split is between the target groups: AllowTraffic registers a replacement target with the
replacement group; BlockTraffic first makes sure the production listeners forward nothing to the original
group (a listener cannot take one target's share away, only its group's: after a canary or linear shift
it already forwards nothing there; after an all-at-once reroute this is the moment traffic moves, every
replacement being in by then), then deregisters the original target from it; ``shift``'s target lists are
not needed. Which group is the original one changes from deployment to deployment: ``oriented()`` reads
it from the listener (the group with the larger weight) when a deployment starts; the engine keeps that
name and rebuilds the same roles later with ``with_original(name)`` (and ``swapped()`` to give the
traffic back: its ``allow`` registers with the original group, its ``block`` leaves the replacement one).

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
        "ListenerNotFound",
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

    def shift(self, original: Sequence[str], replacement: Sequence[str], replacement_percent: float) -> None:
        raise _cannot_shift(self._what)

    def observe_shift(self, original: Sequence[str], replacement: Sequence[str]) -> float | None:
        raise _cannot_shift(self._what)

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

    def shift(self, original: Sequence[str], replacement: Sequence[str], replacement_percent: float) -> None:
        raise _cannot_shift(self._what)

    def observe_shift(self, original: Sequence[str], replacement: Sequence[str]) -> float | None:
        raise _cannot_shift(self._what)

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


# --- weighted shifting between two target groups ---------------------------------------------------

MAX_FORWARD_WEIGHT = 999  # ELBv2's largest target group weight in a forward action


def _cannot_shift(what: str) -> TrafficMisconfigured:
    return TrafficMisconfigured(
        f"{what} cannot split traffic by weight: canary and linear traffic shifting needs an HAProxy "
        "backend (targetGroupInfoList name haproxy:<backend>) or an ELBv2 target group pair "
        "(targetGroupPairInfoList: two target groups and the production listener forwarding to them)"
    )


def forward_weights(replacement_percent: float) -> tuple[int, int]:
    """ELBv2 weights ``(original, replacement)`` for a share: tenths of a percent, each at most 999."""
    if not 0 <= replacement_percent <= 100:
        raise ValueError(f"a share of traffic is between 0 and 100 percent, got {replacement_percent}")
    replacement = round(replacement_percent * 10)
    return min(1000 - replacement, MAX_FORWARD_WEIGHT), min(replacement, MAX_FORWARD_WEIGHT)


def _forward_weights(action: Mapping[str, Any]) -> dict[str, int]:
    """The target groups (by ARN) a forward action sends to, with their weights (a plain
    ``TargetGroupArn`` forward sends everything to one group)."""
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if groups:
        return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups if g.get("TargetGroupArn")}
    arn = action.get("TargetGroupArn")
    return {arn: 1} if arn else {}


class TargetGroupPair:
    """Two ELBv2 target groups, the original fleet's and the replacement's, and the production
    listeners whose default action forwards to them (a ``targetGroupPairInfoList`` entry)."""

    def __init__(
        self,
        original: TargetGroup,
        replacement: TargetGroup,
        listener_arns: Sequence[str],
        client: Any,
    ) -> None:
        if not listener_arns:
            raise TrafficMisconfigured(
                f"target groups '{original.name}' and '{replacement.name}' need a production listener "
                "(prodTrafficRoute.listenerArns) to shift traffic between them"
            )
        if original.name == replacement.name:
            raise TrafficMisconfigured(
                f"a target group pair needs two target groups, got '{original.name}' twice"
            )
        self.original = original
        self.replacement = replacement
        self.listener_arns = tuple(dict.fromkeys(listener_arns))
        self._client = client

    @property
    def name(self) -> str:
        return f"{self.original.name}+{self.replacement.name}"

    def __repr__(self) -> str:
        return f"TargetGroupPair(original={self.original.name!r}, replacement={self.replacement.name!r})"

    @property
    def _what(self) -> str:
        return f"target groups '{self.original.name}' and '{self.replacement.name}'"

    def swapped(self) -> TargetGroupPair:
        """The same pair with the roles exchanged (to give the traffic back to the original group)."""
        return TargetGroupPair(self.replacement, self.original, self.listener_arns, self._client)

    def with_original(self, name: str) -> TargetGroupPair:
        """The same pair with the group named ``name`` (a name or an ARN) as the original one."""
        if name in (self.original.name, self.original._arn):
            return self
        if name in (self.replacement.name, self.replacement._arn):
            return self.swapped()
        raise TrafficMisconfigured(f"{self._what}: '{name}' is neither of them")

    def oriented(self) -> TargetGroupPair:
        """The pair with the group that takes most of the first production listener's traffic now as the
        original one (the first listed on a tie). Call it when a deployment starts, not during a shift."""
        weights = _forward_weights(self._forward_action(self._listeners()[0]))
        if weights.get(self.replacement.arn, 0) > weights.get(self.original.arn, 0):
            return self.with_original(self.replacement.name)
        return self

    def timing(self) -> HealthTiming:
        """Originals drain from the original group; replacements become healthy in the replacement one."""
        return HealthTiming(
            drain_limit=self.original.timing().drain_limit,
            healthy_expected=self.replacement.timing().healthy_expected,
        )

    def block(self, target: str) -> None:
        """Every production listener forwards to the replacement group only (unchanged when it already
        does), then ``target`` is deregistered from the original group: deregistering first would leave
        the listener's share of the original group to fewer and fewer targets, then none."""
        self.shift((), (), 100.0)
        self.original.block(target)

    def finish_block(self, target: str) -> None:
        """Nothing: the original group ends the drain after its deregistration delay."""

    def allow(self, target: str) -> None:
        self.replacement.allow(target)

    def observe(self, targets: Sequence[str]) -> Mapping[str, TargetObservation]:
        """A target's state in whichever group it is registered with (the replacement group first)."""
        if not targets:
            return {}
        in_replacement = self.replacement.observe(targets)
        in_original = self.original.observe(targets)
        registered = (TargetState.IN_SERVICE, TargetState.UNHEALTHY, TargetState.DRAINING)
        result: dict[str, TargetObservation] = {}
        for target in dict.fromkeys(targets):
            candidates = (in_replacement[target], in_original[target])
            result[target] = next(
                (o for o in candidates if o.state in registered),
                next((o for o in candidates if o.state is TargetState.OUT_OF_SERVICE), candidates[0]),
            )
        return result

    def shift(self, original: Sequence[str], replacement: Sequence[str], replacement_percent: float) -> None:
        """Set every production listener's default forward action to both groups, weighted; the target
        lists are not needed (the groups hold the targets)."""
        try:
            original_weight, replacement_weight = forward_weights(replacement_percent)
        except ValueError as error:
            raise TrafficMisconfigured(f"{self._what}: {error}") from None
        wanted = {self.original.arn: original_weight, self.replacement.arn: replacement_weight}
        for listener in self._listeners():
            forward = self._forward_action(listener)
            current = _forward_weights(forward)
            if current == wanted:  # already applied: a repeated step changes nothing
                continue
            config: dict[str, Any] = {
                "TargetGroups": [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in wanted.items()]
            }
            stickiness = (forward.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig")
            if stickiness:
                config["TargetGroupStickinessConfig"] = stickiness
            new_forward = {"Type": "forward", "ForwardConfig": config}
            if "Order" in forward:
                new_forward["Order"] = forward["Order"]
            actions = [new_forward if action is forward else action for action in listener["DefaultActions"]]
            _call(
                self._client,
                self._what,
                "modify_listener",
                f" of {listener['ListenerArn']}",
                ListenerArn=listener["ListenerArn"],
                DefaultActions=actions,
            )

    def observe_shift(self, original: Sequence[str], replacement: Sequence[str]) -> float | None:
        """The replacement group's share of the production listeners' forward weights, in percent; None
        when the listeners disagree or forward with weight 0 to both."""
        shares = set()
        for listener in self._listeners():
            weights = _forward_weights(self._forward_action(listener))
            original_weight = weights.get(self.original.arn, 0)
            replacement_weight = weights.get(self.replacement.arn, 0)
            total = original_weight + replacement_weight
            shares.add(None if total == 0 else 100 * replacement_weight / total)
        return shares.pop() if len(shares) == 1 else None

    def _listeners(self) -> list[dict[str, Any]]:
        response = (
            _call(self._client, self._what, "describe_listeners", ListenerArns=list(self.listener_arns)) or {}
        )
        listeners = response.get("Listeners") or []
        found = {listener.get("ListenerArn") for listener in listeners}
        missing = [arn for arn in self.listener_arns if arn not in found]
        if missing:
            raise TrafficMisconfigured(f"{self._what}: no listener {', '.join(missing)}")
        by_arn = {listener["ListenerArn"]: listener for listener in listeners}
        return [by_arn[arn] for arn in self.listener_arns]

    def _forward_action(self, listener: Mapping[str, Any]) -> dict[str, Any]:
        """The listener's default forward action, if it forwards only to this pair's groups."""
        forwards = [a for a in listener.get("DefaultActions") or [] if a.get("Type") == "forward"]
        arn = listener.get("ListenerArn")
        if len(forwards) != 1:
            raise TrafficMisconfigured(
                f"{self._what}: listener {arn} has no default forward action to shift traffic with"
            )
        others = set(_forward_weights(forwards[0])) - {self.original.arn, self.replacement.arn}
        if others:
            raise TrafficMisconfigured(
                f"{self._what}: listener {arn} forwards to other target groups too: "
                + ", ".join(sorted(others))
            )
        return forwards[0]


def target_group_pairs(
    load_balancer_info: Mapping[str, Any] | None,
    *,
    client: Callable[[str], Any] = aws_clients.client,
) -> list[TargetGroupPair]:
    """The ``targetGroupPairInfoList`` entries of a ``loadBalancerInfo``, without calling AWS: each with its
    first target group as the original one (``oriented()`` reads the listener instead)."""
    entries = (load_balancer_info or {}).get("targetGroupPairInfoList") or []
    if not entries:
        return []
    elbv2 = _client(client, "elbv2")
    pairs: list[TargetGroupPair] = []
    for entry in entries:
        names = [g.get("name") for g in entry.get("targetGroups") or [] if isinstance(g, Mapping)]
        if len(names) != 2 or not all(isinstance(n, str) and n for n in names):
            raise TrafficMisconfigured(
                "loadBalancerInfo.targetGroupPairInfoList: an entry needs two named target groups, "
                f"got {entry!r}"
            )
        listeners = (entry.get("prodTrafficRoute") or {}).get("listenerArns") or []
        pairs.append(
            TargetGroupPair(TargetGroup(names[0], elbv2), TargetGroup(names[1], elbv2), listeners, elbv2)
        )
    return pairs


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

"""The load balancers a deployment group's ``loadBalancerInfo`` names, as ``LoadBalancer`` objects, and
the name an instance has in them.

- A target group named ``haproxy:<backend>`` is that backend of the HAProxy whose runtime API the server
  was given (``--haproxy-socket``): the embedded default for people's own servers. ELBv2 target group
  names cannot hold a ``:``, so the prefix never hides one.
- Any other target group name is an ELBv2 target group, and an ``elbInfoList`` name a Classic ELB,
  reached through the standard AWS SDK configuration (``integrations/aws_clients``).
- A ``targetGroupPairInfoList`` entry (server blue/green groups) is an ``elb.TargetGroupPair``, named
  ``<first group>+<second group>`` as listed, with its first group as the original one: the engine
  orients it for each deployment (``runners.traffic``).
- An instance is known to all of them by the value of its ``opendeploy:lb-target`` tag (configurable),
  else by its name: HAProxy's server name in the backend; ELBv2's target id (``ip[:port]`` for an IP
  target group, or an instance id); Classic ELB's instance id.

Objects are kept per name for the life of the process (an ELBv2 target group resolves its ARN once; a
pair per groups and listeners).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from opendeploy.domain.deployment_style import LoadBalancerInfo
from opendeploy.integrations import aws_clients, elb
from opendeploy.integrations.haproxy import HAProxyBackend
from opendeploy.integrations.traffic import LoadBalancer, TrafficMisconfigured
from opendeploy.settings import TrafficSettings

HAPROXY_PREFIX = "haproxy:"

_KEPT: dict[tuple[Any, ...], LoadBalancer] = {}
_LOCK = threading.Lock()


def load_balancers_for(
    info: LoadBalancerInfo,
    settings: TrafficSettings,
    *,
    aws_client: Callable[[str], Any] = aws_clients.client,
) -> dict[str, LoadBalancer]:
    """The load balancers ``info`` names, by the name it gives them (Classic ELBs first, then target
    groups, as the guide lists them, then target group pairs). Raises ``TrafficError`` for what cannot be
    used: an HAProxy backend on a server without ``--haproxy-socket``, more than 10 + 10 load balancers,
    a pair without two target groups or a production listener, no AWS region."""
    wire: dict[str, list[dict[str, str]]] = {
        "elbInfoList": [{"name": name} for name in info.elb_names],
        "targetGroupInfoList": [
            {"name": name} for name in info.target_group_names if not name.startswith(HAPROXY_PREFIX)
        ],
    }
    found: dict[str, LoadBalancer] = {}
    aws = (
        elb.load_balancers(wire, client=aws_client)
        if wire["elbInfoList"] or wire["targetGroupInfoList"]
        else []
    )
    for balancer in aws:
        kind = "classic" if isinstance(balancer, elb.ClassicLoadBalancer) else "elbv2"
        found[balancer.name] = _kept((kind, balancer.name, aws_client), lambda b=balancer: b)
    for name in info.target_group_names:
        if name.startswith(HAPROXY_PREFIX):
            found[name] = _haproxy(name, settings)
    for pair in info.target_group_pairs:
        entry = {
            "targetGroups": [{"name": name} for name in pair.target_groups],
            "prodTrafficRoute": {"listenerArns": list(pair.production_listeners)},
        }
        made = _kept(
            ("pair", pair.target_groups, pair.production_listeners, aws_client),
            lambda e=entry: elb.target_group_pairs({"targetGroupPairInfoList": [e]}, client=aws_client)[0],
        )
        found[made.name] = made
    return found


def _haproxy(name: str, settings: TrafficSettings) -> LoadBalancer:
    backend = name[len(HAPROXY_PREFIX) :]
    if settings.haproxy_socket is None:
        raise TrafficMisconfigured(
            f"the deployment group's target group {name!r} is an HAProxy backend, but this server was "
            "started without --haproxy-socket"
        )
    key = (
        "haproxy",
        settings.haproxy_socket,
        backend,
        settings.haproxy_deregistration_delay,
        settings.haproxy_check_interval,
    )
    return _kept(
        key,
        lambda: HAProxyBackend(
            settings.haproxy_socket or "",
            backend,
            settings.haproxy_deregistration_delay,
            check_interval=settings.haproxy_check_interval,
        ),
    )


def _kept(key: tuple[Any, ...], make: Callable[[], LoadBalancer]) -> LoadBalancer:
    with _LOCK:
        balancer = _KEPT.get(key)
        if balancer is None:
            balancer = _KEPT[key] = make()
        return balancer


def target_name(instance_name: str, tags: Mapping[str, str], settings: TrafficSettings) -> str:
    """The name the load balancers know the instance by: its target tag's value, else its name."""
    return tags.get(settings.target_tag_key) or instance_name

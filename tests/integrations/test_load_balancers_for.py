"""Which load balancers a deployment group's loadBalancerInfo names: ``haproxy:<backend>`` target groups
are backends of the server's HAProxy, other target groups ELBv2's, elbInfoList names Classic ELBs; the
name an instance has in them."""

from __future__ import annotations

from typing import Any

import pytest

from opendeploy.domain.deployment_style import LoadBalancerInfo
from opendeploy.integrations.elb import ClassicLoadBalancer, TargetGroup
from opendeploy.integrations.haproxy import HAProxyBackend
from opendeploy.integrations.load_balancers import load_balancers_for, target_name
from opendeploy.integrations.traffic import TrafficError
from opendeploy.settings import TrafficSettings

HAPROXY = TrafficSettings(haproxy_socket="unix:/run/haproxy/admin.sock", haproxy_deregistration_delay=30.0)


def no_aws(service: str) -> Any:
    raise AssertionError(f"no AWS client should be made, asked for {service}")


def test_an_haproxy_backend_needs_no_aws() -> None:
    info = LoadBalancerInfo.from_wire({"targetGroupInfoList": [{"name": "haproxy:web"}]})
    found = load_balancers_for(info, HAPROXY, aws_client=no_aws)
    assert list(found) == ["haproxy:web"]
    backend = found["haproxy:web"]
    assert isinstance(backend, HAProxyBackend)
    assert (backend.name, backend.address, backend.deregistration_delay) == (
        "web",
        "unix:/run/haproxy/admin.sock",
        30.0,
    )
    assert load_balancers_for(info, HAPROXY, aws_client=no_aws)["haproxy:web"] is backend  # kept


def test_elb_names_and_other_target_groups_are_aws_load_balancers_beside_haproxy() -> None:
    clients: list[str] = []

    def client(service: str) -> Any:
        clients.append(service)
        return object()

    info = LoadBalancerInfo.from_wire(
        {
            "elbInfoList": [{"name": "classic-web"}],
            "targetGroupInfoList": [{"name": "blue-tg"}, {"name": "haproxy:web"}],
        }
    )
    found = load_balancers_for(info, HAPROXY, aws_client=client)
    assert list(found) == ["classic-web", "blue-tg", "haproxy:web"]
    assert isinstance(found["classic-web"], ClassicLoadBalancer)
    assert isinstance(found["blue-tg"], TargetGroup)
    assert sorted(clients) == ["elb", "elbv2"]


def test_an_haproxy_backend_on_a_server_without_haproxy_is_a_clear_error() -> None:
    info = LoadBalancerInfo.from_wire({"targetGroupInfoList": [{"name": "haproxy:web"}]})
    with pytest.raises(
        TrafficError,
        match="'haproxy:web' is an HAProxy backend, but this server was started without --haproxy-socket",
    ):
        load_balancers_for(info, TrafficSettings(), aws_client=no_aws)


def test_an_instance_is_known_by_its_target_tag_else_its_name() -> None:
    settings = TrafficSettings()
    assert target_name("host-1", {}, settings) == "host-1"
    assert target_name("host-1", {"opendeploy:lb-target": "10.0.0.5:8080"}, settings) == "10.0.0.5:8080"
    assert target_name("host-1", {"opendeploy:lb-target": ""}, settings) == "host-1"

"""Typed reads of the options a deployment group and its deployments keep in wire form.

Both tables store ``deploymentStyle``, ``loadBalancerInfo``, ``blueGreenDeploymentConfiguration`` and
``autoRollbackConfiguration`` exactly as the API sent them (so they are answered back unchanged); code
that decides anything reads them through these properties, parsed by ``domain.deployment_style``.
"""

from __future__ import annotations

from typing import Any

from opendeploy.domain.deployment_style import (
    AutoRollbackConfiguration,
    BlueGreenConfiguration,
    DeploymentStyle,
    LoadBalancerInfo,
)


class DeploymentOptions:
    """Mixed into ``DeploymentGroup`` and ``Deployment`` (whose columns these are)."""

    deployment_style: Any
    load_balancer_info: Any
    blue_green_deployment_configuration: Any
    auto_rollback_configuration: Any

    @property
    def style(self) -> DeploymentStyle:
        return DeploymentStyle.from_wire(self.deployment_style)

    @property
    def load_balancer(self) -> LoadBalancerInfo:
        return LoadBalancerInfo.from_wire(self.load_balancer_info)

    @property
    def blue_green(self) -> BlueGreenConfiguration:
        return BlueGreenConfiguration.from_wire(self.blue_green_deployment_configuration)

    @property
    def auto_rollback(self) -> AutoRollbackConfiguration:
        return AutoRollbackConfiguration.from_wire(self.auto_rollback_configuration)

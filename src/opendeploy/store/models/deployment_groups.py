"""Deployment groups: an application's target environment and the settings its deployments use.

Settings are kept in the API's wire form (member names of the botocore model) so each one is returned
exactly as it was given. The group's last attempted / last successful deployment and its target
revision are not stored: they are read from the deployments table, so they cannot go stale.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.store.base import Base
from opendeploy.store.models.deployment_options import DeploymentOptions
from opendeploy.store.models.json_column import JSONValue


class DeploymentGroup(DeploymentOptions, Base):
    __tablename__ = "deployment_groups"
    __table_args__ = (UniqueConstraint("application_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID; the agent's directory name
    application_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    deployment_config_name: Mapped[str] = mapped_column(String(100), index=True)
    service_role_arn: Mapped[str | None] = mapped_column(Text, default=None)
    # Instances: tag filters (one OR-ed list) or tag sets (up to three AND-ed lists), and ASG names.
    ec2_tag_filters: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONValue, default=None)
    on_premises_instance_tag_filters: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSONValue, default=None
    )
    ec2_tag_set: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    on_premises_tag_set: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    auto_scaling_groups: Mapped[list[str] | None] = mapped_column(JSONValue, default=None)
    ecs_services: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONValue, default=None)
    # Behaviour.
    trigger_configurations: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONValue, default=None)
    alarm_configuration: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    auto_rollback_configuration: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    deployment_style: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    blue_green_deployment_configuration: Mapped[dict[str, Any] | None] = mapped_column(
        JSONValue, default=None
    )
    load_balancer_info: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    outdated_instances_strategy: Mapped[str] = mapped_column(String(16), default="UPDATE")
    ec2_deployment_options: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    termination_hook_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[float] = mapped_column(Float)
    update_time: Mapped[float] = mapped_column(Float)

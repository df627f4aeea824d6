"""Custom deployment configurations. The predefined ones are constants (domain.deployment_config)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.store.base import Base
from opendeploy.store.models.json_column import JSONValue


class DeploymentConfigRecord(Base):
    """One custom deployment configuration; its rules are kept in the API's wire form."""

    __tablename__ = "deployment_configs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID
    name: Mapped[str] = mapped_column(String(100), unique=True)
    compute_platform: Mapped[str] = mapped_column(String(16))  # Server | Lambda | ECS
    minimum_healthy_hosts: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    traffic_routing_config: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    zonal_config: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    create_time: Mapped[float] = mapped_column(Float)  # epoch seconds

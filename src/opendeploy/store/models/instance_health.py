"""Instance health per deployment group: what the engine knows of each instance a group has deployed to.

One row per (deployment group, instance name), written when a deployment of the group ends (success,
failure or stop) for each of its targets. It holds the guide's two health values (§2.6: instance health
Healthy / Unhealthy, revision health Current / Old / Unknown), which order the next deployment's
instances, and the revision the instance last installed successfully, which
``updateOutdatedInstancesOnly`` compares with. An instance with no row is one the group has never
deployed to: a new instance.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.store.base import Base


class InstanceHealthRecord(Base):
    __tablename__ = "instance_health"

    deployment_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("deployment_groups.id", ondelete="CASCADE"), primary_key=True
    )
    instance_name: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)
    instance_health: Mapped[str] = mapped_column(String(16))  # Healthy | Unhealthy
    revision_health: Mapped[str] = mapped_column(String(16))  # Current | Old | Unknown
    # The revision the instance's last successful deployment in this group installed; NULL when its last
    # attempt failed (what is on it then is not known) or it has never succeeded.
    revision_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("revisions.id", ondelete="SET NULL"), default=None
    )
    deployment_id: Mapped[str | None] = mapped_column(String(12), default=None)  # the last one to touch it
    updated_at: Mapped[float] = mapped_column(Float)

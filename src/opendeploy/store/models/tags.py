"""Resource tags (TagResource and the ``tags`` of create calls) for applications, deployment groups and
deployment configurations.

A tag belongs to a resource by its kind and internal id, not its name, so renaming an application or
a deployment group keeps its tags. ``application_id`` names the application that owns the resource
(itself, or a deployment group's application): deleting the application deletes those tags by cascade.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.store.base import Base


class ResourceTag(Base):
    __tablename__ = "resource_tags"
    __table_args__ = (UniqueConstraint("resource_kind", "resource_id", "key"),)

    # The surrogate key keeps tags in the order they were first added.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_kind: Mapped[str] = mapped_column(String(32))  # application | deploymentgroup | deploymentconfig
    resource_id: Mapped[str] = mapped_column(String(128), index=True)
    application_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("applications.id", ondelete="CASCADE"), index=True, default=None
    )
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[str] = mapped_column(String(256), default="")

"""On-premises instances: hosts registered by name with an IAM user or session ARN, and their tags.

A deregistered instance keeps its row (it is listed with registration status ``Deregistered``) until
its name is registered again, which replaces the record.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opendeploy.store.base import Base


class OnPremisesInstance(Base):
    __tablename__ = "on_premises_instances"
    __table_args__ = (
        # One IAM user or session identifies one registered instance at a time.
        Index(
            "uq_on_premises_instances_registered_iam_user_arn",
            "iam_user_arn",
            unique=True,
            sqlite_where=text("deregister_time IS NULL"),
            postgresql_where=text("deregister_time IS NULL"),
        ),
        Index(
            "uq_on_premises_instances_registered_iam_session_arn",
            "iam_session_arn",
            unique=True,
            sqlite_where=text("deregister_time IS NULL"),
            postgresql_where=text("deregister_time IS NULL"),
        ),
    )

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    iam_user_arn: Mapped[str | None] = mapped_column(String(2048), default=None)
    iam_session_arn: Mapped[str | None] = mapped_column(String(2048), default=None)
    register_time: Mapped[float] = mapped_column(Float)
    deregister_time: Mapped[float | None] = mapped_column(Float, default=None)

    tags: Mapped[list[OnPremisesInstanceTag]] = relationship(
        back_populates="instance",
        cascade="all, delete-orphan",
        order_by="OnPremisesInstanceTag.id",
        passive_deletes=True,
    )

    @property
    def registered(self) -> bool:
        return self.deregister_time is None


class OnPremisesInstanceTag(Base):
    """A tag on an on-premises instance; deployment groups select instances by these."""

    __tablename__ = "on_premises_instance_tags"
    __table_args__ = (UniqueConstraint("instance_name", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_name: Mapped[str] = mapped_column(
        String(100),
        ForeignKey("on_premises_instances.name", ondelete="CASCADE", onupdate="CASCADE"),
        index=True,
    )
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[str] = mapped_column(String(256), default="")

    instance: Mapped[OnPremisesInstance] = relationship(back_populates="tags")

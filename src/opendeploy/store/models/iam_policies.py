"""IAM managed policies (customer managed, with their versions), groups, and what is attached to whom.

AWS managed policies are not rows: their documents ship with the server (``domain/managed_policies``)
and attachments name them by ARN like any other policy. Names of groups and customer managed policies
are unique regardless of case, as in IAM (``name_key`` is the lower-cased name).
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opendeploy.store.base import Base


class IamManagedPolicy(Base):
    """A customer managed policy; its documents are its versions."""

    __tablename__ = "iam_managed_policies"

    arn: Mapped[str] = mapped_column(String(2048), primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(128), unique=True)  # "ANPA…", as IAM's
    name: Mapped[str] = mapped_column(String(128))
    name_key: Mapped[str] = mapped_column(String(128), unique=True)
    path: Mapped[str] = mapped_column(String(512))
    description: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    default_version_id: Mapped[str] = mapped_column(String(16))
    next_version: Mapped[int] = mapped_column(Integer)  # version ids are never reused: v1, v2, …
    create_time: Mapped[float] = mapped_column(Float)
    update_time: Mapped[float] = mapped_column(Float)

    versions: Mapped[list[IamPolicyVersion]] = relationship(
        back_populates="policy",
        cascade="all, delete-orphan",
        order_by="IamPolicyVersion.number",
        passive_deletes=True,
    )


class IamPolicyVersion(Base):
    """One version of a customer managed policy: its document kept exactly as given."""

    __tablename__ = "iam_policy_versions"
    __table_args__ = (UniqueConstraint("policy_arn", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_arn: Mapped[str] = mapped_column(
        String(2048), ForeignKey("iam_managed_policies.arn", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)
    create_time: Mapped[float] = mapped_column(Float)

    policy: Mapped[IamManagedPolicy] = relationship(back_populates="versions")

    @property
    def version_id(self) -> str:
        return f"v{self.number}"


class IamGroup(Base):
    __tablename__ = "iam_groups"

    group_id: Mapped[str] = mapped_column(String(128), primary_key=True)  # "AGPA…"
    name: Mapped[str] = mapped_column(String(128))
    name_key: Mapped[str] = mapped_column(String(128), unique=True)
    path: Mapped[str] = mapped_column(String(512))
    arn: Mapped[str] = mapped_column(String(2048))
    create_time: Mapped[float] = mapped_column(Float)

    policies: Mapped[list[IamGroupPolicy]] = relationship(
        back_populates="group",
        cascade="all, delete-orphan",
        order_by="IamGroupPolicy.name",
        passive_deletes=True,
    )


class IamGroupMember(Base):
    __tablename__ = "iam_group_members"

    group_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("iam_groups.group_id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("iam_users.user_id", ondelete="CASCADE"), primary_key=True, index=True
    )


class IamGroupPolicy(Base):
    """An inline policy of a group."""

    __tablename__ = "iam_group_policies"
    __table_args__ = (UniqueConstraint("group_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("iam_groups.group_id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    document: Mapped[str] = mapped_column(Text)

    group: Mapped[IamGroup] = relationship(back_populates="policies")


class IamPolicyAttachment(Base):
    """A managed policy (customer or AWS managed, by ARN) attached to a user or a group."""

    __tablename__ = "iam_policy_attachments"
    __table_args__ = (UniqueConstraint("principal_type", "principal_id", "policy_arn"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    principal_type: Mapped[str] = mapped_column(String(8))  # "user" | "group"
    principal_id: Mapped[str] = mapped_column(String(128), index=True)  # user_id or group_id
    policy_arn: Mapped[str] = mapped_column(String(2048), index=True)
    create_time: Mapped[float] = mapped_column(Float)

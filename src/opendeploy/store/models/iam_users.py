"""IAM users and their inline policies: the identities of on-premises instances (``aws deploy register``).

A user's access keys are rows of ``access_keys`` whose ``principal_arn`` is the user's ARN (and which
are not administrator keys), so signature verification and the command service know them with no
extra lookup. User names are unique regardless of case, as in IAM: ``name_key`` is the lower-cased name.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opendeploy.store.base import Base
from opendeploy.store.models.json_column import JSONValue


class IamUser(Base):
    __tablename__ = "iam_users"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)  # "AIDA…", as IAM's
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64), unique=True)  # lower(name): IAM names ignore case
    path: Mapped[str] = mapped_column(String(512))
    arn: Mapped[str] = mapped_column(String(2048))
    create_time: Mapped[float] = mapped_column(Float)
    tags: Mapped[list[dict[str, str]]] = mapped_column(JSONValue, default=list)  # [{"Key", "Value"}]

    policies: Mapped[list[IamUserPolicy]] = relationship(
        back_populates="user",
        cascade="all, delete-orphan",
        order_by="IamUserPolicy.name",
        passive_deletes=True,
    )


class IamUserPolicy(Base):
    """An inline policy of a user: its document kept exactly as given."""

    __tablename__ = "iam_user_policies"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("iam_users.user_id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    document: Mapped[str] = mapped_column(Text)

    user: Mapped[IamUser] = relationship(back_populates="policies")

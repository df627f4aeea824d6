"""Applications: the named containers that tie revisions, deployment groups and deployments together."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.store.base import Base


class Application(Base):
    """One application. Its name is unique per account and region; its id never changes, so renames
    keep every reference (deployment groups, revisions, deployments, tags) intact."""

    __tablename__ = "applications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID
    name: Mapped[str] = mapped_column(String(100), unique=True)
    compute_platform: Mapped[str] = mapped_column(String(16))  # Server | Lambda | ECS
    create_time: Mapped[float] = mapped_column(Float)  # epoch seconds
    linked_to_github: Mapped[bool] = mapped_column(Boolean, default=False)
    github_account_name: Mapped[str | None] = mapped_column(String(100), default=None)

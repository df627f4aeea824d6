"""Application revisions: where a revision's content is (S3, GitHub, or the AppSpec itself) and when it
was registered, first used and last used."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.store.base import Base
from opendeploy.store.models.json_column import JSONValue


class Revision(Base):
    __tablename__ = "revisions"
    __table_args__ = (UniqueConstraint("application_id", "location_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID
    application_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the canonical location: the revision's identity within its application.
    location_key: Mapped[str] = mapped_column(String(64))
    revision_type: Mapped[str] = mapped_column(String(16))  # S3 | GitHub | String | AppSpecContent
    location: Mapped[dict[str, Any]] = mapped_column(JSONValue)  # RevisionLocation, wire form
    s3_bucket: Mapped[str | None] = mapped_column(String(255), index=True, default=None)
    s3_key: Mapped[str | None] = mapped_column(Text, default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    register_time: Mapped[float] = mapped_column(Float)
    first_used_time: Mapped[float | None] = mapped_column(Float, default=None)
    last_used_time: Mapped[float | None] = mapped_column(Float, default=None)

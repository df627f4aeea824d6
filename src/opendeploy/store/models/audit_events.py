"""The audit trail: one row per API request, in CloudTrail's record format (``domain.cloudtrail_events``).

``record`` holds the whole CloudTrail record as JSON text, exactly as LookupEvents returns it in
``CloudTrailEvent`` and as the JSON-lines files carry it. The other columns are copies of what
LookupEvents filters on, each indexed together with ``event_time`` so a filtered, time-ordered page reads
only its own rows; the resources a request named are rows of ``audit_event_resources``. ``exported``
says whether the event has been appended to the day's JSON-lines file yet (``store.audit_trail``); a
partial index keeps the few that have not cheap to find.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.store.base import Base

# SQLite numbers rows itself only for an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit sequence.
EventKey = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_event_time", "event_time"),
        Index("ix_audit_events_event_name_time", "event_name", "event_time"),
        Index("ix_audit_events_username_time", "username", "event_time"),
        Index("ix_audit_events_access_key_id_time", "access_key_id", "event_time"),
        Index("ix_audit_events_event_source_time", "event_source", "event_time"),
        Index("ix_audit_events_read_only_time", "read_only", "event_time"),
        Index(
            "ix_audit_events_unexported",
            "id",
            sqlite_where=text("NOT exported"),
            postgresql_where=text("NOT exported"),
        ),
    )

    id: Mapped[int] = mapped_column(EventKey, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_time: Mapped[float] = mapped_column(Float)  # epoch seconds
    event_name: Mapped[str] = mapped_column(String(128))
    event_source: Mapped[str] = mapped_column(String(128))
    username: Mapped[str | None] = mapped_column(String(256), default=None)
    access_key_id: Mapped[str | None] = mapped_column(String(128), default=None)
    read_only: Mapped[bool] = mapped_column(Boolean)
    event_category: Mapped[str] = mapped_column(String(16))  # "Management" | "Data"
    error_code: Mapped[str | None] = mapped_column(String(128), default=None)
    exported: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    record: Mapped[str] = mapped_column(Text)


class AuditEventResource(Base):
    """A resource an audited request named (LookupEvents' ResourceType and ResourceName)."""

    __tablename__ = "audit_event_resources"
    __table_args__ = (
        Index("ix_audit_event_resources_resource_name", "resource_name"),
        Index("ix_audit_event_resources_resource_type", "resource_type"),
    )

    id: Mapped[int] = mapped_column(EventKey, primary_key=True, autoincrement=True)
    event_pk: Mapped[int] = mapped_column(
        EventKey, ForeignKey("audit_events.id", ondelete="CASCADE"), index=True
    )
    resource_type: Mapped[str] = mapped_column(String(256))
    resource_name: Mapped[str] = mapped_column(String(2048))

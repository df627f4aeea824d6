"""The audit trail: one row per API request, in CloudTrail's record format (``domain.cloudtrail_events``).

``record`` holds the whole CloudTrail record as JSON text, exactly as LookupEvents returns it in
``CloudTrailEvent`` and as the JSON-lines files carry it. The other columns are copies of what
LookupEvents filters on; the resources a request named are rows of ``audit_event_resources``.

Recording an event is part of every write request's transaction, so it touches as few index pages as
it can: the events' own ids and times. What LookupEvents filters on is indexed afterwards, in batches:
``exported`` says whether the event has been exported yet (``store.audit_trail``: its lookup keys
written and, with an audit directory, its line appended to the day's JSON-lines file); a partial index
keeps the few that have not cheap to find. An ``audit_lookup_keys`` row is one lookup attribute's value
(``"EventName=CreateDeployment"``) with the event's time: one index serves every attribute, time-ordered.
Each row of the 15 an event once kept in its own index dirtied a page of its own in the writer's commit;
written for a batch of events, rows with the same key share their pages.
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
    id: Mapped[int] = mapped_column(EventKey, primary_key=True, autoincrement=True)
    event_pk: Mapped[int] = mapped_column(
        EventKey, ForeignKey("audit_events.id", ondelete="CASCADE"), index=True
    )
    resource_type: Mapped[str] = mapped_column(String(256))
    resource_name: Mapped[str] = mapped_column(String(2048))


class AuditLookupKey(Base):
    """One LookupEvents attribute value an exported event matches (``"<AttributeKey>=<value>"``)."""

    __tablename__ = "audit_lookup_keys"

    lookup_key: Mapped[str] = mapped_column(Text, primary_key=True)
    event_time: Mapped[float] = mapped_column(Float, primary_key=True)
    event_pk: Mapped[int] = mapped_column(
        EventKey, ForeignKey("audit_events.id", ondelete="CASCADE"), primary_key=True, index=True
    )

"""The audit trail: one row per API request, in CloudTrail's record format (``domain.cloudtrail_events``).

``record`` holds the whole CloudTrail record as JSON text, exactly as LookupEvents returns it in
``CloudTrailEvent`` and as the JSON-lines files carry it. The other columns are copies of what
LookupEvents filters on and returns; ``resources`` holds the resources a request named as compact JSON,
``[["AWS::CodeDeploy::Application","App"],…]`` (``resources_json``).

Recording an event is part of every write request's transaction, so it touches as few pages as it
can: the row, and the indexes of the events' ids and times. What LookupEvents filters on is indexed
afterwards, in batches: ``exported`` says whether the event has been exported yet
(``store.audit_trail``: its lookup keys written and, with an audit directory, its line appended to the
day's JSON-lines file); a partial index keeps the few that have not cheap to find. An
``audit_lookup_keys`` row is one lookup attribute's value (``"EventName=CreateDeployment"``) with the
event's time: one index serves every attribute, time-ordered. Written for a batch of events, keys with
the same value share their pages; when each attribute had an index of its own and resources a table,
every entry dirtied a page of its own in the writer's commit (a CreateDeployment's event took 40 KiB of
SQLite's write-ahead log, 20 KiB now).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
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
    resources: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")


def resources_json(resources: Iterable[tuple[str, str]]) -> str:
    """``resources`` as the column keeps them: compact JSON, so a fragment of it is found with LIKE."""
    return orjson.dumps([[kind, name] for kind, name in resources]).decode()


class AuditLookupKey(Base):
    """One LookupEvents attribute value an exported event matches (``"<AttributeKey>=<value>"``)."""

    __tablename__ = "audit_lookup_keys"

    lookup_key: Mapped[str] = mapped_column(Text, primary_key=True)
    event_time: Mapped[float] = mapped_column(Float, primary_key=True)
    event_pk: Mapped[int] = mapped_column(
        EventKey, ForeignKey("audit_events.id", ondelete="CASCADE"), primary_key=True, index=True
    )

"""The event log (``event_stream``): every deployment and instance state-change event, as EventBridge
shapes it, kept for ``--event-stream-retention`` hours so ``GET /events`` can send it live and a client
that reconnects with ``Last-Event-ID`` gets what it missed (``store.event_stream``).

``id`` is the stream's sequence: it grows in commit order (SQLite: AUTOINCREMENT, never reused even when
every row has been pruned; PostgreSQL: rows are numbered under a lock taken just before the commit), so a
client that has seen ``id`` N has seen every event committed before it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.store.base import Base

# BIGINT on PostgreSQL; SQLite's AUTOINCREMENT needs the column to be exactly INTEGER PRIMARY KEY.
SEQUENCE_ID = BigInteger().with_variant(Integer(), "sqlite")


class StreamEvent(Base):
    __tablename__ = "event_stream"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(SEQUENCE_ID, primary_key=True, autoincrement=True)
    created_at: Mapped[float] = mapped_column(Float)  # epoch seconds; pruned by it
    kind: Mapped[str] = mapped_column(String(16))  # deployment | instance: the SSE ``event:`` name
    # Names as they were when the event happened: filters and the GetDeployment check use them, and an
    # event outlives nothing it describes (no foreign keys).
    deployment_id: Mapped[str] = mapped_column(String(12))
    application_name: Mapped[str] = mapped_column(String(100))
    deployment_group_name: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)  # the EventBridge event, compact JSON on one line

"""Persistent timers: every deadline the engine keeps (lifecycle event start and run time, blue/green
waits, traffic-shift intervals, hook callbacks, alarm polls) as a row with its due time, so a restarted
server keeps them. Replicas claim due timers with a lease (``lease_owner`` until ``lease_expires_at``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.store.base import Base
from opendeploy.store.models.json_column import JSONValue


class Timer(Base):
    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_due_at", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))  # what to do when due, e.g. "lifecycle_event_start"
    due_at: Mapped[float] = mapped_column(Float)  # epoch seconds
    payload: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    deployment_id: Mapped[str | None] = mapped_column(
        String(12), ForeignKey("deployments.id", ondelete="CASCADE"), index=True, default=None
    )
    created_at: Mapped[float] = mapped_column(Float)
    # The host command whose deadline this is (migration 0003); deleted with it.
    host_command_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("host_commands.id", ondelete="CASCADE"), index=True, default=None
    )
    lease_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_expires_at: Mapped[float | None] = mapped_column(Float, default=None)

"""Persistent timers: every deadline the engine keeps (lifecycle event start and run time, blue/green
waits, traffic-shift intervals, hook callbacks, alarm polls) as a row with its due time, so a restarted
server keeps them. Replicas claim a due timer by locking its row (``FOR UPDATE SKIP LOCKED``); the lease
columns (``lease_owner``, ``lease_expires_at``) are not used. A timer whose handler fails is put off
with a growing delay, counted in ``attempts`` (``engine.reconciler``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
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
    # Migration 0006: how many times in a row firing this timer has failed, and the last error. The 0 is
    # the database's default: host commands' timers are inserted by prepared statements naming columns.
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text, default=None)

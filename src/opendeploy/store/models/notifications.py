"""The notification outbox: every message a state change causes (SNS trigger messages, EventBridge
events, webhooks), written in the transaction that makes the change, kept until it is delivered.

A row is due while ``next_attempt_at`` is set and not in the future; a delivery worker claims it by
moving ``next_attempt_at`` past the time its send may take (a lease: a worker that dies mid-send leaves
the row to be claimed again, so delivery is at least once). Delivered rows get ``delivered_at``, rows
given up (too many attempts, too old, or a permanent error) ``abandoned_at``; both keep ``last_error``
and lose ``next_attempt_at``, which is all the index holds of them (``store.outbox``).
"""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.store.base import Base


class OutboxNotification(Base):
    __tablename__ = "notification_outbox"
    __table_args__ = (
        Index("ix_notification_outbox_next_attempt_at", "next_attempt_at"),
        Index("ix_notification_outbox_deployment_id", "deployment_id"),
        Index("ix_notification_outbox_delivered_at", "delivered_at"),
    )

    # A UUID, the same through every retry: receivers deduplicate by it.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # sns | eventbridge | webhook
    destination: Mapped[str] = mapped_column(String(2048))  # topic ARN, event bus, URL
    event_type: Mapped[str] = mapped_column(String(64))  # DeploymentSuccess, InstanceFailure, TriggerTest …
    subject: Mapped[str | None] = mapped_column(String(128), default=None)  # SNS only
    body: Mapped[str] = mapped_column(Text)  # exactly what is sent
    # No foreign key: a notification outlives nothing it describes, and never blocks a delete.
    deployment_id: Mapped[str | None] = mapped_column(String(12), default=None)
    created_at: Mapped[float] = mapped_column(Float)  # epoch seconds
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # failed sends
    next_attempt_at: Mapped[float | None] = mapped_column(Float, default=None)
    delivered_at: Mapped[float | None] = mapped_column(Float, default=None)
    abandoned_at: Mapped[float | None] = mapped_column(Float, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)

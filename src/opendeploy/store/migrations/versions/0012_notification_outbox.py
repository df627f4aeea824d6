"""The notification outbox (``notification_outbox``): SNS trigger messages, EventBridge events and webhooks
written in the transaction of the state change that causes them and kept until delivered
(``store.outbox``).

Revision ID: 0012_notification_outbox
Revises: 0011_deployment_progress
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_notification_outbox"
down_revision = "0011_deployment_progress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("destination", sa.String(2048), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("deployment_id", sa.String(12), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float(), nullable=True),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("abandoned_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_notification_outbox_next_attempt_at", "notification_outbox", ["next_attempt_at"])
    op.create_index("ix_notification_outbox_deployment_id", "notification_outbox", ["deployment_id"])
    op.create_index("ix_notification_outbox_delivered_at", "notification_outbox", ["delivered_at"])


def downgrade() -> None:
    op.drop_table("notification_outbox")

"""The event log behind ``GET /events`` (``event_stream``): each deployment and instance state-change
event with a sequence id that grows in commit order, kept for ``--event-stream-retention`` hours
(``store.event_stream``).

Revision ID: 0014_event_stream
Revises: 0013_stop_reason
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_event_stream"
down_revision = "0013_stop_reason"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_stream",
        # SQLite: INTEGER PRIMARY KEY AUTOINCREMENT, so ids are never reused once pruned.
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("deployment_id", sa.String(12), nullable=False),
        sa.Column("application_name", sa.String(100), nullable=False),
        sa.Column("deployment_group_name", sa.String(100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("event_stream")

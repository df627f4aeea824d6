"""The engine's retry policy: how many times in a row a deployment's step, or a timer, has failed, and
the last error, so the delay before the next try grows and a step that keeps failing ends its deployment
(``engine.reconciler``).

Revision ID: 0006_engine_retries
Revises: 0005_fleet
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_engine_retries"
down_revision = "0005_fleet"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("engine_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("engine_last_error", sa.Text(), nullable=True))
    with op.batch_alter_table("timers") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("timers") as batch:
        batch.drop_column("last_error")
        batch.drop_column("attempts")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("engine_last_error")
        batch.drop_column("engine_attempts")

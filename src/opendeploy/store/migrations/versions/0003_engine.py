"""What the deployment engine keeps beyond the deployment tables: when to look at a deployment next,
each lifecycle event's allowed run time, why a target failed, command delivery, and timers tied to a
host command.

Revision ID: 0003_engine
Revises: 0002_deployments
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_engine"
down_revision = "0002_deployments"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("engine_due_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("event_timeouts", JSON, nullable=True))
        batch.create_index(op.f("ix_deployments_engine_due_at"), ["engine_due_at"])
    with op.batch_alter_table("deployment_targets") as batch:
        batch.add_column(sa.Column("failure_cause", sa.String(length=16), nullable=True))
    with op.batch_alter_table("host_commands") as batch:
        batch.add_column(sa.Column("delivered_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("delivery_count", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("timers") as batch:
        batch.add_column(sa.Column("host_command_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_timers_host_command_id_host_commands"),
            "host_commands",
            ["host_command_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(op.f("ix_timers_host_command_id"), ["host_command_id"])


def downgrade() -> None:
    with op.batch_alter_table("timers") as batch:
        batch.drop_index(op.f("ix_timers_host_command_id"))
        batch.drop_constraint(op.f("fk_timers_host_command_id_host_commands"), type_="foreignkey")
        batch.drop_column("host_command_id")
    with op.batch_alter_table("host_commands") as batch:
        batch.drop_column("delivery_count")
        batch.drop_column("delivered_at")
    with op.batch_alter_table("deployment_targets") as batch:
        batch.drop_column("failure_cause")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_index(op.f("ix_deployments_engine_due_at"))
        batch.drop_column("event_timeouts")
        batch.drop_column("engine_due_at")

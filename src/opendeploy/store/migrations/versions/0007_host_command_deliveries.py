"""Hand-outs of a host command told apart: a command handed out again gets an identifier of its own
(``host_command_deliveries``), and the command records which hand-out was acknowledged first
(``host_commands.acknowledged_identifier``), so an agent holding two copies runs it once.

Revision ID: 0007_host_command_deliveries
Revises: 0006_engine_retries
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_host_command_deliveries"
down_revision = "0006_engine_retries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("host_commands") as batch:
        batch.add_column(sa.Column("acknowledged_identifier", sa.String(255), nullable=True))
    # Commands acknowledged before: under the only identifier they had.
    op.execute(
        "UPDATE host_commands SET acknowledged_identifier = host_command_identifier "
        "WHERE acknowledged_at IS NOT NULL"
    )
    op.create_table(
        "host_command_deliveries",
        sa.Column("identifier", sa.String(255), primary_key=True),
        sa.Column(
            "host_command_id",
            sa.Integer(),
            sa.ForeignKey("host_commands.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_host_command_deliveries_host_command_id", "host_command_deliveries", ["host_command_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_host_command_deliveries_host_command_id", "host_command_deliveries")
    op.drop_table("host_command_deliveries")
    with op.batch_alter_table("host_commands") as batch:
        batch.drop_column("acknowledged_identifier")

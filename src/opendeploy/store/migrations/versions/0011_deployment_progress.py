"""Deployment progress kept on the deployment: its strategy's phase and state (step, traffic weights,
fleets), so a strategy of several steps (blue/green, canary, linear) resumes where it was after a restart
(``engine.progress``).

Revision ID: 0011_deployment_progress
Revises: 0010_administrator_user
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_deployment_progress"
down_revision = "0010_administrator_user"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("phase", sa.String(64), nullable=True))
        batch.add_column(sa.Column("strategy_state", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("strategy_state")
        batch.drop_column("phase")

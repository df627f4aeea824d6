"""Why a deployment is being stopped: a user's StopDeployment (MANUAL_STOP) or an alarm (ALARM_ACTIVE,
with the alarms named), kept from the request until the stop takes effect, so the Stopped deployment
carries the right errorInformation and rolls back on the right event (``engine.stop``).

Revision ID: 0013_stop_reason
Revises: 0012_notification_outbox
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_stop_reason"
down_revision = "0012_notification_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("stop_error_code", sa.String(64), nullable=True))
        batch.add_column(sa.Column("stop_error_message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("stop_error_message")
        batch.drop_column("stop_error_code")

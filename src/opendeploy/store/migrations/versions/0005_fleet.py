"""Fleet orchestration: instance health per deployment group, what each target was at the start of its
deployment (health, zone, already up to date), and the instances an engine-made deployment is limited to.

Instances that existing deployments targeted get a health row (Unhealthy, Unknown revision: nothing is
known of them), so the engine does not take them for new instances of their groups.

Revision ID: 0005_fleet
Revises: 0004_iam
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_fleet"
down_revision = "0004_iam"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "instance_health",
        sa.Column("deployment_group_id", sa.String(length=36), nullable=False),
        sa.Column("instance_name", sa.String(length=100), nullable=False),
        sa.Column("instance_health", sa.String(length=16), nullable=False),
        sa.Column("revision_health", sa.String(length=16), nullable=False),
        sa.Column("revision_id", sa.String(length=36), nullable=True),
        sa.Column("deployment_id", sa.String(length=12), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_group_id"],
            ["deployment_groups.id"],
            name=op.f("fk_instance_health_deployment_group_id_deployment_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
            name=op.f("fk_instance_health_revision_id_revisions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("deployment_group_id", "instance_name", name=op.f("pk_instance_health")),
    )
    op.create_index(op.f("ix_instance_health_instance_name"), "instance_health", ["instance_name"])
    with op.batch_alter_table("deployment_targets") as batch:
        batch.add_column(sa.Column("instance_health", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("revision_health", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("zone", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("up_to_date", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("instance_names", JSON, nullable=True))
    op.execute(
        sa.text(
            "INSERT INTO instance_health "
            "(deployment_group_id, instance_name, instance_health, revision_health, updated_at) "
            "SELECT DISTINCT d.deployment_group_id, t.target_id, 'Unhealthy', 'Unknown', 0 "
            "FROM deployment_targets t JOIN deployments d ON d.id = t.deployment_id "
            "WHERE d.deployment_group_id IS NOT NULL AND t.target_type = 'InstanceTarget'"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("instance_names")
    with op.batch_alter_table("deployment_targets") as batch:
        batch.drop_column("up_to_date")
        batch.drop_column("zone")
        batch.drop_column("revision_health")
        batch.drop_column("instance_health")
    op.drop_index(op.f("ix_instance_health_instance_name"), table_name="instance_health")
    op.drop_table("instance_health")

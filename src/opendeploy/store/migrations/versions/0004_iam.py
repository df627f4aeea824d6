"""IAM users and their inline policies, for the server's IAM API (instance identities).

Revision ID: 0004_iam
Revises: 0003_engine
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_iam"
down_revision = "0003_engine"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "iam_users",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_key", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("arn", sa.String(length=2048), nullable=False),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_iam_users")),
        sa.UniqueConstraint("name_key", name=op.f("uq_iam_users_name_key")),
    )
    op.create_table(
        "iam_user_policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["iam_users.user_id"],
            name=op.f("fk_iam_user_policies_user_id_iam_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_user_policies")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_iam_user_policies_user_id")),
    )
    op.create_index(op.f("ix_iam_user_policies_user_id"), "iam_user_policies", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_iam_user_policies_user_id"), table_name="iam_user_policies")
    op.drop_table("iam_user_policies")
    op.drop_table("iam_users")

"""Core tables: access keys, applications, resource tags, on-premises instances, GitHub tokens.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

_REGISTERED = sa.text("deregister_time IS NULL")


def upgrade() -> None:
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(length=128), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("principal_arn", sa.String(length=2048), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("instance_name", sa.String(length=100), nullable=True),
        sa.Column("description", sa.String(length=256), nullable=False),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", name=op.f("pk_access_keys")),
    )
    op.create_index(op.f("ix_access_keys_instance_name"), "access_keys", ["instance_name"])

    op.create_table(
        "applications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("compute_platform", sa.String(length=16), nullable=False),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.Column("linked_to_github", sa.Boolean(), nullable=False),
        sa.Column("github_account_name", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("name", name=op.f("uq_applications_name")),
    )

    op.create_table(
        "github_account_tokens",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_ciphertext", sa.Text(), nullable=False),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_github_account_tokens")),
    )

    op.create_table(
        "on_premises_instances",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("iam_user_arn", sa.String(length=2048), nullable=True),
        sa.Column("iam_session_arn", sa.String(length=2048), nullable=True),
        sa.Column("register_time", sa.Float(), nullable=False),
        sa.Column("deregister_time", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_on_premises_instances")),
    )
    for column in ("iam_user_arn", "iam_session_arn"):
        op.create_index(
            f"uq_on_premises_instances_registered_{column}",
            "on_premises_instances",
            [column],
            unique=True,
            sqlite_where=_REGISTERED,
            postgresql_where=_REGISTERED,
        )

    op.create_table(
        "on_premises_instance_tags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("instance_name", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_name"],
            ["on_premises_instances.name"],
            name=op.f("fk_on_premises_instance_tags_instance_name_on_premises_instances"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_on_premises_instance_tags")),
        sa.UniqueConstraint("instance_name", "key", name=op.f("uq_on_premises_instance_tags_instance_name")),
    )
    op.create_index(
        op.f("ix_on_premises_instance_tags_instance_name"), "on_premises_instance_tags", ["instance_name"]
    )

    op.create_table(
        "resource_tags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_kind", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=128), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=True),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_resource_tags_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_tags")),
        sa.UniqueConstraint(
            "resource_kind", "resource_id", "key", name=op.f("uq_resource_tags_resource_kind")
        ),
    )
    op.create_index(op.f("ix_resource_tags_application_id"), "resource_tags", ["application_id"])
    op.create_index(op.f("ix_resource_tags_resource_id"), "resource_tags", ["resource_id"])


def downgrade() -> None:
    op.drop_table("resource_tags")
    op.drop_table("on_premises_instance_tags")
    op.drop_table("on_premises_instances")
    op.drop_table("github_account_tokens")
    op.drop_table("applications")
    op.drop_table("access_keys")

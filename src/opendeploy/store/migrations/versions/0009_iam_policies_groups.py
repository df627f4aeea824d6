"""IAM managed policies (customer managed, versioned), groups with members and inline policies, and the
attachments of managed policies to users and groups.

Revision ID: 0009_iam_policies_groups
Revises: 0008_audit_events
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_iam_policies_groups"
down_revision = "0008_audit_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iam_managed_policies",
        sa.Column("arn", sa.String(length=2048), nullable=False),
        sa.Column("policy_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("name_key", sa.String(length=128), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("default_version_id", sa.String(length=16), nullable=False),
        sa.Column("next_version", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.Column("update_time", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("arn", name=op.f("pk_iam_managed_policies")),
        sa.UniqueConstraint("policy_id", name=op.f("uq_iam_managed_policies_policy_id")),
        sa.UniqueConstraint("name_key", name=op.f("uq_iam_managed_policies_name_key")),
    )
    op.create_table(
        "iam_policy_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("policy_arn", sa.String(length=2048), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_arn"],
            ["iam_managed_policies.arn"],
            name=op.f("fk_iam_policy_versions_policy_arn_iam_managed_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_policy_versions")),
        sa.UniqueConstraint("policy_arn", "number", name=op.f("uq_iam_policy_versions_policy_arn")),
    )
    op.create_index(op.f("ix_iam_policy_versions_policy_arn"), "iam_policy_versions", ["policy_arn"])
    op.create_table(
        "iam_groups",
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("name_key", sa.String(length=128), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("arn", sa.String(length=2048), nullable=False),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_iam_groups")),
        sa.UniqueConstraint("name_key", name=op.f("uq_iam_groups_name_key")),
    )
    op.create_table(
        "iam_group_members",
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["iam_groups.group_id"],
            name=op.f("fk_iam_group_members_group_id_iam_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["iam_users.user_id"],
            name=op.f("fk_iam_group_members_user_id_iam_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_iam_group_members")),
    )
    op.create_index(op.f("ix_iam_group_members_user_id"), "iam_group_members", ["user_id"])
    op.create_table(
        "iam_group_policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["iam_groups.group_id"],
            name=op.f("fk_iam_group_policies_group_id_iam_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_group_policies")),
        sa.UniqueConstraint("group_id", "name", name=op.f("uq_iam_group_policies_group_id")),
    )
    op.create_index(op.f("ix_iam_group_policies_group_id"), "iam_group_policies", ["group_id"])
    op.create_table(
        "iam_policy_attachments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("principal_type", sa.String(length=8), nullable=False),
        sa.Column("principal_id", sa.String(length=128), nullable=False),
        sa.Column("policy_arn", sa.String(length=2048), nullable=False),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_policy_attachments")),
        sa.UniqueConstraint(
            "principal_type",
            "principal_id",
            "policy_arn",
            name=op.f("uq_iam_policy_attachments_principal_type"),
        ),
    )
    op.create_index(
        op.f("ix_iam_policy_attachments_principal_id"), "iam_policy_attachments", ["principal_id"]
    )
    op.create_index(op.f("ix_iam_policy_attachments_policy_arn"), "iam_policy_attachments", ["policy_arn"])


def downgrade() -> None:
    op.drop_table("iam_policy_attachments")
    op.drop_table("iam_group_policies")
    op.drop_table("iam_group_members")
    op.drop_table("iam_groups")
    op.drop_table("iam_policy_versions")
    op.drop_table("iam_managed_policies")

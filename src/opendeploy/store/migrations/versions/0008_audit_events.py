"""The audit trail: one row per API request in CloudTrail's record format (``audit_events``), the
resources each named (``audit_event_resources``), indexed for LookupEvents' attributes and time ranges.

Revision ID: 0008_audit_events
Revises: 0007_host_command_deliveries
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_audit_events"
down_revision = "0007_host_command_deliveries"
branch_labels = None
depends_on = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LOOKUP_INDEXES = {
    "ix_audit_events_event_name_time": ["event_name", "event_time"],
    "ix_audit_events_username_time": ["username", "event_time"],
    "ix_audit_events_access_key_id_time": ["access_key_id", "event_time"],
    "ix_audit_events_event_source_time": ["event_source", "event_time"],
    "ix_audit_events_read_only_time": ["read_only", "event_time"],
}


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", _KEY, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_time", sa.Float(), nullable=False),
        sa.Column("event_name", sa.String(128), nullable=False),
        sa.Column("event_source", sa.String(128), nullable=False),
        sa.Column("username", sa.String(256), nullable=True),
        sa.Column("access_key_id", sa.String(128), nullable=True),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("event_category", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(128), nullable=True),
        sa.Column("exported", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("record", sa.Text(), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_audit_events_event_id"),
    )
    op.create_index("ix_audit_events_event_time", "audit_events", ["event_time"])
    for name, columns in _LOOKUP_INDEXES.items():
        op.create_index(name, "audit_events", columns)
    op.create_index(
        "ix_audit_events_unexported",
        "audit_events",
        ["id"],
        sqlite_where=sa.text("NOT exported"),
        postgresql_where=sa.text("NOT exported"),
    )
    op.create_table(
        "audit_event_resources",
        sa.Column("id", _KEY, primary_key=True, autoincrement=True),
        sa.Column(
            "event_pk",
            _KEY,
            sa.ForeignKey(
                "audit_events.id",
                ondelete="CASCADE",
                name="fk_audit_event_resources_event_pk_audit_events",
            ),
            nullable=False,
        ),
        sa.Column("resource_type", sa.String(256), nullable=False),
        sa.Column("resource_name", sa.String(2048), nullable=False),
    )
    op.create_index("ix_audit_event_resources_event_pk", "audit_event_resources", ["event_pk"])
    op.create_index("ix_audit_event_resources_resource_name", "audit_event_resources", ["resource_name"])
    op.create_index("ix_audit_event_resources_resource_type", "audit_event_resources", ["resource_type"])


def downgrade() -> None:
    op.drop_table("audit_event_resources")
    op.drop_table("audit_events")

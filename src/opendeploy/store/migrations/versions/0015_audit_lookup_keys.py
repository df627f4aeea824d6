"""The audit trail's lookup keys (``audit_lookup_keys``): what LookupEvents filters on, written in
batches when events are exported instead of in per-attribute indexes every request's commit updated
(``store.models.audit_events``). Events already exported get their keys here; the others get them
at their export.

Revision ID: 0015_audit_lookup_keys
Revises: 0014_event_stream
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_audit_lookup_keys"
down_revision = "0014_event_stream"
branch_labels = None
depends_on = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_EVENT_INDEXES = {
    "ix_audit_events_event_name_time": ["event_name", "event_time"],
    "ix_audit_events_username_time": ["username", "event_time"],
    "ix_audit_events_access_key_id_time": ["access_key_id", "event_time"],
    "ix_audit_events_event_source_time": ["event_source", "event_time"],
    "ix_audit_events_read_only_time": ["read_only", "event_time"],
}
_RESOURCE_INDEXES = {
    "ix_audit_event_resources_resource_name": ["resource_name"],
    "ix_audit_event_resources_resource_type": ["resource_type"],
}
# (attribute, the value's SQL over audit_events e / audit_event_resources r, from which table)
_BACKFILL = (
    ("EventId", "e.event_id", False),
    ("EventName", "e.event_name", False),
    ("EventSource", "e.event_source", False),
    ("Username", "e.username", False),
    ("AccessKeyId", "e.access_key_id", False),
    ("ReadOnly", "CASE WHEN e.read_only THEN 'true' ELSE 'false' END", False),
    ("ResourceType", "r.resource_type", True),
    ("ResourceName", "r.resource_name", True),
)


def upgrade() -> None:
    op.create_table(
        "audit_lookup_keys",
        sa.Column("lookup_key", sa.Text(), primary_key=True),
        sa.Column("event_time", sa.Float(), primary_key=True),
        sa.Column(
            "event_pk",
            _KEY,
            sa.ForeignKey(
                "audit_events.id", ondelete="CASCADE", name="fk_audit_lookup_keys_event_pk_audit_events"
            ),
            primary_key=True,
        ),
    )
    op.create_index("ix_audit_lookup_keys_event_pk", "audit_lookup_keys", ["event_pk"])
    for attribute, value, of_resource in _BACKFILL:  # constants: nothing from outside in this SQL
        source = (
            "audit_events e JOIN audit_event_resources r ON r.event_pk = e.id"
            if of_resource
            else "audit_events e"
        )
        op.execute(
            f"INSERT INTO audit_lookup_keys (lookup_key, event_time, event_pk) "
            f"SELECT DISTINCT '{attribute}=' || {value}, e.event_time, e.id FROM {source} "
            f"WHERE e.exported AND {value} IS NOT NULL"
        )
    for name in _EVENT_INDEXES:
        op.drop_index(name, table_name="audit_events")
    for name in _RESOURCE_INDEXES:
        op.drop_index(name, table_name="audit_event_resources")


def downgrade() -> None:
    for name, columns in _RESOURCE_INDEXES.items():
        op.create_index(name, "audit_event_resources", columns)
    for name, columns in _EVENT_INDEXES.items():
        op.create_index(name, "audit_events", columns)
    op.drop_index("ix_audit_lookup_keys_event_pk", table_name="audit_lookup_keys")
    op.drop_table("audit_lookup_keys")

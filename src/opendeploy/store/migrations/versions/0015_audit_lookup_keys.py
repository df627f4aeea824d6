"""The audit trail's lookup keys (``audit_lookup_keys``): what LookupEvents filters on, written in
batches when events are exported instead of in per-attribute indexes every request's commit updated;
and each event's resources as compact JSON in its own row (``audit_events.resources``) instead of rows
of ``audit_event_resources`` (``store.models.audit_events``). Events already exported get their keys
here; the others get them at their export.

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
# (attribute, the value's SQL over audit_events e / audit_event_resources r, whether of a resource)
_BACKFILL = (
    ("EventName", "e.event_name", False),
    ("EventSource", "e.event_source", False),
    ("Username", "e.username", False),
    ("AccessKeyId", "e.access_key_id", False),
    ("ReadOnly", "CASE WHEN e.read_only THEN 'true' ELSE 'false' END", False),
    ("ResourceType", "r.resource_type", True),
    ("ResourceName", "r.resource_name", True),
)
# One event's resources as the column keeps them, [["type","name"],…] without spaces, in their order.
_QUOTE = {"sqlite": "json_quote({})", "postgresql": "to_json({}::text)::text"}
# SQLite keeps the order of the rows it aggregates; PostgreSQL is told.
_AGGREGATE = {"sqlite": "group_concat({}, ',')", "postgresql": "string_agg({}, ',' ORDER BY r.id)"}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
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
    op.add_column("audit_events", sa.Column("resources", sa.Text(), nullable=False, server_default="[]"))
    quote = _QUOTE[dialect]
    pair = f"'[' || {quote.format('r.resource_type')} || ',' || {quote.format('r.resource_name')} || ']'"
    op.execute(
        "UPDATE audit_events SET resources = (SELECT '[' || "
        + _AGGREGATE[dialect].format("r.pair")
        + " || ']' FROM (SELECT "
        + pair
        + " AS pair, r.id FROM audit_event_resources r WHERE r.event_pk = audit_events.id ORDER BY r.id) r) "
        "WHERE id IN (SELECT event_pk FROM audit_event_resources)"
    )
    op.drop_table("audit_event_resources")
    for name in _EVENT_INDEXES:
        op.drop_index(name, table_name="audit_events")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, columns in _EVENT_INDEXES.items():
        op.create_index(name, "audit_events", columns)
    op.create_table(
        "audit_event_resources",
        sa.Column("id", _KEY, primary_key=True, autoincrement=True),
        sa.Column(
            "event_pk",
            _KEY,
            sa.ForeignKey(
                "audit_events.id", ondelete="CASCADE", name="fk_audit_event_resources_event_pk_audit_events"
            ),
            nullable=False,
        ),
        sa.Column("resource_type", sa.String(256), nullable=False),
        sa.Column("resource_name", sa.String(2048), nullable=False),
    )
    op.create_index("ix_audit_event_resources_event_pk", "audit_event_resources", ["event_pk"])
    op.create_index("ix_audit_event_resources_resource_name", "audit_event_resources", ["resource_name"])
    op.create_index("ix_audit_event_resources_resource_type", "audit_event_resources", ["resource_type"])
    pairs = {
        "sqlite": "SELECT e.id, p.value ->> 0, p.value ->> 1 FROM audit_events e, json_each(e.resources) p "
        "ORDER BY e.id, p.key",
        "postgresql": "SELECT e.id, p.value ->> 0, p.value ->> 1 FROM audit_events e, "
        "json_array_elements(e.resources::json) WITH ORDINALITY p(value, n) ORDER BY e.id, p.n",
    }[dialect]
    op.execute(f"INSERT INTO audit_event_resources (event_pk, resource_type, resource_name) {pairs}")
    op.drop_column("audit_events", "resources")
    op.drop_index("ix_audit_lookup_keys_event_pk", table_name="audit_lookup_keys")
    op.drop_table("audit_lookup_keys")

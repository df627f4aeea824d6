"""The JSON column type of the deployment tables: JSONB on PostgreSQL, JSON text on SQLite.

Values are replaced, never mutated in place (SQLAlchemy does not track changes inside a JSON value).
"""

from __future__ import annotations

from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql import JSONB

JSONValue = JSON().with_variant(JSONB(), "postgresql")

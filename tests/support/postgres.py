"""Throw-away PostgreSQL databases for tests: created on demand, dropped at the end of the session.

The server is found at ``$OPENDEPLOY_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); tests that need it are skipped, with the reason,
only when it cannot be reached.
"""

from __future__ import annotations

import os
import secrets

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get("OPENDEPLOY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def unreachable_reason() -> str | None:
    """Why PostgreSQL cannot be used, or ``None`` if it can."""
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return f"PostgreSQL is not reachable at {ADMIN_URL}: {error}".strip()
    return None


class Databases:
    """Creates uniquely named databases and drops every one of them on ``drop_all``."""

    def __init__(self, admin_url: str = ADMIN_URL) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def create(self, prefix: str = "opendeploy_test") -> str:
        """A new empty database; returns its ``postgresql://`` URL."""
        name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            # Byte-order collation, as SQLite's: listings sort the same on both backends.
            connection.execute(
                sql.SQL(
                    "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
                ).format(sql.Identifier(name))
            )
        self.created.append(name)
        info = psycopg.conninfo.conninfo_to_dict(self.admin_url)
        user = info.get("user", "postgres")
        host = info.get("host", "127.0.0.1")
        port = info.get("port", "5432")
        return f"postgresql://{user}@{host}:{port}/{name}"

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            for name in self.created:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        self.created.clear()

"""Prepared statements (``store.prepared``) answer exactly as SQLAlchemy's own execution does, on SQLite
and on PostgreSQL, inside the caller's transaction: bound constants, JSON both ways, RETURNING, row
counts, many parameter sets in one call, SELECT … FOR UPDATE SKIP LOCKED — and a rollback undoes them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    cast,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from opendeploy.domain.statuses import HostCommandStatus
from opendeploy.store.db import Database
from opendeploy.store.prepared import Prepared
from support.postgres import Databases

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(32)),
    Column("status", String(16)),
    Column("score", Float),
    Column("payload", JSON().with_variant(JSONB(), "postgresql")),
)

ADD = Prepared(
    insert(things)
    .values(name=bindparam("b_name"), status=HostCommandStatus.PENDING, payload=bindparam("b_payload"))
    .returning(things.c.id)
)
PENDING = Prepared(
    select(things.c.id, things.c.name, things.c.payload)
    .where(things.c.status == HostCommandStatus.PENDING, things.c.name.like(bindparam("pattern")))
    .order_by(things.c.id)
    .with_for_update(skip_locked=True)
)
START = Prepared(
    update(things)
    .where(things.c.id == bindparam("b_id"), things.c.status == HostCommandStatus.PENDING)
    .values(status=HostCommandStatus.IN_PROGRESS, score=bindparam("b_score"))
    .returning(things.c.name, things.c.score)
)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'prepared.db'}"
    else:
        databases: Databases = request.getfixturevalue("postgres_databases")
        url = databases.create()
    database = Database(url)
    metadata.create_all(database.engine)
    yield database
    database.dispose()


def test_prepared_statements_answer_as_sqlalchemy_does(database: Database) -> None:
    with database.transaction() as session:
        connection = session.connection()
        first = ADD.first(connection, {"b_name": "web-1", "b_payload": {"allowed": 60.5, "tags": ["a"]}})
        second = ADD.first(connection, {"b_name": "web-2", "b_payload": None})
        ADD.first(connection, {"b_name": "db-1", "b_payload": {}})
        assert first is not None and second is not None and second.id > first.id

        rows = PENDING.all(connection, {"pattern": "web-%"})
        assert [(row.id, row.name, row.payload) for row in rows] == [
            (first.id, "web-1", {"allowed": 60.5, "tags": ["a"]}),
            (second.id, "web-2", None),
        ]
        assert START.first(connection, {"b_id": first.id, "b_score": 1.5}) == ("web-1", 1.5)
        assert START.first(connection, {"b_id": first.id, "b_score": 2.5}) is None  # no longer Pending
        # What SQLAlchemy's own execution sees in the same transaction.
        stored = connection.execute(select(things).order_by(things.c.id)).all()
        assert [(row.name, row.status, row.score, row.payload) for row in stored] == [
            ("web-1", "InProgress", 1.5, {"allowed": 60.5, "tags": ["a"]}),
            ("web-2", "Pending", None, None),
            ("db-1", "Pending", None, {}),
        ]
        changed = Prepared(update(things).values(score=bindparam("b_score")))
        assert changed.execute(connection, {"b_score": 0.0}) == 3


def test_execute_many_runs_the_statement_for_every_parameter_set(database: Database) -> None:
    many = Prepared(
        insert(things).values(
            name=bindparam("b_name"), status=HostCommandStatus.PENDING, payload=bindparam("b_payload")
        )
    )
    copy = Prepared(  # rows from a SELECT, with the copy's name bound per row
        insert(things).from_select(
            ["name", "status"],
            select(cast(bindparam("b_copy"), String), things.c.status).where(
                things.c.name == bindparam("b_name")
            ),
        )
    )
    with database.transaction() as session:
        connection = session.connection()
        many.execute_many(connection, [{"b_name": f"web-{n}", "b_payload": {"n": n}} for n in range(3)])
        many.execute_many(connection, [])  # nothing to run: no call to the driver
        copy.execute_many(
            connection, [{"b_name": "web-0", "b_copy": "copy-0"}, {"b_name": "none", "b_copy": "x"}]
        )
    with database.transaction(write=False) as session:
        stored = session.connection().execute(select(things).order_by(things.c.id)).all()
    assert [(row.name, row.status, row.payload) for row in stored] == [
        ("web-0", "Pending", {"n": 0}),
        ("web-1", "Pending", {"n": 1}),
        ("web-2", "Pending", {"n": 2}),
        ("copy-0", "Pending", None),
    ]


def test_a_rollback_undoes_prepared_statements(database: Database) -> None:
    with pytest.raises(RuntimeError), database.transaction() as session:
        ADD.first(session.connection(), {"b_name": "gone", "b_payload": None})
        raise RuntimeError("roll back")
    with database.transaction(write=False) as session:
        assert session.connection().execute(select(things.c.name)).all() == []


def test_expanding_parameters_are_refused(database: Database) -> None:
    statement = Prepared(select(things.c.id).where(things.c.id.in_(bindparam("ids", expanding=True))))
    with pytest.raises(ValueError, match="cannot expand"), database.transaction() as session:
        statement.all(session.connection(), {"ids": [1]})

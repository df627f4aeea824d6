"""``engine.transactions.in_transaction``: a step whose PostgreSQL connection is lost before the commit
(a database restart ends the session) runs again on a new connection, once, and its work is committed
exactly once; other errors are not retried."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from opendeploy.engine.transactions import ATTEMPTS, in_transaction
from opendeploy.store.db import Database
from support.postgres import Databases

pytestmark = pytest.mark.postgres

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String(32)))


@pytest.fixture
def database(postgres_databases: Databases) -> Iterator[Database]:
    database = Database(postgres_databases.create())
    metadata.create_all(database.engine)
    yield database
    database.dispose()


def _end_session(database: Database, pid: int) -> None:
    url = make_url(database.url).set(database="postgres", drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _count(database: Database) -> int:
    with database.transaction(write=False) as session:
        return session.scalar(select(func.count()).select_from(notes)) or 0


def test_a_step_whose_connection_is_lost_before_the_commit_runs_again(database: Database) -> None:
    attempts: list[int] = []

    def step(session: Session) -> str:
        pid = session.scalar(text("SELECT pg_backend_pid()"))
        attempts.append(pid)
        session.execute(insert(notes).values(text=f"attempt {len(attempts)}"))
        if len(attempts) == 1:
            _end_session(database, pid)  # the database goes away mid-step
            session.execute(select(notes.c.id))  # the next statement finds the connection gone
        return "done"

    assert in_transaction(database, step) == "done"
    assert len(attempts) == 2 and attempts[0] != attempts[1]  # again, on a new connection
    with database.transaction(write=False) as session:
        assert session.scalars(select(notes.c.text)).all() == ["attempt 2"]  # the first was rolled back


def test_other_errors_are_not_run_again(database: Database) -> None:
    attempts = 0

    def step(session: Session) -> None:
        nonlocal attempts
        attempts += 1
        session.execute(insert(notes).values(id=1, text="one"))
        session.execute(insert(notes).values(id=1, text="the same id"))

    with pytest.raises(IntegrityError):
        in_transaction(database, step)
    assert attempts == 1
    assert _count(database) == 0


def test_a_lost_connection_is_run_again_only_a_few_times(database: Database) -> None:
    attempts = 0

    def step(session: Session) -> None:
        nonlocal attempts
        attempts += 1
        _end_session(database, session.scalar(text("SELECT pg_backend_pid()")))
        session.execute(select(notes.c.id))

    with pytest.raises(DBAPIError) as raised:
        in_transaction(database, step)
    assert raised.value.connection_invalidated
    assert attempts == ATTEMPTS

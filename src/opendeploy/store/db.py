"""The database: one SQLAlchemy engine per server, sessions as transactions, and schema migration.

SQLite (the embedded default) runs in WAL mode with foreign keys on, a busy timeout and
``synchronous=FULL`` so an acknowledged commit survives a crash of the process or the machine. Write
transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of
failing when a reader upgrades to a writer. ``postgresql://`` URLs select psycopg 3.

Use ``Database.transaction(write=...)`` for one unit of work: it commits on success and rolls back on
any exception. On SQLite, write transactions of one process also queue on a lock in the process: a
writer that finds the database locked would otherwise sleep in growing steps (up to 100 ms) inside
SQLite's busy handler before trying again, and with many concurrent writers most time went to those
sleeps. Other processes writing the same file still meet the busy timeout.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Serialises migrations when several server replicas start against one PostgreSQL database.
_PG_MIGRATION_LOCK_ID = 0x6F70656E6465706C  # "opendepl"


def normalize_url(url: str) -> str:
    """Pick the driver opendeploy uses for a database URL: psycopg 3 for PostgreSQL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def describe_url(url: str) -> str:
    """The URL with any password hidden, for logs."""
    return make_url(url).render_as_string(hide_password=True)


def create_db_engine(url: str) -> Engine:
    """An engine configured for opendeploy's durability and concurrency needs."""
    url = normalize_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            _create_private(Path(database))
        engine = create_engine(
            url,
            pool_size=20,
            max_overflow=20,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def _create_private(database: Path) -> None:
    """Create the SQLite file (and its directory) readable by its owner only, whatever the umask.

    SQLite gives the ``-wal`` and ``-shm`` files it creates the database file's permissions, so they are
    private too.
    """
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite's own handling defers it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """The server's database: an engine plus session factories for read and write transactions."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine = create_db_engine(self.url)
        self.sqlite = is_sqlite(self.url)
        write_bind = self.engine.execution_options(sqlite_immediate=True) if self.sqlite else self.engine
        self._read_sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(bind=write_bind, expire_on_commit=False)
        # Re-entrant: a writer may look something up in a nested transaction of its own.
        self.writer_lock = threading.RLock()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends normally, rolled back if it raises."""
        if write and self.sqlite:
            with self.writer_lock, self._write_sessions() as session, session.begin():
                yield session
            return
        factory = self._write_sessions if write else self._read_sessions
        with factory() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Bring the schema up to the newest Alembic revision."""
        migrate(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(engine: Engine) -> Any:
    """An Alembic configuration pointing at opendeploy's migrations, bound to ``engine``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "heads") -> None:
    """Apply every migration up to ``revision``; safe to call from several processes at once."""
    from alembic import command

    config = alembic_config(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as lock_connection:
            lock_connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_MIGRATION_LOCK_ID})
            try:
                command.upgrade(config, revision)
            finally:
                lock_connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_MIGRATION_LOCK_ID})
                lock_connection.commit()
    else:
        command.upgrade(config, revision)

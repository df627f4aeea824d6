"""Alembic environment: runs migrations on the engine ``store.db.migrate`` hands over."""

from __future__ import annotations

from alembic import context

import opendeploy.store.models  # noqa: F401  (fills Base.metadata)
from opendeploy.store.base import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters tables by copying them; batch mode does that for later migrations.
        render_as_batch=engine.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()

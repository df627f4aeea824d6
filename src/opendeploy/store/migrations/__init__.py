"""Alembic migrations of opendeploy's schema; ``store.db.migrate`` applies them at server start."""

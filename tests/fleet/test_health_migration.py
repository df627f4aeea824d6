"""Migration 0005_fleet on a database that already has deployments: each instance a group has deployed
to gets a health record (Unhealthy, Unknown: nothing is known of it), so the engine does not take the
group's existing instances for new ones and deploy to them by itself; and it goes back down cleanly."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from opendeploy.store.db import Database, migrate


def test_existing_targets_become_known_instances_of_their_groups(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate(database.engine, "0004_iam")
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO applications (id, name, compute_platform, linked_to_github, create_time) "
                    "VALUES ('app-1', 'app', 'Server', 0, 1)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO deployment_groups (id, application_id, name, deployment_config_name, "
                    "outdated_instances_strategy, termination_hook_enabled, create_time, update_time) "
                    "VALUES ('group-1', 'app-1', 'group', 'CodeDeployDefault.OneAtATime', 'UPDATE', 0, 1, 1)"
                )
            )
            for deployment in ("d-AAAAAAAAA", "d-BBBBBBBBB"):
                connection.execute(
                    text(
                        "INSERT INTO deployments (id, application_id, deployment_group_id, status, creator, "
                        "compute_platform, deployment_config_name, ignore_application_stop_failures, "
                        "update_outdated_instances_only, file_exists_behavior, create_time, updated_at, "
                        "instance_termination_wait_time_started) VALUES (:id, 'app-1', 'group-1', "
                        "'Succeeded', 'user', 'Server', 'CodeDeployDefault.OneAtATime', 0, 0, 'DISALLOW', "
                        "1, 1, 0)"
                    ),
                    {"id": deployment},
                )
            for deployment, instance in (
                ("d-AAAAAAAAA", "web-1"),
                ("d-AAAAAAAAA", "web-2"),
                ("d-BBBBBBBBB", "web-1"),
            ):
                connection.execute(
                    text(
                        "INSERT INTO deployment_targets (deployment_id, target_id, target_type, status, "
                        "last_updated_at) VALUES (:deployment, :instance, 'InstanceTarget', 'Succeeded', 1)"
                    ),
                    {"deployment": deployment, "instance": instance},
                )

        database.migrate()

        with database.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT deployment_group_id, instance_name, instance_health, revision_health "
                    "FROM instance_health ORDER BY instance_name"
                )
            ).all()
        assert [tuple(row) for row in rows] == [
            ("group-1", "web-1", "Unhealthy", "Unknown"),
            ("group-1", "web-2", "Unhealthy", "Unknown"),
        ]

        migrate_down(database, "0004_iam")
        assert "instance_health" not in inspect(database.engine).get_table_names()
        assert "zone" not in {c["name"] for c in inspect(database.engine).get_columns("deployment_targets")}
    finally:
        database.dispose()


def migrate_down(database: Database, revision: str) -> None:
    from alembic import command

    from opendeploy.store.db import alembic_config

    command.downgrade(alembic_config(database.engine), revision)

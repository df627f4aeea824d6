"""Deployment tables: deployment configurations, deployment groups, revisions, deployments, their
targets, lifecycle events and host commands, and persistent timers.

Revision ID: 0002_deployments
Revises: 0001_core
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_deployments"
down_revision = "0001_core"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# One active deployment per deployment group (see store.models.deployments).
_ACTIVE = sa.text("status IN ('Baking', 'Created', 'InProgress', 'Queued', 'Ready')")


def upgrade() -> None:
    op.create_table(
        "deployment_configs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("compute_platform", sa.String(length=16), nullable=False),
        sa.Column("minimum_healthy_hosts", JSON, nullable=True),
        sa.Column("traffic_routing_config", JSON, nullable=True),
        sa.Column("zonal_config", JSON, nullable=True),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_configs")),
        sa.UniqueConstraint("name", name=op.f("uq_deployment_configs_name")),
    )
    op.create_table(
        "deployment_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("deployment_config_name", sa.String(length=100), nullable=False),
        sa.Column("service_role_arn", sa.Text(), nullable=True),
        sa.Column("ec2_tag_filters", JSON, nullable=True),
        sa.Column("on_premises_instance_tag_filters", JSON, nullable=True),
        sa.Column("ec2_tag_set", JSON, nullable=True),
        sa.Column("on_premises_tag_set", JSON, nullable=True),
        sa.Column("auto_scaling_groups", JSON, nullable=True),
        sa.Column("ecs_services", JSON, nullable=True),
        sa.Column("trigger_configurations", JSON, nullable=True),
        sa.Column("alarm_configuration", JSON, nullable=True),
        sa.Column("auto_rollback_configuration", JSON, nullable=True),
        sa.Column("deployment_style", JSON, nullable=True),
        sa.Column("blue_green_deployment_configuration", JSON, nullable=True),
        sa.Column("load_balancer_info", JSON, nullable=True),
        sa.Column("outdated_instances_strategy", sa.String(length=16), nullable=False),
        sa.Column("ec2_deployment_options", JSON, nullable=True),
        sa.Column("termination_hook_enabled", sa.Boolean(), nullable=False),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.Column("update_time", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_deployment_groups_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_groups")),
        sa.UniqueConstraint("application_id", "name", name=op.f("uq_deployment_groups_application_id")),
    )
    op.create_index(op.f("ix_deployment_groups_application_id"), "deployment_groups", ["application_id"])
    op.create_index(
        op.f("ix_deployment_groups_deployment_config_name"), "deployment_groups", ["deployment_config_name"]
    )

    op.create_table(
        "revisions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=False),
        sa.Column("location_key", sa.String(length=64), nullable=False),
        sa.Column("revision_type", sa.String(length=16), nullable=False),
        sa.Column("location", JSON, nullable=False),
        sa.Column("s3_bucket", sa.String(length=255), nullable=True),
        sa.Column("s3_key", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("register_time", sa.Float(), nullable=False),
        sa.Column("first_used_time", sa.Float(), nullable=True),
        sa.Column("last_used_time", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_revisions_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisions")),
        sa.UniqueConstraint("application_id", "location_key", name=op.f("uq_revisions_application_id")),
    )
    op.create_index(op.f("ix_revisions_application_id"), "revisions", ["application_id"])
    op.create_index(op.f("ix_revisions_s3_bucket"), "revisions", ["s3_bucket"])

    op.create_table(
        "deployments",
        sa.Column("id", sa.String(length=12), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=False),
        sa.Column("deployment_group_id", sa.String(length=36), nullable=True),
        sa.Column("revision_id", sa.String(length=36), nullable=True),
        sa.Column("previous_revision_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("creator", sa.String(length=32), nullable=False),
        sa.Column("compute_platform", sa.String(length=16), nullable=False),
        sa.Column("deployment_config_name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("ignore_application_stop_failures", sa.Boolean(), nullable=False),
        sa.Column("update_outdated_instances_only", sa.Boolean(), nullable=False),
        sa.Column("file_exists_behavior", sa.String(length=16), nullable=False),
        sa.Column("deployment_mode", sa.String(length=16), nullable=True),
        sa.Column("target_instances", JSON, nullable=True),
        sa.Column("auto_rollback_configuration", JSON, nullable=True),
        sa.Column("override_alarm_configuration", JSON, nullable=True),
        sa.Column("ec2_deployment_options", JSON, nullable=True),
        sa.Column("deployment_style", JSON, nullable=True),
        sa.Column("blue_green_deployment_configuration", JSON, nullable=True),
        sa.Column("load_balancer_info", JSON, nullable=True),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.Column("start_time", sa.Float(), nullable=True),
        sa.Column("complete_time", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("additional_deployment_status_info", sa.Text(), nullable=True),
        sa.Column("deployment_status_messages", JSON, nullable=True),
        sa.Column("rollback_deployment_id", sa.String(length=12), nullable=True),
        sa.Column("rollback_triggering_deployment_id", sa.String(length=12), nullable=True),
        sa.Column("rollback_message", sa.Text(), nullable=True),
        sa.Column("auto_update_outdated_instances_root_deployment_id", sa.String(length=12), nullable=True),
        sa.Column("auto_update_outdated_instances_deployment_ids", JSON, nullable=True),
        sa.Column("instance_termination_wait_time_started", sa.Boolean(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("stop_requested_at", sa.Float(), nullable=True),
        sa.Column("stop_auto_rollback_enabled", sa.Boolean(), nullable=True),
        sa.Column("ready_wait_continue_requested_at", sa.Float(), nullable=True),
        sa.Column("termination_wait_skip_requested_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_deployments_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_group_id"],
            ["deployment_groups.id"],
            name=op.f("fk_deployments_deployment_group_id_deployment_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["previous_revision_id"],
            ["revisions.id"],
            name=op.f("fk_deployments_previous_revision_id_revisions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
            name=op.f("fk_deployments_revision_id_revisions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    op.create_index(
        "ix_deployments_application_id_create_time", "deployments", ["application_id", "create_time"]
    )
    op.create_index(op.f("ix_deployments_deployment_config_name"), "deployments", ["deployment_config_name"])
    op.create_index(op.f("ix_deployments_external_id"), "deployments", ["external_id"])
    op.create_index(
        "ix_deployments_group_status_complete_time",
        "deployments",
        ["deployment_group_id", "status", "complete_time"],
    )
    op.create_index(op.f("ix_deployments_revision_id"), "deployments", ["revision_id"])
    op.create_index(op.f("ix_deployments_status"), "deployments", ["status"])
    op.create_index(
        "uq_deployments_active_deployment_group_id",
        "deployments",
        ["deployment_group_id"],
        unique=True,
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )

    op.create_table(
        "deployment_targets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment_id", sa.String(length=12), nullable=False),
        sa.Column("target_id", sa.String(length=255), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_arn", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("instance_label", sa.String(length=8), nullable=True),
        sa.Column("last_updated_at", sa.Float(), nullable=False),
        sa.Column("details", JSON, nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_targets_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_targets")),
        sa.UniqueConstraint("deployment_id", "target_id", name=op.f("uq_deployment_targets_deployment_id")),
    )
    op.create_index(
        "ix_deployment_targets_deployment_id_status", "deployment_targets", ["deployment_id", "status"]
    )

    op.create_table(
        "timers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("deployment_id", sa.String(length=12), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_timers_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timers")),
    )
    op.create_index(op.f("ix_timers_deployment_id"), "timers", ["deployment_id"])
    op.create_index("ix_timers_due_at", "timers", ["due_at"])

    op.create_table(
        "lifecycle_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment_target_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_time", sa.Float(), nullable=True),
        sa.Column("end_time", sa.Float(), nullable=True),
        sa.Column("diagnostics_error_code", sa.String(length=32), nullable=True),
        sa.Column("diagnostics_script_name", sa.Text(), nullable=True),
        sa.Column("diagnostics_message", sa.Text(), nullable=True),
        sa.Column("diagnostics_log_tail", sa.Text(), nullable=True),
        sa.Column("hook_execution_id", sa.String(length=128), nullable=True),
        sa.Column("hook_reported_status", sa.String(length=16), nullable=True),
        sa.Column("hook_reported_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_target_id"],
            ["deployment_targets.id"],
            name=op.f("fk_lifecycle_events_deployment_target_id_deployment_targets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_events")),
        sa.UniqueConstraint(
            "deployment_target_id", "name", name=op.f("uq_lifecycle_events_deployment_target_id")
        ),
        sa.UniqueConstraint("hook_execution_id", name=op.f("uq_lifecycle_events_hook_execution_id")),
    )
    op.create_index(
        op.f("ix_lifecycle_events_deployment_target_id"), "lifecycle_events", ["deployment_target_id"]
    )

    op.create_table(
        "host_commands",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("host_command_identifier", sa.String(length=255), nullable=False),
        sa.Column("deployment_id", sa.String(length=12), nullable=False),
        sa.Column("deployment_target_id", sa.Integer(), nullable=False),
        sa.Column("lifecycle_event_id", sa.Integer(), nullable=False),
        sa.Column("host_identifier", sa.String(length=2048), nullable=False),
        sa.Column("command_name", sa.String(length=64), nullable=False),
        sa.Column("command_position", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("acknowledged_at", sa.Float(), nullable=True),
        sa.Column("completed_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("estimated_completion_time", sa.Float(), nullable=True),
        sa.Column("diagnostics_format", sa.String(length=64), nullable=True),
        sa.Column("diagnostics_payload", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_host_commands_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_target_id"],
            ["deployment_targets.id"],
            name=op.f("fk_host_commands_deployment_target_id_deployment_targets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lifecycle_event_id"],
            ["lifecycle_events.id"],
            name=op.f("fk_host_commands_lifecycle_event_id_lifecycle_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_commands")),
        sa.UniqueConstraint("host_command_identifier", name=op.f("uq_host_commands_host_command_identifier")),
        sa.UniqueConstraint(
            "lifecycle_event_id", "attempt", name=op.f("uq_host_commands_lifecycle_event_id")
        ),
    )
    op.create_index(op.f("ix_host_commands_deployment_id"), "host_commands", ["deployment_id"])
    op.create_index(op.f("ix_host_commands_deployment_target_id"), "host_commands", ["deployment_target_id"])
    op.create_index("ix_host_commands_host_identifier_status", "host_commands", ["host_identifier", "status"])


def downgrade() -> None:
    op.drop_index("ix_host_commands_host_identifier_status", table_name="host_commands")
    op.drop_index(op.f("ix_host_commands_deployment_target_id"), table_name="host_commands")
    op.drop_index(op.f("ix_host_commands_deployment_id"), table_name="host_commands")

    op.drop_table("host_commands")
    op.drop_index(op.f("ix_lifecycle_events_deployment_target_id"), table_name="lifecycle_events")

    op.drop_table("lifecycle_events")
    op.drop_index("ix_timers_due_at", table_name="timers")
    op.drop_index(op.f("ix_timers_deployment_id"), table_name="timers")

    op.drop_table("timers")
    op.drop_index("ix_deployment_targets_deployment_id_status", table_name="deployment_targets")

    op.drop_table("deployment_targets")
    op.drop_index("uq_deployments_active_deployment_group_id", table_name="deployments")
    op.drop_index(op.f("ix_deployments_status"), table_name="deployments")
    op.drop_index(op.f("ix_deployments_revision_id"), table_name="deployments")
    op.drop_index("ix_deployments_group_status_complete_time", table_name="deployments")
    op.drop_index(op.f("ix_deployments_external_id"), table_name="deployments")
    op.drop_index(op.f("ix_deployments_deployment_config_name"), table_name="deployments")
    op.drop_index("ix_deployments_application_id_create_time", table_name="deployments")

    op.drop_table("deployments")
    op.drop_index(op.f("ix_revisions_s3_bucket"), table_name="revisions")
    op.drop_index(op.f("ix_revisions_application_id"), table_name="revisions")

    op.drop_table("revisions")
    op.drop_index(op.f("ix_deployment_groups_deployment_config_name"), table_name="deployment_groups")
    op.drop_index(op.f("ix_deployment_groups_application_id"), table_name="deployment_groups")

    op.drop_table("deployment_groups")
    op.drop_table("deployment_configs")

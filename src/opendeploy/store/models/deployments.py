"""Deployments and what the engine records while carrying them out.

- ``Deployment``: one deployment of a revision to a deployment group, with every request option, its
  status and times, error information, rollback links, and requests (stop, continue) for the engine.
- ``DeploymentTarget``: one target of a deployment (an instance, a Lambda function, an ECS service).
- ``LifecycleEventRecord``: one lifecycle event of one target, in order, with status, times and
  diagnostics.
- ``HostCommand``: the agent protocol's unit of work, one per lifecycle event per instance (per attempt),
  with its opaque HostCommandIdentifier, status and acknowledgement / completion times.

At most one deployment per deployment group is active: a partial unique index enforces it, so two
concurrent CreateDeployment calls (or server replicas) cannot both start one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.domain.statuses import ACTIVE_DEPLOYMENT_STATUSES
from opendeploy.store.base import Base
from opendeploy.store.models.deployment_options import DeploymentOptions
from opendeploy.store.models.json_column import JSONValue

ACTIVE_STATUS_PREDICATE = text(
    "status IN (" + ", ".join(f"'{status}'" for status in sorted(ACTIVE_DEPLOYMENT_STATUSES)) + ")"
)


class Deployment(DeploymentOptions, Base):
    __tablename__ = "deployments"
    __table_args__ = (
        Index(
            "uq_deployments_active_deployment_group_id",
            "deployment_group_id",
            unique=True,
            sqlite_where=ACTIVE_STATUS_PREDICATE,
            postgresql_where=ACTIVE_STATUS_PREDICATE,
        ),
        Index("ix_deployments_group_status_complete_time", "deployment_group_id", "status", "complete_time"),
        Index("ix_deployments_application_id_create_time", "application_id", "create_time"),
    )

    id: Mapped[str] = mapped_column(String(12), primary_key=True)  # d- + 9 upper-case alphanumerics
    application_id: Mapped[str] = mapped_column(String(36), ForeignKey("applications.id", ondelete="CASCADE"))
    deployment_group_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("deployment_groups.id", ondelete="CASCADE"), default=None
    )
    revision_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("revisions.id", ondelete="CASCADE"), index=True, default=None
    )
    # The group's target revision when this deployment was created.
    previous_revision_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("revisions.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(16), index=True)
    creator: Mapped[str] = mapped_column(String(32), default="user")
    compute_platform: Mapped[str] = mapped_column(String(16))
    deployment_config_name: Mapped[str] = mapped_column(String(100), index=True)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    # Request options.
    ignore_application_stop_failures: Mapped[bool] = mapped_column(Boolean, default=False)
    update_outdated_instances_only: Mapped[bool] = mapped_column(Boolean, default=False)
    file_exists_behavior: Mapped[str] = mapped_column(String(16), default="DISALLOW")
    deployment_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    target_instances: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    # In effect for this deployment: its own override, or the group's setting when it was created.
    auto_rollback_configuration: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    override_alarm_configuration: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    ec2_deployment_options: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    # The group's settings when the deployment was created (later group updates do not change them).
    deployment_style: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    blue_green_deployment_configuration: Mapped[dict[str, Any] | None] = mapped_column(
        JSONValue, default=None
    )
    load_balancer_info: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    # Times (epoch seconds).
    create_time: Mapped[float] = mapped_column(Float)
    start_time: Mapped[float | None] = mapped_column(Float, default=None)
    complete_time: Mapped[float | None] = mapped_column(Float, default=None)
    updated_at: Mapped[float] = mapped_column(Float)
    # Outcome.
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    additional_deployment_status_info: Mapped[str | None] = mapped_column(Text, default=None)
    deployment_status_messages: Mapped[list[str] | None] = mapped_column(JSONValue, default=None)
    # Rollback links: the rollback created for this one, the one this rolls back.
    rollback_deployment_id: Mapped[str | None] = mapped_column(String(12), default=None)
    rollback_triggering_deployment_id: Mapped[str | None] = mapped_column(String(12), default=None)
    rollback_message: Mapped[str | None] = mapped_column(Text, default=None)
    # Follow-on deployments for instances that joined mid-deployment (outdatedInstancesStrategy UPDATE).
    auto_update_outdated_instances_root_deployment_id: Mapped[str | None] = mapped_column(
        String(12), default=None
    )
    auto_update_outdated_instances_deployment_ids: Mapped[list[str] | None] = mapped_column(
        JSONValue, default=None
    )
    instance_termination_wait_time_started: Mapped[bool] = mapped_column(Boolean, default=False)
    external_id: Mapped[str | None] = mapped_column(String(255), index=True, default=None)
    # Requests recorded by the API for the engine to act on.
    stop_requested_at: Mapped[float | None] = mapped_column(Float, default=None)
    stop_auto_rollback_enabled: Mapped[bool | None] = mapped_column(Boolean, default=None)
    # Why it is being stopped (migration 0013): None for a StopDeployment (MANUAL_STOP), else the error
    # code and message the Stopped deployment carries (ALARM_ACTIVE and the alarms).
    stop_error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    stop_error_message: Mapped[str | None] = mapped_column(Text, default=None)
    ready_wait_continue_requested_at: Mapped[float | None] = mapped_column(Float, default=None)
    termination_wait_skip_requested_at: Mapped[float | None] = mapped_column(Float, default=None)
    # The engine (migration 0003): when it should next look at this deployment (set "now" whenever
    # something changed; NULL when nothing is waiting), and each lifecycle event's allowed run time.
    engine_due_at: Mapped[float | None] = mapped_column(Float, index=True, default=None)
    event_timeouts: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    # Migration 0005: the instances a deployment the engine created itself (for new instances, or to
    # update outdated ones) is limited to; NULL: every instance the group selects.
    instance_names: Mapped[list[str] | None] = mapped_column(JSONValue, default=None)
    # Migration 0006: how many times in a row the engine's step for this deployment has failed, and the
    # last error (``engine.reconciler``'s retry policy); 0 and NULL once a step succeeds.
    engine_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    engine_last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # Migration 0011: where the deployment is in its strategy (``engine.progress`` reads and writes them).
    phase: Mapped[str | None] = mapped_column(String(64), default=None)
    strategy_state: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)


class DeploymentTarget(Base):
    __tablename__ = "deployment_targets"
    __table_args__ = (
        UniqueConstraint("deployment_id", "target_id"),
        Index("ix_deployment_targets_deployment_id_status", "deployment_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(String(12), ForeignKey("deployments.id", ondelete="CASCADE"))
    target_id: Mapped[str] = mapped_column(String(255))  # instance name; function:alias; cluster:service
    target_type: Mapped[str] = mapped_column(String(32))  # InstanceTarget | LambdaTarget | ECSTarget | ...
    target_arn: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default="Pending")
    instance_label: Mapped[str | None] = mapped_column(String(8), default=None)  # Blue | Green
    last_updated_at: Mapped[float] = mapped_column(Float)
    # Platform-specific members (lambdaFunctionInfo, taskSetsInfo, resourceType ...), wire form.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    # Why the engine failed this target (migration 0003): "agent" (a command was never picked up),
    # "timeout" (an event ran too long), "event" (the agent reported a failure), "stopped" (the
    # deployment was stopped) or "internal" (the deployment ended on an internal error).
    failure_cause: Mapped[str | None] = mapped_column(String(16), default=None)
    # Migration 0005, fixed when the deployment starts: the instance's health in its group then (which
    # orders dispatch), its zone (the zone tag's value, for a zonal configuration), and whether it was
    # Skipped because it already runs the revision (updateOutdatedInstancesOnly).
    instance_health: Mapped[str | None] = mapped_column(String(16), default=None)
    revision_health: Mapped[str | None] = mapped_column(String(16), default=None)
    zone: Mapped[str | None] = mapped_column(String(256), default=None)
    up_to_date: Mapped[bool] = mapped_column(Boolean, default=False)


class LifecycleEventRecord(Base):
    __tablename__ = "lifecycle_events"
    __table_args__ = (UniqueConstraint("deployment_target_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_target_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("deployment_targets.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)  # order within the target's events
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="Pending")
    start_time: Mapped[float | None] = mapped_column(Float, default=None)
    end_time: Mapped[float | None] = mapped_column(Float, default=None)
    diagnostics_error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    diagnostics_script_name: Mapped[str | None] = mapped_column(Text, default=None)
    diagnostics_message: Mapped[str | None] = mapped_column(Text, default=None)
    diagnostics_log_tail: Mapped[str | None] = mapped_column(Text, default=None)
    # Lambda/ECS hooks: the id handed to the hook function, and the status it reported back through
    # PutLifecycleEventHookExecutionStatus (recorded by the API, acted on by the engine).
    hook_execution_id: Mapped[str | None] = mapped_column(String(128), unique=True, default=None)
    hook_reported_status: Mapped[str | None] = mapped_column(String(16), default=None)
    hook_reported_at: Mapped[float | None] = mapped_column(Float, default=None)


class HostCommand(Base):
    __tablename__ = "host_commands"
    __table_args__ = (
        UniqueConstraint("lifecycle_event_id", "attempt"),
        Index("ix_host_commands_host_identifier_status", "host_identifier", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host_command_identifier: Mapped[str] = mapped_column(String(255), unique=True)  # opaque to the agent
    deployment_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    deployment_target_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("deployment_targets.id", ondelete="CASCADE"), index=True
    )
    lifecycle_event_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("lifecycle_events.id", ondelete="CASCADE")
    )
    host_identifier: Mapped[str] = mapped_column(String(2048))  # the instance's ARN
    command_name: Mapped[str] = mapped_column(String(64))  # the lifecycle event, e.g. DownloadBundle
    command_position: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="Pending")  # DeploymentCommandStatus
    nonce: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[float] = mapped_column(Float)
    acknowledged_at: Mapped[float | None] = mapped_column(Float, default=None)
    completed_at: Mapped[float | None] = mapped_column(Float, default=None)
    updated_at: Mapped[float] = mapped_column(Float)
    estimated_completion_time: Mapped[float | None] = mapped_column(Float, default=None)
    # Which hand-out of the command the agent acknowledged first: its own identifier, or a later hand-out's
    # (``HostCommandDelivery``). That one runs; every other hand-out is answered as finished.
    acknowledged_identifier: Mapped[str | None] = mapped_column(String(255), default=None)
    # The first completion's diagnostics envelope (a duplicate completion keeps these).
    diagnostics_format: Mapped[str | None] = mapped_column(String(64), default=None)
    diagnostics_payload: Mapped[str | None] = mapped_column(Text, default=None)
    # Handed to the agent by PollHostCommand (migration 0003): when last, and how often.
    delivered_at: Mapped[float | None] = mapped_column(Float, default=None)
    delivery_count: Mapped[int] = mapped_column(Integer, default=0)


class HostCommandDelivery(Base):
    """A host command handed out again (its first hand-out was never acknowledged: the answer may have been
    lost), under an identifier of its own, so the server can tell which hand-out an agent acknowledges."""

    __tablename__ = "host_command_deliveries"

    identifier: Mapped[str] = mapped_column(String(255), primary_key=True)  # opaque to the agent
    host_command_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("host_commands.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[float] = mapped_column(Float)

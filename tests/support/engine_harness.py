"""An in-process engine on a virtual clock: waits of minutes or hours tested in milliseconds.

``EngineHarness`` runs the ``Reconciler`` against a SQLite database of its own with ``now`` kept by the
test (``advance``), never by the wall clock. ``FakeAgent`` answers host commands the way an agent does
over the command service (deliver, acknowledge, post an update, complete) by calling the engine's own
functions (``engine.host_commands``) in transactions of their own, at the harness's ``now``. Rows are
made directly (an application, an on-premises instance per agent, a tagged group, a deployment), and
``api`` answers what the CodeDeploy API would (GetDeployment, GetDeploymentTarget) at the same ``now``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opendeploy.api.codedeploy.registry import OperationContext, Principal
from opendeploy.engine import host_commands
from opendeploy.engine.host_commands import DeliveredCommand
from opendeploy.engine.reconciler import Reconciler
from opendeploy.settings import EngineSettings, Settings
from opendeploy.store.db import Database
from opendeploy.store.models import (
    Application,
    Deployment,
    DeploymentGroup,
    OnPremisesInstance,
    OnPremisesInstanceTag,
    Revision,
)

ARN = "arn:aws:codedeploy:us-east-1:000000000000:instance/"
START = 1_800_000_000.0  # the virtual clock's first reading (any fixed time will do)


@dataclass
class VirtualClock:
    now: float = START

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class FakeAgent:
    """One instance's agent, answering through the engine's functions at the harness's time."""

    harness: EngineHarness
    name: str
    running: DeliveredCommand | None = None

    @property
    def host(self) -> str:
        return ARN + self.name

    def poll(self) -> DeliveredCommand | None:
        """PollHostCommand: the command handed to this host now, if any."""
        harness = self.harness
        with harness.database.transaction() as session:
            delivery = host_commands.deliver_next(session, self.host, harness.now, harness.settings.engine)
        return delivery.command

    def acknowledge(self, command: DeliveredCommand) -> str:
        harness = self.harness
        with harness.database.transaction() as session:
            row = host_commands.find_command(session, command.host_command_identifier, self.host, lock=True)
            return host_commands.acknowledge(
                session, row, command.host_command_identifier, harness.now, harness.settings.engine
            )

    def update(self, command: DeliveredCommand, estimated_completion_time: float) -> str:
        harness = self.harness
        with harness.database.transaction() as session:
            row = host_commands.find_command(session, command.host_command_identifier, self.host, lock=True)
            return host_commands.record_update(
                session,
                row,
                command.host_command_identifier,
                estimated_completion_time,
                harness.now,
                harness.settings.engine,
            )

    def complete(self, command: DeliveredCommand, status: str = "Succeeded") -> bool:
        harness = self.harness
        with harness.database.transaction() as session:
            row = host_commands.find_command(session, command.host_command_identifier, self.host, lock=True)
            return host_commands.complete(
                session,
                row,
                command.host_command_identifier,
                status,
                None,
                harness.now,
                harness.settings.engine,
            )

    def start(self) -> DeliveredCommand:
        """Poll and acknowledge the next command (it must be there); it runs until ``finish``."""
        command = self.poll()
        assert command is not None, f"no command for {self.name} at {self.harness.now}"
        assert self.acknowledge(command) == "InProgress"
        self.running = command
        return command

    def run_events(self, count: int, status: str = "Succeeded") -> list[str]:
        """Run ``count`` events one after another, each answered at once; their names."""
        names = []
        for _ in range(count):
            command = self.start()
            assert self.complete(command, status)
            names.append(command.command_name)
        return names


@dataclass
class EngineHarness:
    database: Database
    settings: Settings
    clock: VirtualClock = field(default_factory=VirtualClock)

    def __post_init__(self) -> None:
        self.reconciler = Reconciler(self.database, self.settings)

    @classmethod
    def on_sqlite(
        cls, directory: Path, engine: EngineSettings | None = None, **settings: Any
    ) -> EngineHarness:
        """A harness on a new SQLite database in ``directory``; ``settings``: other ``Settings`` fields
        (``traffic``, ``alarms``, ``notifications`` …)."""
        database = Database(f"sqlite:///{directory / 'engine.db'}")
        database.migrate()
        return cls(database, Settings(data_dir=directory, engine=engine or EngineSettings(), **settings))

    def close(self) -> None:
        self.database.dispose()

    @property
    def now(self) -> float:
        return self.clock.now

    def run(self) -> int:
        """One pass of the engine at the current virtual time."""
        return self.reconciler.run_once(now=self.now)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, then let the engine do what is due."""
        self.clock.advance(seconds)
        self.run()

    # --- rows -------------------------------------------------------------------------------------------

    def fleet(
        self, names: list[str], config: str = "CodeDeployDefault.OneAtATime", **group_fields: Any
    ) -> tuple[str, list[FakeAgent]]:
        """A deployment group selecting one new on-premises instance per name, and their agents."""
        tag = uuid.uuid4().hex[:8]
        with self.database.transaction() as session:
            for name in names:
                session.add(
                    OnPremisesInstance(
                        name=name,
                        iam_user_arn=f"arn:aws:iam::000000000000:user/{name}",
                        register_time=self.now,
                    )
                )
                session.flush()
                session.add(OnPremisesInstanceTag(instance_name=name, key="fleet", value=tag))
            application = Application(
                id=str(uuid.uuid4()), name=f"app-{tag}", compute_platform="Server", create_time=self.now
            )
            session.add(application)
            group = DeploymentGroup(
                id=str(uuid.uuid4()),
                application_id=application.id,
                name=f"group-{tag}",
                deployment_config_name=config,
                outdated_instances_strategy="IGNORE",
                termination_hook_enabled=False,
                create_time=self.now,
                update_time=self.now,
                on_premises_instance_tag_filters=[{"Key": "fleet", "Value": tag, "Type": "KEY_AND_VALUE"}],
                deployment_style={
                    "deploymentType": "IN_PLACE",
                    "deploymentOption": "WITHOUT_TRAFFIC_CONTROL",
                },
                **group_fields,
            )
            session.add(group)
            group_id = group.id
        return group_id, [FakeAgent(self, name) for name in names]

    def deploy(self, group_id: str, **fields: Any) -> str:
        """A Created deployment of a new revision to the group, due now; the engine is run once."""
        with self.database.transaction() as session:
            group = session.get(DeploymentGroup, group_id)
            assert group is not None
            revision = Revision(
                id=str(uuid.uuid4()),
                application_id=group.application_id,
                location_key=uuid.uuid4().hex,
                revision_type="S3",
                location={
                    "revisionType": "S3",
                    "s3Location": {"bucket": "b", "key": "k", "bundleType": "zip"},
                },
                register_time=self.now,
            )
            session.add(revision)
            session.flush()
            deployment = Deployment(
                id="d-" + uuid.uuid4().hex[:9].upper(),
                application_id=group.application_id,
                deployment_group_id=group.id,
                revision_id=revision.id,
                status="Created",
                creator="user",
                compute_platform="Server",
                deployment_config_name=group.deployment_config_name,
                ignore_application_stop_failures=False,
                update_outdated_instances_only=False,
                file_exists_behavior="DISALLOW",
                deployment_style=group.deployment_style,
                create_time=self.now,
                updated_at=self.now,
                instance_termination_wait_time_started=False,
                engine_due_at=self.now,
                **fields,
            )
            session.add(deployment)
            deployment_id = deployment.id
        self.run()
        return deployment_id

    # --- what the API answers ---------------------------------------------------------------------------

    def api(self, operation: Any, **params: Any) -> dict[str, Any]:
        """Call a CodeDeploy API operation's handler (e.g. ``get_deployment``) at the virtual time."""
        with self.database.transaction(write=False) as session:
            context = OperationContext(
                session=session,
                settings=self.settings,
                principal=Principal("AKIDEXAMPLE", "arn:aws:iam::000000000000:root", is_admin=True),
                now=self.now,
                operation=operation.__name__,
            )
            return operation(context, params)

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        from opendeploy.api.codedeploy.deployments import get_deployment

        return self.api(get_deployment, deploymentId=deployment_id)["deploymentInfo"]

    def events(self, deployment_id: str, name: str) -> list[tuple[str, str]]:
        """The instance's lifecycle events as GetDeploymentTarget lists them: (name, status), in order."""
        return [
            (event["lifecycleEventName"], event["status"])
            for event in self.instance(deployment_id, name)["lifecycleEvents"]
        ]

    def instance(self, deployment_id: str, name: str) -> dict[str, Any]:
        from opendeploy.api.codedeploy.deployment_targets import get_deployment_target

        target = self.api(get_deployment_target, deploymentId=deployment_id, targetId=name)
        return target["deploymentTarget"]["instanceTarget"]

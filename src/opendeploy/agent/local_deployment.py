"""Local deployments: run a bundle on this host through the agent's own command executor, no server.

This is the equivalent of AWS's ``codedeploy-local`` (guide L19806–L20082): it checks its arguments,
builds the same deployment specification a server would send, and runs the lifecycle events one at a
time with ``execute_command`` — exactly what the agent daemon does for each host command.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from opendeploy.agent.agent_config import AgentConfig
from opendeploy.agent.bundle import find_appspec
from opendeploy.agent.command_executor import Observer, execute_command
from opendeploy.agent.deployment_root import SCRIPTS_LOG, DeploymentRoot
from opendeploy.agent.deployment_specification import (
    BundleType,
    DeploymentSpecification,
    local_specification_document,
    parse_deployment_specification,
)
from opendeploy.agent.diagnostics import Diagnostics
from opendeploy.appspec.lifecycle_events import (
    AFTER_BLOCK_TRAFFIC,
    APPLICATION_STOP,
    BEFORE_BLOCK_TRAFFIC,
    BEFORE_INSTALL,
    DOWNLOAD_BUNDLE,
    INSTALL,
    SERVER_ORDERED_EVENTS,
)
from opendeploy.appspec.model import FileExistsBehavior
from opendeploy.domain.ids import new_deployment_id

DEFAULT_DEPLOYMENT_GROUP_ID = "default-local-deployment-group"
DEFAULT_DEPLOYMENT_GROUP_NAME = "LocalFleet"

_MAY_PRECEDE_DOWNLOAD = frozenset({BEFORE_BLOCK_TRAFFIC, AFTER_BLOCK_TRAFFIC, APPLICATION_STOP})
_MAY_PRECEDE_INSTALL = _MAY_PRECEDE_DOWNLOAD | {DOWNLOAD_BUNDLE, BEFORE_INSTALL}


class LocalDeploymentError(ValueError):
    """The local deployment's arguments are unusable; nothing has been run."""


def plan_events(events: Sequence[str] | None) -> tuple[str, ...]:
    """The events to run, in order: the default list, or the given one with DownloadBundle and Install.

    Given events replace the default list (guide L20004–L20008). DownloadBundle and Install run before
    all of them unless listed; when listed, only events that normally precede them may come first.
    """
    if not events:
        return SERVER_ORDERED_EVENTS
    planned = [e.strip() for e in events if e.strip()]
    duplicates = sorted({e for e in planned if planned.count(e) > 1})
    if duplicates:
        raise LocalDeploymentError(f"--events lists {', '.join(duplicates)} more than once")
    if DOWNLOAD_BUNDLE not in planned:
        planned.insert(0, DOWNLOAD_BUNDLE)
    if INSTALL not in planned:
        planned.insert(planned.index(DOWNLOAD_BUNDLE) + 1, INSTALL)
    for event in planned[: planned.index(DOWNLOAD_BUNDLE)]:
        if event not in _MAY_PRECEDE_DOWNLOAD:
            raise LocalDeploymentError(
                f"--events: {event} cannot run before DownloadBundle; only "
                f"{', '.join(sorted(_MAY_PRECEDE_DOWNLOAD))} may"
            )
    for event in planned[: planned.index(INSTALL)]:
        if event not in _MAY_PRECEDE_INSTALL:
            raise LocalDeploymentError(
                f"--events: {event} cannot run before Install; only "
                f"{', '.join(sorted(_MAY_PRECEDE_INSTALL))} may"
            )
    return tuple(planned)


def check_bundle(location: str, bundle_type: BundleType, appspec_filename: str) -> Path:
    """The bundle's absolute path, after checking it exists and is what ``--type`` says."""
    if location.startswith(("s3://", "https://", "http://")):
        raise LocalDeploymentError(
            f"--bundle-location {location}: only bundles on this host's disk can be deployed locally "
            f"(S3 and GitHub locations are not supported yet)"
        )
    path = Path(location).expanduser().absolute()
    if not path.exists():
        raise LocalDeploymentError(f"--bundle-location {location} does not exist")
    if bundle_type == BundleType.DIRECTORY:
        if not path.is_dir():
            raise LocalDeploymentError(
                f"--bundle-location {location} is a file; give --type tgz, tar or zip for an archive"
            )
        if find_appspec(path, appspec_filename) is None:
            raise LocalDeploymentError(
                f"the bundle directory {path} has no {appspec_filename} "
                f"(nor appspec.yaml / appspec.yml) at its root"
            )
    elif not path.is_file():
        raise LocalDeploymentError(
            f"--bundle-location {location} is a directory, not a {bundle_type.value} file; "
            f"use --type directory"
        )
    return path


def build_specification(
    *,
    location: Path,
    bundle_type: BundleType,
    deployment_group_id: str,
    deployment_group_name: str,
    application_name: str | None,
    file_exists_behavior: FileExistsBehavior | None,
    appspec_filename: str,
    events: Sequence[str],
) -> DeploymentSpecification:
    """The specification a server would send for this local deployment (``d-XXXXXXXXX-local``)."""
    all_events = tuple(SERVER_ORDERED_EVENTS) + tuple(e for e in events if e not in SERVER_ORDERED_EVENTS)
    document = local_specification_document(
        deployment_id=f"{new_deployment_id()}-local",
        deployment_group_id=deployment_group_id,
        deployment_group_name=deployment_group_name,
        application_name=application_name or str(location),
        location=str(location),
        bundle_type=bundle_type,
        file_exists_behavior=file_exists_behavior,
        appspec_filename=appspec_filename,
        all_possible_lifecycle_events=all_events,
    )
    return parse_deployment_specification(document)


@dataclass(frozen=True)
class EventResult:
    event: str
    diagnostics: Diagnostics
    seconds: float


def deployment_folder(spec: DeploymentSpecification, config: AgentConfig) -> Path:
    root = DeploymentRoot(config.root_dir.absolute())
    return root.deployment_dir(spec.deployment_group_id, spec.deployment_id)


def scripts_log_path(spec: DeploymentSpecification, config: AgentConfig) -> Path:
    return deployment_folder(spec, config) / SCRIPTS_LOG


def run_events(
    spec: DeploymentSpecification,
    events: Sequence[str],
    config: AgentConfig,
    *,
    on_start: Callable[[str], None] | None = None,
    on_end: Callable[[EventResult], None] | None = None,
    observer: Observer | None = None,
) -> list[EventResult]:
    """Run the events in order, one ``execute_command`` each, stopping at the first that fails."""
    results: list[EventResult] = []
    for event in events:
        if on_start is not None:
            on_start(event)
        started = time.monotonic()
        diagnostics = execute_command(event, spec, config, observer=observer)
        result = EventResult(event, diagnostics, time.monotonic() - started)
        results.append(result)
        if on_end is not None:
            on_end(result)
        if not diagnostics.succeeded:
            break
    return results

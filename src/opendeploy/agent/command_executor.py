"""Run one lifecycle event of one deployment on this host: the host side's single entry point.

``execute_command(command_name, spec, config)`` runs DownloadBundle, Install or a hook event (ApplicationStop,
BeforeInstall, …) for the deployment the specification describes and returns the event's diagnostics.
The agent daemon calls it once per host command; ``opendeploy local`` calls it once per event of its
list. Both get exactly the same behaviour.

A deployment's AppSpec is read at nearly every event (and again for each acknowledgement's no-op check),
so the parsed AppSpec is kept in a small cache keyed by the file's identity (path, inode, size,
modification time) and the deployment's custom events: each file is parsed once, and a changed file is
read again. An AppSpec bigger than ``:appspec_max_size:`` is refused before it is read.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opendeploy.agent.agent_config import AgentConfig, format_size
from opendeploy.agent.bundle import appspec_not_found_message, download_bundle, find_appspec
from opendeploy.agent.bundle_extraction import CONFIG_FILE, BundleError, ExtractionLimits
from opendeploy.agent.deployment_root import ARCHIVE, SCRIPTS_LOG, DeploymentRoot
from opendeploy.agent.deployment_specification import DeploymentSpecification
from opendeploy.agent.diagnostics import Diagnostics
from opendeploy.agent.hook_runner import HookContext, run_hook
from opendeploy.agent.installer import InstallError, install
from opendeploy.agent.retries import Abandoned
from opendeploy.agent.script_log import EventLog
from opendeploy.appspec import APPSPEC_SIZE_LIMIT, AppSpecError, ServerAppSpec, load_server_appspec
from opendeploy.appspec.lifecycle_events import (
    AFTER_BLOCK_TRAFFIC,
    APPLICATION_STOP,
    BEFORE_BLOCK_TRAFFIC,
    DOWNLOAD_BUNDLE,
    INSTALL,
    SERVER_ORDERED_EVENTS,
    SERVER_SCRIPTABLE_EVENTS,
    AppSpecSource,
    appspec_source,
)

# Events that run before the new revision is on the host, and so from an earlier revision's archive.
_PRE_DOWNLOAD_EVENTS = frozenset({APPLICATION_STOP, BEFORE_BLOCK_TRAFFIC, AFTER_BLOCK_TRAFFIC})

Observer = Callable[[str], None]
"""Receives each script log entry (``[stdout]…``, ``Script - …``) as it is written."""


class CommandError(Exception):
    """The command cannot run; reported as UnknownError with this message."""


@dataclass(frozen=True)
class _HookSource:
    """Where an event's scripts come from: a deployment directory holding a deployment archive."""

    deployment_dir: Path

    @property
    def archive(self) -> Path:
        return self.deployment_dir / ARCHIVE


def _deployment_root(config: AgentConfig) -> DeploymentRoot:
    return DeploymentRoot(Path(os.path.abspath(config.root_dir)))


def _custom_events(spec: DeploymentSpecification) -> frozenset[str]:
    if spec.all_possible_lifecycle_events is None:
        return frozenset()
    return frozenset(spec.all_possible_lifecycle_events) - set(SERVER_ORDERED_EVENTS)


_AppSpecKey = tuple[str, int, int, int, int, frozenset[str]]
_PARSED_KEPT = 32  # AppSpecs of this many recent revisions stay parsed; each is a few kilobytes
_parsed: OrderedDict[_AppSpecKey, ServerAppSpec] = OrderedDict()
_parsed_lock = threading.Lock()  # several deployment groups' commands run at once


def _too_big_message(path: Path, size: str, limit: int) -> str:
    return (
        f"The AppSpec file {path} is {size}, more than the limit of {format_size(limit)}; an AppSpec file is "
        f"normally a few kilobytes. Raise :appspec_max_size: in {CONFIG_FILE} if it really must be this big"
    )


def _check_appspec_size(path: Path, limit: int) -> None:
    size = path.stat().st_size
    if size > limit:
        raise CommandError(_too_big_message(path, format_size(size), limit))


def _parse_appspec(path: Path, custom_events: frozenset[str], limit: int) -> ServerAppSpec:
    """The AppSpec at ``path``, parsed once for each version of the file (see the module's docstring)."""
    with open(path, "rb") as handle:
        st = os.fstat(handle.fileno())
        if st.st_size > limit:
            raise CommandError(_too_big_message(path, format_size(st.st_size), limit))
        key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, custom_events)
        with _parsed_lock:
            cached = _parsed.get(key)
            if cached is not None:
                _parsed.move_to_end(key)
                return cached
        data = handle.read(limit + 1)  # the file may have grown since fstat
    if len(data) > limit:
        raise CommandError(_too_big_message(path, f"more than {format_size(limit)}", limit))
    appspec = load_server_appspec(
        data.decode("utf-8", errors="replace"), path.name, custom_events=custom_events
    )
    with _parsed_lock:
        _parsed[key] = appspec
        while len(_parsed) > _PARSED_KEPT:
            _parsed.popitem(last=False)
    return appspec


def load_appspec(
    archive: Path, spec: DeploymentSpecification, *, max_size: int = APPSPEC_SIZE_LIMIT
) -> ServerAppSpec:
    """The AppSpec of an unpacked revision, parsed and checked; it must be for Linux and at most
    ``max_size`` bytes."""
    path = find_appspec(archive, spec.appspec_filename)
    if path is None:
        raise CommandError(appspec_not_found_message(archive, spec.appspec_filename))
    appspec = _parse_appspec(path, _custom_events(spec), max_size)
    if appspec.os != "linux":
        raise CommandError(
            f"{path.name}: os is {appspec.os!r}, but this instance runs Linux; "
            f"the deployment targets the wrong operating system"
        )
    return appspec


def _hook_source(
    command_name: str, spec: DeploymentSpecification, root: DeploymentRoot
) -> _HookSource | None:
    """The deployment whose archive holds this event's scripts, or None when there is none (a no-op)."""
    current = root.deployment_dir(spec.deployment_group_id, spec.deployment_id)
    source = appspec_source(
        command_name, deployment_type=spec.deployment_type, deployment_creator=spec.deployment_creator
    )
    if source == AppSpecSource.NEW:
        return _HookSource(current)
    # Once this deployment's own revision is on the host (events run out of the usual order), the
    # stop and block-traffic events use it, as AWS's agent does.
    if command_name in _PRE_DOWNLOAD_EVENTS and (current / ARCHIVE).is_dir():
        return _HookSource(current)
    if source == AppSpecSource.LAST_SUCCESSFUL:
        previous = root.last_successful_install(spec.deployment_group_id)
    else:
        previous = root.most_recent_install(spec.deployment_group_id)
    if previous is None or not (previous / ARCHIVE).is_dir():
        return None  # first deployment to this instance (or its archive is gone): nothing to run
    return _HookSource(previous)


def _check_command(command_name: str, spec: DeploymentSpecification) -> None:
    if command_name in (DOWNLOAD_BUNDLE, INSTALL) or command_name in SERVER_SCRIPTABLE_EVENTS:
        return
    if command_name in _custom_events(spec):
        return
    raise CommandError(f"Unsupported command type: {command_name}.")


def _scripts_log(root: DeploymentRoot, spec: DeploymentSpecification) -> Path:
    return root.deployment_dir(spec.deployment_group_id, spec.deployment_id) / SCRIPTS_LOG


def _run_hook_event(
    command_name: str,
    spec: DeploymentSpecification,
    config: AgentConfig,
    root: DeploymentRoot,
    observer: Observer | None,
) -> Diagnostics:
    source = _hook_source(command_name, spec, root)
    if source is None:
        return Diagnostics.success(noop=True)
    appspec = load_appspec(source.archive, spec, max_size=config.appspec_max_size)
    scripts = appspec.scripts_for(command_name)
    if not scripts:
        return Diagnostics.success(noop=True)
    environment = dict(os.environ)
    environment.update(
        {
            "LIFECYCLE_EVENT": command_name,
            "DEPLOYMENT_ID": spec.deployment_id,
            "APPLICATION_NAME": spec.application_name,
            "DEPLOYMENT_GROUP_NAME": spec.deployment_group_name,
            "DEPLOYMENT_GROUP_ID": spec.deployment_group_id,
        }
    )
    for name in ("BUNDLE_BUCKET", "BUNDLE_KEY", "BUNDLE_VERSION", "BUNDLE_ETAG", "BUNDLE_COMMIT"):
        environment.pop(name, None)  # only this revision's values, never the agent's own
    environment.update(spec.bundle_environment())
    context = HookContext(command_name, source.archive, environment, config.hook_kill_grace_seconds)
    deployments_log = root.deployments_log if config.enable_deployments_log else None
    with EventLog(_scripts_log(root, spec), deployments_log, spec.deployment_id, observer) as log:
        return run_hook(scripts, context, log)


def _download_bundle(spec: DeploymentSpecification, config: AgentConfig, root: DeploymentRoot) -> Diagnostics:
    deployment_dir = root.deployment_dir(spec.deployment_group_id, spec.deployment_id)
    root.prune_revisions(spec.deployment_group_id, spec.deployment_id, config.retained_revisions)
    limits = ExtractionLimits(config.archive_max_extraction_size, config.extraction_free_space_reserve)
    archive = download_bundle(spec, deployment_dir, limits=limits)
    appspec = find_appspec(archive, spec.appspec_filename)
    try:
        if appspec is not None:
            # Refused here, not at the first event that reads it: a revision that can never install
            # fails at once, and leaves no archive for later deployments' stop scripts to run from.
            _check_appspec_size(appspec, config.appspec_max_size)
    except CommandError:
        shutil.rmtree(archive, ignore_errors=True)
        raise
    root.mark_most_recent_install(spec.deployment_group_id, deployment_dir)
    return Diagnostics.success()


def _install(
    spec: DeploymentSpecification, config: AgentConfig, root: DeploymentRoot, observer: Observer | None
) -> Diagnostics:
    deployment_dir = root.deployment_dir(spec.deployment_group_id, spec.deployment_id)
    archive = deployment_dir / ARCHIVE
    if not archive.is_dir():
        raise CommandError(f"there is no deployment archive at {archive}: DownloadBundle has not run")
    appspec = load_appspec(archive, spec, max_size=config.appspec_max_size)
    undefined = sorted(_custom_events(spec) - set(appspec.hooks))
    if undefined:
        # A custom event (codedeploy-local --events) that the AppSpec does not define is most likely a typo.
        raise CommandError(
            f"You specified a lifecycle event which is not a default one and doesn't exist in your "
            f"{appspec.source_name} file: {', '.join(undefined)}"
        )
    warn = (lambda message: observer(f"[warning]{message}")) if observer is not None else None
    install(appspec, archive, root, spec.deployment_group_id, spec.file_exists_behavior, warn=warn)
    root.mark_last_successful_install(spec.deployment_group_id, deployment_dir)
    return Diagnostics.success()


def execute_command(
    command_name: str,
    spec: DeploymentSpecification,
    config: AgentConfig,
    *,
    observer: Observer | None = None,
) -> Diagnostics:
    """Run lifecycle event ``command_name`` of the deployment ``spec`` describes; never raises for a
    failure of the event itself, which is reported in the returned diagnostics.

    Raises ``retries.Abandoned`` when the agent is stopping and a download that kept failing was given
    up: the event did not fail, it did not finish (a restarted agent reports it, as for any interrupted
    event).
    """
    root = _deployment_root(config)
    try:
        _check_command(command_name, spec)
        deployment_dir = root.deployment_dir(spec.deployment_group_id, spec.deployment_id)
        deployment_dir.mkdir(parents=True, exist_ok=True)
        with root.group_lock(spec.deployment_group_id):
            if command_name == DOWNLOAD_BUNDLE:
                return _download_bundle(spec, config, root)
            if command_name == INSTALL:
                return _install(spec, config, root, observer)
            return _run_hook_event(command_name, spec, config, root, observer)
    except Abandoned:
        raise
    except (CommandError, BundleError, InstallError, AppSpecError) as exc:
        return Diagnostics.unknown_error(str(exc))
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        return Diagnostics.unknown_error(f"{type(exc).__name__}:{where} {exc.strerror or exc}")
    except Exception as exc:  # the event fails; the agent goes on
        return Diagnostics.unknown_error(f"{type(exc).__name__}: {exc}")


def is_command_noop(command_name: str, spec: DeploymentSpecification, config: AgentConfig) -> bool:
    """True when the event has nothing to do on this host (no scripts for it), for the acknowledgement."""
    if command_name in (DOWNLOAD_BUNDLE, INSTALL):
        return False
    try:
        _check_command(command_name, spec)
    except CommandError:
        return True
    root = _deployment_root(config)
    source = _hook_source(command_name, spec, root)
    if source is None:
        return True
    try:
        appspec = load_appspec(source.archive, spec, max_size=config.appspec_max_size)
    except (CommandError, AppSpecError, OSError):
        return False  # let execution report the problem
    return not appspec.scripts_for(command_name)

"""``opendeploy local``: deploy a bundle on this host, without a server, like AWS's ``codedeploy-local``.

Same flags and defaults as codedeploy-local (guide L19943–L20030). It shows each lifecycle event as it
runs, ends with a summary, and on failure exits 1 showing the event, the script, the message and the
script log tail.
"""

from __future__ import annotations

import datetime
import os
import signal
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from opendeploy.agent.agent_config import AgentConfig, AgentConfigError, load_agent_config
from opendeploy.agent.deployment_specification import BundleType
from opendeploy.agent.local_deployment import (
    DEFAULT_DEPLOYMENT_GROUP_ID,
    DEFAULT_DEPLOYMENT_GROUP_NAME,
    EventResult,
    LocalDeploymentError,
    build_specification,
    check_bundle,
    deployment_folder,
    plan_events,
    run_events,
    scripts_log_path,
)
from opendeploy.appspec.model import FileExistsBehavior


class _LocalLog:
    """``<log_dir>/opendeploy-local.log``: one line per event, for after the terminal is gone."""

    def __init__(self, config: AgentConfig, console: Console) -> None:
        self.path = config.log_dir / "opendeploy-local.log"
        try:
            config.log_dir.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        except OSError as exc:
            console.print(f"[yellow]warning:[/] cannot write {escape(str(self.path))}: {exc.strerror}")
            self._handle = None

    def write(self, text: str) -> None:
        if self._handle is not None:
            self._handle.write(f"{datetime.datetime.now():%Y-%m-%d %H:%M:%S} {text}\n")
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _fail(console: Console, message: str) -> None:
    console.print(f"[bold red]ERROR:[/] {escape(message)}")
    sys.exit(1)


def _outcome_text(result: EventResult) -> str:
    d = result.diagnostics
    if d.succeeded:
        return "[dim]skipped: nothing to run[/]" if d.noop else "[green]succeeded[/]"
    return f"[red]failed: {d.display_name}[/]"


@click.command("local")
@click.option(
    "-l",
    "--bundle-location",
    default=None,
    help="The bundle: a directory or a tgz, tar or zip file. Default: the current directory.",
)
@click.option(
    "-t",
    "--type",
    "bundle_type",
    type=click.Choice([t.value for t in BundleType]),
    default=None,
    help="The bundle's type: tgz, tar, zip or directory. Default: directory.",
)
@click.option(
    "-b",
    "--file-exists-behavior",
    type=click.Choice([b.value for b in FileExistsBehavior], case_sensitive=False),
    default=None,
    help="What to do with files already at a destination: DISALLOW (default), OVERWRITE or RETAIN. "
    "The AppSpec's file_exists_behavior wins over this.",
)
@click.option(
    "-g",
    "--deployment-group",
    "deployment_group_id",
    default=DEFAULT_DEPLOYMENT_GROUP_ID,
    show_default=True,
    help="The deployment group id: the folder under the deployment root that holds this group's deployments.",
)
@click.option(
    "-d",
    "--deployment-group-name",
    default=DEFAULT_DEPLOYMENT_GROUP_NAME,
    show_default=True,
    help="The deployment group name hook scripts see as DEPLOYMENT_GROUP_NAME.",
)
@click.option(
    "-a",
    "--application-name",
    default=None,
    help="The application name hook scripts see as APPLICATION_NAME. Default: the bundle location.",
)
@click.option(
    "-e",
    "--events",
    default=None,
    help="Comma-separated lifecycle events to run instead of the default list; DownloadBundle and "
    "Install run first unless listed. Events the AppSpec defines beyond the usual ones are allowed.",
)
@click.option(
    "-c",
    "--agent-configuration-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The agent configuration file (:root_dir:, :log_dir:, :max_revisions: …). "
    "Default: /etc/codedeploy-agent/conf/codedeployagent.yml if it exists.",
)
@click.option(
    "-A",
    "--appspec-filename",
    default="appspec.yml",
    show_default=True,
    help="The AppSpec file's name at the bundle root (appspec.yaml is also looked for).",
)
def local(
    bundle_location: str | None,
    bundle_type: str | None,
    file_exists_behavior: str | None,
    deployment_group_id: str,
    deployment_group_name: str,
    application_name: str | None,
    events: str | None,
    agent_configuration_file: Path | None,
    appspec_filename: str,
) -> None:
    """Deploy a bundle on this host through the agent's install engine, with no server."""
    console = Console(highlight=False, soft_wrap=True)
    try:
        config = load_agent_config(agent_configuration_file)
    except AgentConfigError as exc:
        _fail(console, str(exc))
    for warning in config.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")

    location = bundle_location or os.getcwd()
    if bundle_location is not None and bundle_type is None and Path(location).is_file():
        _fail(console, "--type is required with an archive bundle: tgz, tar or zip")
    kind = BundleType(bundle_type or BundleType.DIRECTORY.value)
    if "/" in deployment_group_id or deployment_group_id in {"", ".", ".."}:
        _fail(console, f"--deployment-group {deployment_group_id!r} must be a single folder name")
    try:
        event_list = plan_events(events.split(",") if events else None)
        bundle = check_bundle(location, kind, appspec_filename)
        spec = build_specification(
            location=bundle,
            bundle_type=kind,
            deployment_group_id=deployment_group_id,
            deployment_group_name=deployment_group_name,
            application_name=application_name,
            file_exists_behavior=FileExistsBehavior(file_exists_behavior.upper())
            if file_exists_behavior
            else None,
            appspec_filename=appspec_filename,
            events=event_list,
        )
    except LocalDeploymentError as exc:
        _fail(console, str(exc))

    folder = deployment_folder(spec, config)
    log = _LocalLog(config, console)
    console.print(f"Starting to execute deployment from within folder [bold]{escape(str(folder))}[/]")
    log.write(f"[{spec.deployment_id}] starting local deployment of {bundle} ({kind.value}) in {folder}")
    status = None

    def on_start(event: str) -> None:
        nonlocal status
        if console.is_terminal:
            status = console.status(f"{event} …")
            status.start()

    def on_end(result: EventResult) -> None:
        nonlocal status
        if status is not None:
            status.stop()
            status = None
        console.print(f"  {result.event:<20} {_outcome_text(result)}  [dim]{result.seconds:.2f}s[/]")
        d = result.diagnostics
        log.write(f"[{spec.deployment_id}] {result.event}: {d.display_name} {d.message}")

    def observer(entry: str) -> None:
        if entry.startswith("Script - "):
            line = f"    [dim]{escape(entry)}[/]"
            (status.console if status is not None else console).print(line)
        elif entry.startswith("[warning]"):
            console.print(f"    [yellow]warning:[/] {escape(entry.removeprefix('[warning]'))}")

    # SIGTERM stops the deployment the way Ctrl-C does: the running script's process group goes too.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        results = run_events(spec, event_list, config, on_start=on_start, on_end=on_end, observer=observer)
    except KeyboardInterrupt:
        # The running script's process group has been ended by the hook runner on the way out.
        log.write(f"[{spec.deployment_id}] interrupted")
        console.print("[bold red]Interrupted[/]: the local deployment was stopped")
        sys.exit(130)
    finally:
        if status is not None:
            status.stop()
        log.close()

    ran = {r.event for r in results}
    noops = sum(1 for r in results if r.diagnostics.noop)
    succeeded = sum(1 for r in results if r.diagnostics.succeeded) - noops
    failures = sum(1 for r in results if not r.diagnostics.succeeded)
    not_run = [e for e in event_list if e not in ran]
    console.print(
        f"\nSummary: {len(event_list)} lifecycle events — {succeeded} succeeded, {noops} had nothing to run, "
        f"{failures} failed, {len(not_run)} not run — in {sum(r.seconds for r in results):.2f}s"
    )
    scripts_log = scripts_log_path(spec, config)
    failed = results[-1] if results and not results[-1].diagnostics.succeeded else None
    if failed is None:
        console.print(f"See the deployment log at {escape(str(scripts_log))} for more details")
        console.print("[bold green]AppSpec file valid. Local deployment successful[/]")
        return
    d = failed.diagnostics
    details = Table.grid(padding=(0, 2))
    details.add_row("Lifecycle event", failed.event)
    details.add_row("Error code", d.display_name)
    if d.script_name:
        details.add_row("Script", escape(d.script_name))
    details.add_row("Message", escape(d.message))
    console.print(Panel(details, title="[bold red]Local deployment failed[/]", border_style="red"))
    if d.log:
        console.print("[bold]Log tail:[/]")
        console.print(escape(d.log.rstrip("\n")), soft_wrap=True)
    if d.script_name:
        archive = folder / "deployment-archive" / d.script_name.lstrip("/")
        console.print(
            f"Your local deployment failed while trying to execute your script at {escape(str(archive))}"
        )
    console.print(f"See the deployment log at {escape(str(scripts_log))} for more details")
    sys.exit(1)

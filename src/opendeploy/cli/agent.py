"""``opendeploy agent``: run this host's agent in the foreground (systemd ``Type=simple``).

It reads the agent configuration (``--config``, default ``/etc/codedeploy-agent/conf/codedeployagent.yml``
as AWS's agent), polls the server named there, and runs each lifecycle event the server sends. Stop it
with SIGTERM: running events finish first (up to ``:kill_agent_max_wait_time_seconds:``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from opendeploy.agent.agent_config import DEFAULT_CONFIG_FILE, AgentConfigError, load_agent_config


@click.command("agent")
@click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OPENDEPLOY_AGENT_CONFIG",
    default=None,
    help=f"The agent configuration file [default: {DEFAULT_CONFIG_FILE}].",
)
@click.option(
    "--log-to-stderr/--no-log-to-stderr",
    default=None,
    help="Also write the log to stderr [default: when stderr is a terminal].",
)
def agent(config_file: Path | None, log_to_stderr: bool | None) -> None:
    """Run the host agent: poll the server and run the lifecycle events it sends."""
    from opendeploy.agent.daemon import AgentStartError, run_agent

    if config_file is None and not DEFAULT_CONFIG_FILE.is_file():
        raise click.ClickException(
            f"no agent configuration at {DEFAULT_CONFIG_FILE}: register this host with "
            f"'opendeploy register' or give --config"
        )
    try:
        config = load_agent_config(config_file)
    except AgentConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if log_to_stderr is None:
        log_to_stderr = sys.stderr.isatty()
    try:
        status = run_agent(config, log_stream=sys.stderr if log_to_stderr else None)
    except AgentStartError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.stderr.flush()
        os._exit(2)
    sys.stdout.flush()
    sys.stderr.flush()
    # Worker threads may still sit in a hook script or a long poll: they must not hold the exit.
    os._exit(status)

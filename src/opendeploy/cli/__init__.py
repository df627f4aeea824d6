"""The ``opendeploy`` command line: one click group whose subcommands load lazily.

Each subcommand lives in its own module; importing them lazily keeps ``opendeploy agent`` from
paying for the server's imports and the other way round.
"""

from __future__ import annotations

import importlib

import click

from opendeploy import __version__

# command name -> "module:attribute"; each module owns one command (or a small group).
COMMANDS: dict[str, str] = {
    "local": "opendeploy.cli.local:local",
    "server": "opendeploy.cli.server:server",
    "init": "opendeploy.cli.init:init",
    "agent": "opendeploy.cli.agent:agent",
    "register": "opendeploy.cli.register:register",
    "deregister": "opendeploy.cli.register:deregister",
    "github-token": "opendeploy.cli.github_token:github_token",
    "push": "opendeploy.cli.push:push",
    "targets": "opendeploy.cli.targets:targets",
    "watch": "opendeploy.cli.watch:watch",
    "deploy": "opendeploy.cli.deploy:deploy",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="opendeploy")
def main() -> None:
    """opendeploy: deploy with CodeDeploy's AppSpec files, API and agent protocol, self-hosted."""

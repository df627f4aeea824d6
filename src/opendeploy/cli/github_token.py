"""``opendeploy github-token add NAME``: store a GitHub token under a name (the API only lists and
deletes them, as CodeDeploy's does; AWS adds them through the console's "Connect to GitHub")."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from opendeploy.cli.init import data_options, default_data_dir
from opendeploy.settings import Settings
from opendeploy.store.db import Database
from opendeploy.store.github_tokens import TokenLimitExceeded, save_token
from opendeploy.store.secrets import SecretBox


@click.group("github-token")
def github_token() -> None:
    """Manage the GitHub tokens the server uses to fetch GitHub revisions."""


@github_token.command("add")
@click.argument("name")
@data_options
@click.option(
    "--token-file",
    type=click.File("r"),
    default="-",
    show_default=True,
    help="File holding the token ('-' reads standard input).",
)
def add(
    name: str,
    data_dir: Path | None,
    database_url: str | None,
    region: str,
    account_id: str,
    token_file: click.utils.LazyFile,
) -> None:
    """Store a GitHub token under NAME (replacing a token of that name)."""
    token = token_file.read().strip()
    if not token:
        raise click.UsageError("the token is empty")
    if not 1 <= len(name) <= 100:
        raise click.UsageError("NAME must be 1 to 100 characters")
    settings = Settings(
        data_dir=data_dir or default_data_dir(),
        database_url=database_url,
        region=region,
        account_id=account_id,
    )
    database = Database(settings.effective_database_url)
    try:
        database.migrate()
        box = SecretBox.load_or_create(settings.data_dir)
        with database.transaction() as session:
            created = save_token(
                session, box, name, token, now=time.time(), limit=settings.quotas.github_tokens_per_account
            )
    except TokenLimitExceeded as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    finally:
        database.dispose()
    click.echo(f"GitHub token '{name}' {'stored' if created else 'replaced'}.")

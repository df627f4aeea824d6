"""``opendeploy init``: create an administrator access key and an AWS CLI/SDK profile for it.

The secret is printed once and stored only encrypted. The profile (default ``opendeploy``) names the
server's region and its endpoint for ``codedeploy`` and ``s3``. ``opendeploy server`` does the same on
its first start when no administrator key exists yet.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from opendeploy.cli.aws_profile import ProfileFiles, default_files, write_profile
from opendeploy.settings import Settings
from opendeploy.store.access_keys import NewAccessKey, create_access_key
from opendeploy.store.db import Database
from opendeploy.store.secrets import SecretBox

DEFAULT_PROFILE = "opendeploy"
DEFAULT_PORT = 8480


def default_data_dir() -> Path:
    return Path(os.environ.get("OPENDEPLOY_DATA_DIR") or Path.home() / ".opendeploy").expanduser()


def endpoint_for(host: str, port: int) -> str:
    """The URL clients on this machine use to reach a server listening on ``host``."""
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def admin_principal_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:user/opendeploy-admin"


def bootstrap_admin(
    database: Database,
    secrets: SecretBox,
    settings: Settings,
    *,
    endpoint_url: str,
    files: ProfileFiles,
    profile: str = DEFAULT_PROFILE,
) -> NewAccessKey:
    """Store a new administrator key and write the profile that uses it."""
    with database.transaction() as session:
        key = create_access_key(
            session,
            secrets,
            principal_arn=admin_principal_arn(settings.account_id),
            is_admin=True,
            now=time.time(),
            description="administrator (opendeploy init)",
        )
    write_profile(
        files,
        profile=profile,
        region=settings.region,
        endpoint_url=endpoint_url,
        access_key_id=key.access_key_id,
        secret_access_key=key.secret_access_key,
    )
    return key


def data_options(command: click.Command) -> click.Command:
    """The options that locate the server's data, shared by ``server`` and ``init``."""
    options = [
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Where the server keeps its data [default: $OPENDEPLOY_DATA_DIR or ~/.opendeploy].",
        ),
        click.option(
            "--database-url",
            envvar="OPENDEPLOY_DATABASE_URL",
            default=None,
            help="postgresql://… to use PostgreSQL [default: SQLite in the data directory].",
        ),
        click.option("--region", envvar="OPENDEPLOY_REGION", default="us-east-1", show_default=True),
        click.option(
            "--account-id", envvar="OPENDEPLOY_ACCOUNT_ID", default="000000000000", show_default=True
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def profile_options(command: click.Command) -> click.Command:
    options = [
        click.option("--profile", default=DEFAULT_PROFILE, show_default=True, help="AWS profile to write."),
        click.option(
            "--aws-config-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="[default: $AWS_CONFIG_FILE or ~/.aws/config]",
        ),
        click.option(
            "--aws-credentials-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="[default: $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials]",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@data_options
@profile_options
@click.option(
    "--endpoint-url",
    default=None,
    help=f"The server's URL as clients reach it [default: http://127.0.0.1:{DEFAULT_PORT}].",
)
def init(
    data_dir: Path | None,
    database_url: str | None,
    region: str,
    account_id: str,
    profile: str,
    aws_config_file: Path | None,
    aws_credentials_file: Path | None,
    endpoint_url: str | None,
) -> None:
    """Create an administrator access key and write the AWS profile that uses it."""
    settings = Settings(
        data_dir=data_dir or default_data_dir(),
        database_url=database_url,
        region=region,
        account_id=account_id,
    )
    database = Database(settings.effective_database_url)
    try:
        database.migrate()
        secrets = SecretBox.load_or_create(settings.data_dir)
        files = default_files(aws_config_file, aws_credentials_file)
        key = bootstrap_admin(
            database,
            secrets,
            settings,
            endpoint_url=endpoint_url or endpoint_for("127.0.0.1", DEFAULT_PORT),
            files=files,
            profile=profile,
        )
    finally:
        database.dispose()
    click.echo(f"Administrator access key: {key.access_key_id}")
    click.echo(f"Secret access key:        {key.secret_access_key}")
    click.echo("The secret is shown only this once; it is stored encrypted.")
    click.echo(f"Profile '{profile}' written to {files.config} and {files.credentials}.")
    click.echo(f"Try: aws --profile {profile} deploy list-applications")

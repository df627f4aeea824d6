"""``opendeploy init``: create an administrator access key and an AWS CLI/SDK profile for it.

The secret is printed once and stored only encrypted. The profile (default ``opendeploy``) names the
server's region and its endpoint for ``codedeploy`` and ``s3``. ``opendeploy server`` does the same on
its first start when no administrator key exists yet.

The endpoint is HTTPS unless the server runs with ``--tls off``. With the server's self-signed
certificate (the default when it is given no ``--tls-certificate``) the profile trusts that certificate
through its ``ca_bundle``; init makes the certificate if the server has not yet, so init may run before
the first start. ``--ca-bundle`` names the certificates to trust instead (a private CA's); a certificate
from a public CA needs nothing. The TLS and master-key options are shared with ``opendeploy server``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click
from sqlalchemy import select

from opendeploy.cli.aws_profile import ProfileFiles, default_files, write_profile
from opendeploy.settings import Settings
from opendeploy.store import iam_users
from opendeploy.store.access_keys import NewAccessKey, create_access_key
from opendeploy.store.data_at_rest import private_umask
from opendeploy.store.db import Database
from opendeploy.store.models.credentials import AccessKey
from opendeploy.store.secrets import MASTER_KEY_FILE_ENV, MasterKeyError, SecretBox, SecretDecryptionError

DEFAULT_PROFILE = "opendeploy"
DEFAULT_PORT = 8480
TLS_SELF_SIGNED = "self-signed"
TLS_OFF = "off"


def default_data_dir() -> Path:
    return Path(os.environ.get("OPENDEPLOY_DATA_DIR") or Path.home() / ".opendeploy").expanduser()


def endpoint_for(host: str, port: int, *, https: bool = False) -> str:
    """The URL clients on this machine use to reach a server listening on ``host``."""
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if https else 'http'}://{host}:{port}"


def endpoint_host(endpoint_url: str | None) -> list[str]:
    """The host name of ``endpoint_url`` (a name the TLS certificate must carry), if any."""
    host = urlsplit(endpoint_url).hostname if endpoint_url else None
    return [host] if host else []


@dataclass(frozen=True)
class TlsChoice:
    """The TLS options of ``server`` and ``init``, checked."""

    mode: str  # self-signed | off (when no certificate files are given)
    certificate: Path | None
    key: Path | None
    names: tuple[str, ...]

    @property
    def https(self) -> bool:
        return self.mode != TLS_OFF or self.certificate is not None

    @property
    def self_signed(self) -> bool:
        return self.certificate is None and self.mode == TLS_SELF_SIGNED


def tls_choice(mode: str, certificate: Path | None, key: Path | None, names: tuple[str, ...]) -> TlsChoice:
    if (certificate is None) != (key is None):
        raise click.UsageError("--tls-certificate and --tls-key go together")
    if certificate is not None and mode == TLS_OFF:
        raise click.UsageError("--tls off serves plain HTTP: it takes no --tls-certificate / --tls-key")
    return TlsChoice(mode, certificate, key, names)


def open_secrets(database: Database, data_dir: Path, master_key_file: Path | None) -> SecretBox:
    """The master key, checked against what is stored: a clear error if it is missing or not the one
    the stored secrets were encrypted with (a new key is made only while nothing is stored)."""
    with database.transaction(write=False) as session:
        sample = session.scalars(select(AccessKey.secret_ciphertext).limit(1)).first()
    try:
        secrets = SecretBox.load_or_create(data_dir, master_key_file, create=sample is None)
        if sample is not None:
            secrets.decrypt(sample)
    except MasterKeyError as error:
        raise click.ClickException(str(error)) from None
    except SecretDecryptionError:
        raise click.ClickException(
            f"the master key {secrets.path} does not decrypt the access keys stored in the database: "
            f"give the file they were made with (--master-key-file or ${MASTER_KEY_FILE_ENV})"
        ) from None
    secrets.confirm(data_dir)
    return secrets


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
    ca_certificates: bytes | None = None,
) -> NewAccessKey:
    """Store a new administrator key and write the profile that uses it (trusting ``ca_certificates``
    for the endpoint, if given)."""
    with database.transaction() as session:
        key = create_access_key(
            session,
            secrets,
            principal_arn=admin_principal_arn(settings.account_id),
            is_admin=True,
            now=time.time(),
            description="administrator (opendeploy init)",
        )
        iam_users.ensure_administrator(session, admin_principal_arn(settings.account_id), time.time())
    write_profile(
        files,
        profile=profile,
        region=settings.region,
        endpoint_url=endpoint_url,
        access_key_id=key.access_key_id,
        secret_access_key=key.secret_access_key,
        ca_certificates=ca_certificates,
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


def master_key_option(command: click.Command) -> click.Command:
    """``--master-key-file``, shared by ``server`` and ``init``."""
    return click.option(
        "--master-key-file",
        envvar=MASTER_KEY_FILE_ENV,
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The master key that encrypts the server's secrets; keep it off the data disk "
        "(created if missing while no secrets exist) [default: <data-dir>/master.key].",
    )(command)


def tls_options(command: click.Command) -> click.Command:
    """How the server speaks TLS, shared by ``server`` and ``init`` (which writes the endpoint)."""
    options = [
        click.option(
            "--tls",
            "tls_mode",
            envvar="OPENDEPLOY_TLS",
            type=click.Choice([TLS_SELF_SIGNED, TLS_OFF]),
            default=TLS_SELF_SIGNED,
            show_default=True,
            help="Without --tls-certificate: serve HTTPS with a self-signed certificate kept in the data "
            "directory, or 'off' for plain HTTP (a lab only: nothing is encrypted on the wire).",
        ),
        click.option(
            "--tls-certificate",
            envvar="OPENDEPLOY_TLS_CERTIFICATE",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            default=None,
            help="The server's certificate (PEM, with any intermediates after it).",
        ),
        click.option(
            "--tls-key",
            envvar="OPENDEPLOY_TLS_KEY",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            default=None,
            help="The private key of --tls-certificate (PEM, unencrypted).",
        ),
        click.option(
            "--tls-name",
            "tls_names",
            envvar="OPENDEPLOY_TLS_NAMES",
            multiple=True,
            help="A host name or IP address the self-signed certificate must carry besides localhost, "
            "127.0.0.1, ::1, this machine's host name and the listening address (repeatable).",
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


def trusted_certificates(
    choice: TlsChoice,
    endpoint_url: str,
    *,
    data_dir: Path,
    secrets: SecretBox,
    host: str,
    ca_bundle: Path | None = None,
) -> bytes | None:
    """The certificates a profile must trust to reach ``endpoint_url``: ``ca_bundle``'s, the data
    directory's self-signed certificate (made now if the server has not made it yet), or none."""
    from opendeploy.api import tls

    if urlsplit(endpoint_url).scheme != "https":
        return None
    if ca_bundle is not None:
        return ca_bundle.read_bytes()
    if not choice.self_signed:
        return None  # the operator's certificate: its CA is trusted already, or --ca-bundle says which
    names = tls.default_names(host, (*choice.names, *endpoint_host(endpoint_url)))
    return tls.self_signed(data_dir, secrets, names).trust_pem


@click.command()
@data_options
@master_key_option
@tls_options
@profile_options
@click.option(
    "--endpoint-url",
    default=None,
    help=f"The server's URL as clients reach it [default: https://127.0.0.1:{DEFAULT_PORT}, "
    "http:// with --tls off].",
)
@click.option(
    "--ca-bundle",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Certificates (PEM) the profile trusts for the server, e.g. a private CA's "
    "[default: the server's self-signed certificate; none with --tls-certificate].",
)
def init(
    data_dir: Path | None,
    database_url: str | None,
    region: str,
    account_id: str,
    master_key_file: Path | None,
    tls_mode: str,
    tls_certificate: Path | None,
    tls_key: Path | None,
    tls_names: tuple[str, ...],
    profile: str,
    aws_config_file: Path | None,
    aws_credentials_file: Path | None,
    endpoint_url: str | None,
    ca_bundle: Path | None,
) -> None:
    """Create an administrator access key and write the AWS profile that uses it."""
    from opendeploy.api.tls import fingerprint

    private_umask()  # the data directory and everything made in it are the owner's alone
    choice = tls_choice(tls_mode, tls_certificate, tls_key, tls_names)
    settings = Settings(
        data_dir=(data_dir or default_data_dir()).absolute(),
        database_url=database_url,
        region=region,
        account_id=account_id,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    endpoint = endpoint_url or endpoint_for("127.0.0.1", DEFAULT_PORT, https=choice.https)
    database = Database(settings.effective_database_url)
    try:
        database.migrate()
        secrets = open_secrets(database, settings.data_dir, master_key_file)
        trusted = trusted_certificates(
            choice, endpoint, data_dir=settings.data_dir, secrets=secrets, host="", ca_bundle=ca_bundle
        )
        files = default_files(aws_config_file, aws_credentials_file)
        key = bootstrap_admin(
            database,
            secrets,
            settings,
            endpoint_url=endpoint,
            files=files,
            profile=profile,
            ca_certificates=trusted,
        )
    finally:
        database.dispose()
    click.echo(f"Administrator access key: {key.access_key_id}")
    click.echo(f"Secret access key:        {key.secret_access_key}")
    click.echo("The secret is shown only this once; it is stored encrypted.")
    click.echo(f"Profile '{profile}' written to {files.config} and {files.credentials}.")
    if trusted is not None:
        click.echo(
            f"It trusts the server's certificate (SHA-256 {fingerprint(trusted)}) through its ca_bundle."
        )
    click.echo(f"Try: aws --profile {profile} deploy list-applications")

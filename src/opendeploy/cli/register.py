"""``opendeploy register`` / ``deregister``: make this machine an on-premises instance, or undo it.

Like ``aws deploy register`` (guide L12996–L13209), with the administrator's profile (``opendeploy``,
written by ``opendeploy init``):

1. decide which TLS certificates to trust for an HTTPS server (``cli/server_trust.py``: ``--ca-bundle``,
   ``--ca-fingerprint``, or the administrator profile's ``ca_bundle``), and with ``--trust-system-wide``
   add the server's certificate to the system's store for AWS's agent;
2. fetch the server's specification-signing certificate (``GET /agent/certificate``), or take the one
   given with ``--server-certificate``, to pin it;
3. create the instance's identity: an IAM user with read access to bundles and an access key, through
   the server's IAM API (``--iam-user-arn`` names an existing user instead; with ``--access-key-id`` /
   ``--secret-access-key`` its key too);
4. RegisterOnPremisesInstance with that user's ARN, then AddTagsToOnPremisesInstances;
5. write ``codedeploy.onpremises.yml``, ``codedeployagent.yml`` (with ``:ca_bundle:`` when the server
   needs certificates of its own trusted), the pinned certificate and ``opendeploy-server-ca.pem`` into
   ``--config-dir`` (default ``/etc/codedeploy-agent/conf``).

If a step fails, what the earlier steps created is removed again. ``deregister`` removes the instance's
tags, deregisters it, deletes its IAM user (unless ``--no-delete-iam-user``) and removes the files,
including a certificate ``--trust-system-wide`` added to the system's store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import botocore.session
import click
import httpx
import yaml
from botocore.parsers import ResponseParserError
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from opendeploy.agent.agent_config import DEFAULT_LOG_DIR, DEFAULT_ROOT_DIR
from opendeploy.agent.host_files import (
    DEFAULT_CONFIG_DIR,
    DEFAULT_PID_DIR,
    AgentSettings,
    HostFiles,
    remove_host_files,
    write_host_files,
)
from opendeploy.agent.onpremises_config import (
    OnPremisesConfigError,
    load_onpremises_config,
    write_private_file,
)
from opendeploy.cli.server_trust import (
    CA_BUNDLE_NAME,
    ServerTrust,
    TrustError,
    decide,
    install_system_wide,
    remove_system_wide,
    verify_context,
)
from opendeploy.domain.instance_permissions import REGISTRATION_POLICY, REGISTRATION_POLICY_NAME

CERTIFICATE_PATH = "/agent/certificate"
IAM_USER_PATH = "/AWS/CodeDeploy/"
# What an instance needs besides the command service: read its bundles (guide L13605–L13650); the
# server reads it as the instance's least-privilege grant (domain/instance_permissions).
IAM_POLICY_NAME = REGISTRATION_POLICY_NAME
INSTANCE_POLICY = REGISTRATION_POLICY


# A server without the IAM API answers in another protocol, which botocore cannot even parse.
_IAM_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, ResponseParserError)


class RegistrationError(click.ClickException):
    """A step of registering or deregistering failed; the message says which and what to do."""


@dataclass(frozen=True)
class InstanceIdentity:
    iam_user_arn: str
    access_key_id: str
    secret_access_key: str
    created_user: str | None  # the user name if this run created the user (to undo on failure)
    created_key: bool


def _error_text(error: Exception) -> str:
    if isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".rstrip(": ")
    return str(error)


def _is_aws(endpoint: str) -> bool:
    return ".amazonaws.com" in endpoint or ".amazonaws.com.cn" in endpoint


def server_client(
    session: boto3.Session, service: str, server_endpoint: str, region: str, verify: str | None = None
) -> Any:
    """A client for ``service`` at the opendeploy server: the profile's endpoint for it if the profile
    sets one, else the server's own (never AWS's, which a default endpoint would be). ``verify``: a CA
    bundle to trust instead of the profile's."""
    client = session.client(service, region_name=region, verify=verify)
    if _is_aws(client.meta.endpoint_url):
        client = session.client(service, region_name=region, endpoint_url=server_endpoint, verify=verify)
    return client


def parse_tags(values: Sequence[str]) -> list[dict[str, str]]:
    """``Key=Name,Value=CodeDeployDemo-OnPrem`` (one or more per option, separated by spaces)."""
    tags = []
    for value in values:
        for item in value.split():
            fields = dict(part.split("=", 1) for part in item.split(",") if "=" in part)
            if set(fields) != {"Key", "Value"} or not fields["Key"]:
                raise click.BadParameter(
                    f"{item!r}: write each tag as Key=<key>,Value=<value> "
                    "(on-premises instance tags need both)",
                    param_hint="--tags",
                )
            tags.append({"Key": fields["Key"], "Value": fields["Value"]})
    return tags


def fetch_server_certificate(endpoint: str, verify: ssl.SSLContext | bool = True) -> bytes:
    """The server's specification-signing certificate (PEM), as the server serves it."""
    url = endpoint.rstrip("/") + CERTIFICATE_PATH
    try:
        response = httpx.get(url, timeout=10.0, verify=verify)
    except httpx.HTTPError as error:
        raise RegistrationError(f"cannot fetch the server certificate from {url}: {error}") from None
    if response.status_code != 200:
        raise RegistrationError(
            f"cannot fetch the server certificate from {url}: HTTP {response.status_code} "
            f"(is this an opendeploy server? --server-certificate pins a certificate file instead)"
        )
    return response.content


def check_certificate(pem: bytes, source: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as error:
        raise RegistrationError(f"{source} is not a PEM certificate: {error}") from None


def fingerprint(certificate: x509.Certificate) -> str:
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _user_name(iam_user_arn: str) -> str:
    return iam_user_arn.rsplit("/", 1)[-1]


def _iam_unavailable(error: Exception, endpoint: str) -> RegistrationError:
    return RegistrationError(
        f"cannot create the instance's IAM user and access key through {endpoint}: {_error_text(error)}. "
        "Create them another way and pass --iam-user-arn with --access-key-id and --secret-access-key."
    )


def create_instance_identity(
    iam: Any, instance_name: str, iam_user_arn: str | None, access_key: tuple[str, str] | None
) -> InstanceIdentity:
    """The instance's IAM user and access key: created here, or the given user's (new or given) key.

    This is the one place that talks to IAM when registering.
    """
    if iam_user_arn and access_key:
        return InstanceIdentity(iam_user_arn, access_key[0], access_key[1], None, False)
    created_user = None
    try:
        if iam_user_arn is None:
            user = iam.create_user(Path=IAM_USER_PATH, UserName=instance_name)["User"]
            iam_user_arn, created_user = user["Arn"], user["UserName"]
            iam.put_user_policy(
                UserName=created_user, PolicyName=IAM_POLICY_NAME, PolicyDocument=json.dumps(INSTANCE_POLICY)
            )
        key = iam.create_access_key(UserName=_user_name(iam_user_arn))["AccessKey"]
    except _IAM_ERRORS as error:
        if created_user is not None:
            delete_instance_identity(iam, iam_user_arn or "", delete_user=True)
        raise _iam_unavailable(error, iam.meta.endpoint_url) from None
    return InstanceIdentity(iam_user_arn, key["AccessKeyId"], key["SecretAccessKey"], created_user, True)


def delete_instance_identity(
    iam: Any, iam_user_arn: str, *, delete_user: bool, access_key_id: str | None = None
) -> list[str]:
    """Delete the user (its keys and inline policies first), or only ``access_key_id``; returns warnings."""
    name = _user_name(iam_user_arn)
    warnings = []
    try:
        if not delete_user:
            if access_key_id:
                iam.delete_access_key(UserName=name, AccessKeyId=access_key_id)
            return warnings
        for key in iam.list_access_keys(UserName=name).get("AccessKeyMetadata", []):
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for policy in iam.list_user_policies(UserName=name).get("PolicyNames", []):
            iam.delete_user_policy(UserName=name, PolicyName=policy)
        iam.delete_user(UserName=name)
    except _IAM_ERRORS as error:
        warnings.append(f"could not delete the IAM user {iam_user_arn}: {_error_text(error)}")
    return warnings


def _admin_session(profile: str | None) -> boto3.Session:
    try:
        return boto3.Session(profile_name=profile)
    except botocore.exceptions.ProfileNotFound:
        raise RegistrationError(
            f"no AWS profile named {profile!r}: run 'opendeploy init' (it writes the 'opendeploy' profile) "
            "or give --profile"
        ) from None


def _server_endpoint(session: boto3.Session, endpoint_url: str | None, region: str | None) -> tuple[str, str]:
    codedeploy = session.client("codedeploy", region_name=region, endpoint_url=endpoint_url)
    endpoint = codedeploy.meta.endpoint_url
    if _is_aws(endpoint):
        raise RegistrationError(
            f"the profile's CodeDeploy endpoint is AWS's ({endpoint}): give --endpoint-url or use the "
            "profile 'opendeploy init' writes, which points at the opendeploy server"
        )
    return endpoint, codedeploy.meta.region_name


def profile_options(command: click.Command) -> click.Command:
    options = [
        click.option(
            "--profile", default="opendeploy", show_default=True, help="The administrator's AWS profile."
        ),
        click.option(
            "--endpoint-url",
            default=None,
            help="The opendeploy server's URL as this host reaches it [default: the profile's].",
        ),
        click.option("--region", default=None, help="[default: the profile's]"),
        click.option(
            "--config-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=DEFAULT_CONFIG_DIR,
            show_default=True,
            help="Where the host's agent files are.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command("register")
@click.option("--instance-name", required=True, help="The on-premises instance's name (no colons).")
@click.option(
    "--tags", "tags", multiple=True, metavar="Key=K,Value=V", help="Tags for the instance (repeatable)."
)
@click.option("--iam-user-arn", default=None, help="Use this existing IAM user instead of creating one.")
@click.option("--access-key-id", default=None, help="With --iam-user-arn: that user's access key id.")
@click.option("--secret-access-key", default=None, help="With --access-key-id: its secret.")
@profile_options
@click.option(
    "--server-certificate",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Pin this certificate file (the server's specification-signer.crt) instead of fetching it.",
)
@click.option(
    "--s3-endpoint-url", default=None, help="Where bundles are downloaded [default: the profile's s3]."
)
@click.option(
    "--github-endpoint-url", default=None, help="A GitHub-compatible archive API [default: GitHub]."
)
@click.option("--root-dir", type=click.Path(path_type=Path), default=DEFAULT_ROOT_DIR, show_default=True)
@click.option("--log-dir", type=click.Path(path_type=Path), default=DEFAULT_LOG_DIR, show_default=True)
@click.option("--pid-dir", type=click.Path(path_type=Path), default=DEFAULT_PID_DIR, show_default=True)
@click.option("--wait-between-runs", type=click.IntRange(0), default=1, show_default=True)
@click.option("--force", is_flag=True, help="Replace agent files already in --config-dir.")
@click.option(
    "--ca-bundle",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Certificates (PEM) to trust for the server's HTTPS endpoint, here and in the agent "
    "[default: the server's self-signed certificate, as the profile's ca_bundle trusts it].",
)
@click.option(
    "--ca-fingerprint",
    default=None,
    metavar="SHA256",
    help="Fetch the server's self-signed certificate from GET /tls/certificate and trust it if its "
    "SHA-256 fingerprint is this one (the server logs it at start).",
)
@click.option(
    "--trust-system-wide",
    is_flag=True,
    help="Also add the server's certificate to this system's trusted certificates "
    "(update-ca-certificates; root): what AWS's own agent needs.",
)
def register(
    instance_name: str,
    tags: tuple[str, ...],
    iam_user_arn: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    profile: str,
    endpoint_url: str | None,
    region: str | None,
    config_dir: Path,
    server_certificate: Path | None,
    s3_endpoint_url: str | None,
    github_endpoint_url: str | None,
    root_dir: Path,
    log_dir: Path,
    pid_dir: Path,
    wait_between_runs: int,
    force: bool,
    ca_bundle: Path | None,
    ca_fingerprint: str | None,
    trust_system_wide: bool,
) -> None:
    """Register this machine as an on-premises instance and write its agent's files."""
    if bool(access_key_id) != bool(secret_access_key) or (access_key_id and not iam_user_arn):
        raise click.UsageError("--access-key-id and --secret-access-key go together, with --iam-user-arn")
    tag_list = parse_tags(tags)
    files = HostFiles(config_dir.absolute())
    if files.existing() and not force:
        raise RegistrationError(
            f"this host already has agent files ({', '.join(map(str, files.existing()))}): "
            "run 'opendeploy deregister' first, or give --force to replace them"
        )
    session = _admin_session(profile)
    endpoint, region = _server_endpoint(session, endpoint_url, region)
    try:
        trust = decide(
            endpoint,
            ca_bundle=ca_bundle,
            ca_fingerprint=ca_fingerprint,
            # The profile's ca_bundle (or $AWS_CA_BUNDLE): what the administrator's clients trust.
            profile_ca_bundle=botocore.session.Session(profile=profile).get_config_variable("ca_bundle"),
        )
        installed = _install_system_wide(trust, endpoint) if trust_system_wide else None
    except TrustError as error:
        raise RegistrationError(str(error)) from None
    with _bundle_file(trust) as verify:
        _register(
            session,
            endpoint,
            region,
            files,
            trust,
            verify,
            instance_name=instance_name,
            tag_list=tag_list,
            iam_user_arn=iam_user_arn,
            access_key=(access_key_id, secret_access_key) if access_key_id and secret_access_key else None,
            server_certificate=server_certificate,
            s3_endpoint_url=s3_endpoint_url,
            settings=AgentSettings(
                deploy_control_endpoint=endpoint,
                s3_endpoint_override=None,  # filled in by _register
                root_dir=root_dir.absolute(),
                log_dir=log_dir.absolute(),
                pid_dir=pid_dir.absolute(),
                wait_between_runs=wait_between_runs,
                github_endpoint_override=github_endpoint_url,
            ),
        )
    if installed is not None:
        click.echo(f"Added the server's certificate to this system's trusted certificates ({installed}).")


@contextlib.contextmanager
def _bundle_file(trust: ServerTrust) -> Iterator[str | None]:
    """The agent's CA bundle as a file for this command's own clients while it runs (None: defaults)."""
    if trust.agent_bundle is None:
        yield None
        return
    with tempfile.NamedTemporaryFile(prefix="opendeploy-ca-", suffix=".pem") as handle:
        handle.write(trust.agent_bundle)
        handle.flush()
        yield handle.name


def _install_system_wide(trust: ServerTrust, endpoint: str) -> Path | None:
    if trust.server_certificates is None:
        if trust.agent_bundle is None:
            click.echo(
                "Nothing to add system-wide: the system's certificate authorities vouch for the server."
            )
            return None
        raise TrustError(
            "the server presents the operator's certificate: give --ca-bundle with the CA that issued it "
            "to add it system-wide"
        )
    return install_system_wide(trust.server_certificates, endpoint)


def _write_agent_trust(files: HostFiles, trust: ServerTrust) -> Path | None:
    """``opendeploy-server-ca.pem`` and the agent configuration's ``:ca_bundle:`` naming it."""
    path = files.config_dir / CA_BUNDLE_NAME
    if trust.agent_bundle is None:
        path.unlink(missing_ok=True)
        return None
    write_private_file(path, trust.agent_bundle.decode("ascii"), mode=0o644)
    # host_files renders the keys both agents know; this one is opendeploy's own (AWS's agent ignores it).
    rendered = yaml.safe_dump(str(path), default_flow_style=True).strip().removesuffix("...").strip()
    with open(files.agent_config, "a") as config:
        config.write(f":ca_bundle: {rendered}\n")
    return path


def _register(
    session: boto3.Session,
    endpoint: str,
    region: str,
    files: HostFiles,
    trust: ServerTrust,
    verify: str | None,
    *,
    instance_name: str,
    tag_list: list[dict[str, str]],
    iam_user_arn: str | None,
    access_key: tuple[str, str] | None,
    server_certificate: Path | None,
    s3_endpoint_url: str | None,
    settings: AgentSettings,
) -> None:
    """Steps 2 to 5 of the module docstring, trusting ``verify`` (a CA bundle file) for the server."""
    if server_certificate is not None:
        certificate_pem = server_certificate.read_bytes()
        source = str(server_certificate)
    else:
        certificate_pem = fetch_server_certificate(endpoint, verify_context(verify))
        source = endpoint + CERTIFICATE_PATH
    certificate = check_certificate(certificate_pem, source)
    codedeploy = session.client("codedeploy", region_name=region, endpoint_url=endpoint, verify=verify)
    s3_endpoint = s3_endpoint_url or server_client(session, "s3", endpoint, region, verify).meta.endpoint_url
    iam = server_client(session, "iam", endpoint, region, verify)
    settings = dataclasses.replace(settings, s3_endpoint_override=s3_endpoint)

    identity = create_instance_identity(iam, instance_name, iam_user_arn, access_key)
    registered = writing = False
    ca_file = None
    try:
        codedeploy.register_on_premises_instance(instanceName=instance_name, iamUserArn=identity.iam_user_arn)
        registered = True
        if tag_list:
            codedeploy.add_tags_to_on_premises_instances(instanceNames=[instance_name], tags=tag_list)
        writing = True
        write_host_files(
            files,
            iam_user_arn=identity.iam_user_arn,
            access_key_id=identity.access_key_id,
            secret_access_key=identity.secret_access_key,
            region=region,
            certificate_pem=certificate_pem,
            settings=settings,
        )
        ca_file = _write_agent_trust(files, trust)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, OSError) as error:
        # Undo what this run did, so the name and the user can be used again at once.
        if registered:
            with contextlib.suppress(botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
                codedeploy.deregister_on_premises_instance(instanceName=instance_name)
        if identity.created_user or identity.created_key:
            delete_instance_identity(
                iam,
                identity.iam_user_arn,
                delete_user=identity.created_user is not None,
                access_key_id=identity.access_key_id if identity.created_key else None,
            )
        if writing:
            remove_host_files(files)
            (files.config_dir / CA_BUNDLE_NAME).unlink(missing_ok=True)
        text = _error_text(error) if not isinstance(error, OSError) else f"{error.filename}: {error.strerror}"
        raise RegistrationError(f"registering {instance_name} failed (nothing was kept): {text}") from None

    click.echo(f"Registered on-premises instance {instance_name} as {identity.iam_user_arn}.")
    if tag_list:
        click.echo("Tags: " + ", ".join(f"{t['Key']}={t['Value']}" for t in tag_list))
    click.echo(f"Pinned the server certificate (SHA-256 {fingerprint(certificate)}).")
    click.echo(f"Wrote {files.onpremises_config}, {files.agent_config} and {files.server_certificate}.")
    if ca_file is not None:
        click.echo(f"The agent trusts the server's TLS certificate from {trust.source} ({ca_file}).")
    click.echo(f"Start the agent: opendeploy agent --config {files.agent_config}")


@click.command("deregister")
@click.option("--instance-name", required=True)
@click.option("--no-delete-iam-user", is_flag=True, help="Keep the instance's IAM user.")
@profile_options
def deregister(
    instance_name: str,
    no_delete_iam_user: bool,
    profile: str,
    endpoint_url: str | None,
    region: str | None,
    config_dir: Path,
) -> None:
    """Deregister an on-premises instance, delete its IAM user and remove this host's agent files."""
    session = _admin_session(profile)
    endpoint, region = _server_endpoint(session, endpoint_url, region)
    codedeploy = session.client("codedeploy", region_name=region, endpoint_url=endpoint)
    try:
        info = codedeploy.get_on_premises_instance(instanceName=instance_name)["instanceInfo"]
        if info.get("tags"):
            codedeploy.remove_tags_from_on_premises_instances(
                instanceNames=[instance_name], tags=info["tags"]
            )
        codedeploy.deregister_on_premises_instance(instanceName=instance_name)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        raise RegistrationError(f"deregistering {instance_name} failed: {_error_text(error)}") from None
    click.echo(f"Deregistered on-premises instance {instance_name}.")
    iam_user_arn = info.get("iamUserArn")
    if iam_user_arn and not no_delete_iam_user:
        iam = server_client(session, "iam", endpoint, region)
        warnings = delete_instance_identity(iam, iam_user_arn, delete_user=True)
        for warning in warnings:
            click.echo(f"Warning: {warning}", err=True)
        if not warnings:
            click.echo(f"Deleted the IAM user {iam_user_arn}.")
    files = HostFiles(config_dir.absolute())
    try:
        here = load_onpremises_config(files.onpremises_config).host_identifier
    except OnPremisesConfigError:
        here = None
    if here is not None and here == (iam_user_arn or info.get("iamSessionArn")):
        removed = remove_host_files(files)
        ca_file = files.config_dir / CA_BUNDLE_NAME
        if ca_file.exists():
            ca_file.unlink()
            removed.append(ca_file)
        click.echo(f"Removed {', '.join(map(str, removed))}.")
        try:
            system_file = remove_system_wide(endpoint)
        except TrustError as error:
            raise RegistrationError(str(error)) from None
        if system_file is not None:
            click.echo(
                f"Removed the server's certificate from this system's trusted certificates ({system_file})."
            )
    elif here is not None:
        click.echo(f"Left the agent files in {config_dir}: they belong to {here}, not to {instance_name}.")

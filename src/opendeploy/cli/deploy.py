"""``opendeploy deploy``: create a deployment, as ``aws deploy create-deployment`` does, and follow it.

The flags are ``create-deployment``'s: ``--application-name``, ``--deployment-group-name``, a revision
with ``--s3-location`` (``s3://bucket/key``, or the shorthand ``bucket=…,key=…,bundleType=…[,version=…]
[,eTag=…]``) or ``--github-location repository=…,commitId=…``, ``--deployment-config-name``,
``--description``, ``--file-exists-behavior``, ``--ignore-application-stop-failures``,
``--update-outdated-instances-only`` and ``--target-instances`` (JSON, as the AWS CLI takes it). A
bundle type the location leaves out is taken from the key's extension, as ``opendeploy push`` names
bundles (``.tar``, ``.tgz`` / ``.tar.gz``, else zip). With ``--follow`` (the default) the deployment is
shown as ``opendeploy watch`` shows it, and the exit status is the outcome's (0 Succeeded, 3 Failed,
4 Stopped); with ``--no-follow`` the deployment's id is printed and the command returns at once.
"""

from __future__ import annotations

import json
from typing import Any

import click

from opendeploy.cli.codedeploy_client import api_error_text, client_options, codedeploy_client
from opendeploy.cli.push import S3Location, parse_s3_location
from opendeploy.cli.watch import follow, follow_options

S3_FIELDS = ("bucket", "key", "bundleType", "version", "eTag")
GITHUB_FIELDS = ("repository", "commitId")
FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")


def parse_shorthand(
    value: str, fields: tuple[str, ...], required: tuple[str, ...], option: str
) -> dict[str, str]:
    """``a=1,b=2`` -> ``{"a": "1", "b": "2"}``, naming any unknown, repeated or missing field."""
    parsed: dict[str, str] = {}
    for item in value.split(","):
        name, equals, field_value = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise click.BadParameter(f"{item!r} is not of the form name=value", param_hint=option)
        if name not in fields:
            raise click.BadParameter(
                f"unknown field {name!r}; the fields are {', '.join(fields)}", param_hint=option
            )
        if name in parsed:
            raise click.BadParameter(f"{name} is given twice", param_hint=option)
        parsed[name] = field_value.strip()
    missing = [name for name in required if not parsed.get(name)]
    if missing:
        raise click.BadParameter(f"{', '.join(missing)} missing from {value!r}", param_hint=option)
    return parsed


def s3_revision(value: str) -> dict[str, Any]:
    """The ``revision`` of ``--s3-location``: ``s3://bucket/key`` or the create-deployment shorthand."""
    if value.startswith("s3://"):
        location = parse_s3_location(value)
        fields = {"bucket": location.bucket, "key": location.key}
    else:
        fields = parse_shorthand(value, S3_FIELDS, ("bucket", "key"), "--s3-location")
    fields.setdefault("bundleType", S3Location(fields["bucket"], fields["key"]).bundle_type)
    return {"revisionType": "S3", "s3Location": fields}


def github_revision(value: str) -> dict[str, Any]:
    fields = parse_shorthand(value, GITHUB_FIELDS, GITHUB_FIELDS, "--github-location")
    return {"revisionType": "GitHub", "gitHubLocation": fields}


def target_instances(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="--target-instances") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter(
            'a JSON object such as {"tagFilters": [{"Key": "k", "Value": "v", "Type": "KEY_AND_VALUE"}]}',
            param_hint="--target-instances",
        )
    return parsed


def create_deployment_request(
    *,
    application_name: str,
    deployment_group_name: str,
    s3_location: str | None,
    github_location: str | None,
    deployment_config_name: str | None,
    description: str | None,
    file_exists_behavior: str | None,
    ignore_application_stop_failures: bool | None,
    update_outdated_instances_only: bool | None,
    target_instances_json: str | None,
) -> dict[str, Any]:
    """The CreateDeployment parameters the flags stand for (unset flags are left out, as the AWS CLI
    leaves them out, so the server applies its defaults)."""
    if s3_location and github_location:
        raise click.UsageError("give --s3-location or --github-location, not both")
    request: dict[str, Any] = {
        "applicationName": application_name,
        "deploymentGroupName": deployment_group_name,
    }
    if s3_location:
        request["revision"] = s3_revision(s3_location)
    elif github_location:
        request["revision"] = github_revision(github_location)
    optional = {
        "deploymentConfigName": deployment_config_name,
        "description": description,
        "fileExistsBehavior": file_exists_behavior,
        "ignoreApplicationStopFailures": ignore_application_stop_failures,
        "updateOutdatedInstancesOnly": update_outdated_instances_only,
        "targetInstances": target_instances(target_instances_json) if target_instances_json else None,
    }
    request.update({name: value for name, value in optional.items() if value is not None})
    return request


@click.command("deploy")
@click.option("--application-name", required=True, help="The application to deploy.")
@click.option("--deployment-group-name", required=True, help="The deployment group to deploy to.")
@click.option(
    "--s3-location",
    default=None,
    metavar="LOCATION",
    help="The revision's bundle: s3://BUCKET/KEY, or bucket=B,key=K[,bundleType=zip|tar|tgz]"
    "[,version=V][,eTag=E].",
)
@click.option(
    "--github-location",
    default=None,
    metavar="repository=OWNER/REPO,commitId=SHA",
    help="The revision as a commit of a GitHub repository.",
)
@click.option("--deployment-config-name", default=None, help="[default: the deployment group's]")
@click.option("--description", default=None, help="A comment for the deployment.")
@click.option(
    "--file-exists-behavior",
    type=click.Choice(FILE_EXISTS_BEHAVIORS),
    default=None,
    help="What to do with files in the destinations that the last deployment did not put there "
    "[default: DISALLOW; the AppSpec file's setting wins].",
)
@click.option(
    "--ignore-application-stop-failures/--no-ignore-application-stop-failures",
    default=None,
    help="Go on to BeforeInstall when ApplicationStop fails.",
)
@click.option(
    "--update-outdated-instances-only/--no-update-outdated-instances-only",
    default=None,
    help="Deploy only to the instances that do not run the group's last successful revision.",
)
@click.option(
    "--target-instances",
    "target_instances_json",
    default=None,
    metavar="JSON",
    help='The replacement instances of a blue/green deployment, e.g. {"tagFilters": [...]}.',
)
@click.option(
    "--follow/--no-follow",
    "follow_deployment",
    default=True,
    show_default=True,
    help="Show the deployment until it finishes (exit 0 Succeeded, 3 Failed, 4 Stopped).",
)
@follow_options
@client_options
def deploy(
    application_name: str,
    deployment_group_name: str,
    s3_location: str | None,
    github_location: str | None,
    deployment_config_name: str | None,
    description: str | None,
    file_exists_behavior: str | None,
    ignore_application_stop_failures: bool | None,
    update_outdated_instances_only: bool | None,
    target_instances_json: str | None,
    follow_deployment: bool,
    max_rows: int,
    refresh_interval: float,
    retry_for: float,
    profile: str,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Create a deployment (like 'aws deploy create-deployment') and follow it until it finishes."""
    from botocore.exceptions import BotoCoreError, ClientError

    request = create_deployment_request(
        application_name=application_name,
        deployment_group_name=deployment_group_name,
        s3_location=s3_location,
        github_location=github_location,
        deployment_config_name=deployment_config_name,
        description=description,
        file_exists_behavior=file_exists_behavior,
        ignore_application_stop_failures=ignore_application_stop_failures,
        update_outdated_instances_only=update_outdated_instances_only,
        target_instances_json=target_instances_json,
    )
    client = codedeploy_client(profile, region, endpoint_url)
    try:
        deployment_id = client.create_deployment(**request)["deploymentId"]
    except (BotoCoreError, ClientError) as error:
        raise click.ClickException(api_error_text(error)) from None
    if not follow_deployment:
        click.echo(deployment_id)
        return
    click.echo(f"Created deployment {deployment_id} of {application_name} to {deployment_group_name}.")
    click.get_current_context().exit(
        follow(client, deployment_id, max_rows=max_rows, interval=refresh_interval, retry_for=retry_for)
    )

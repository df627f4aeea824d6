"""The CodeDeploy client the people-facing commands (``deploy``, ``watch``, ``targets``) talk through:
their ``--profile`` / ``--region`` / ``--endpoint-url`` options and a readable text for API errors.

The client is made by ``opendeploy push``'s helper from the AWS profile ``opendeploy init`` writes, so
these commands reach the server exactly as ``aws deploy …`` and boto3 code do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from opendeploy.cli.push import DEFAULT_PROFILE, _clients

F = TypeVar("F", bound=Callable[..., Any])


def client_options(command: F) -> F:
    """``--profile``, ``--region`` and ``--endpoint-url``, as the other commands have them."""
    options = [
        click.option(
            "--profile",
            default=DEFAULT_PROFILE,
            show_default=True,
            help="The AWS profile that reaches the server (written by 'opendeploy init').",
        ),
        click.option("--region", default=None, help="[default: the profile's]"),
        click.option("--endpoint-url", default=None, help="The server's URL [default: the profile's]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def codedeploy_client(profile: str, region: str | None, endpoint_url: str | None) -> Any:
    """A boto3 ``codedeploy`` client for the profile; a clear error if the profile does not exist."""
    codedeploy, _s3 = _clients(profile, region, endpoint_url)
    return codedeploy


def api_error_text(error: Exception) -> str:
    """``Operation failed: Code: message`` for an API error, the error itself for anything else."""
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{error.operation_name} failed: {details.get('Code', 'Error')}: {details.get('Message', '')}"
    return str(error)

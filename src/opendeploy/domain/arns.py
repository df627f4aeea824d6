"""ARNs of CodeDeploy resources, built and parsed in the formats the guide's permissions table uses.

- application:       ``arn:aws:codedeploy:<region>:<account>:application:<application-name>``
- deployment group:  ``arn:aws:codedeploy:<region>:<account>:deploymentgroup:<application>/<group>``
- deployment config: ``arn:aws:codedeploy:<region>:<account>:deploymentconfig:<config-name>``
- instance:          ``arn:aws:codedeploy:<region>:<account>:instance/<instance-name>``
"""

from __future__ import annotations

from dataclasses import dataclass

PARTITION = "aws"


def application_arn(region: str, account_id: str, application_name: str) -> str:
    return f"arn:{PARTITION}:codedeploy:{region}:{account_id}:application:{application_name}"


def deployment_group_arn(
    region: str, account_id: str, application_name: str, deployment_group_name: str
) -> str:
    return (
        f"arn:{PARTITION}:codedeploy:{region}:{account_id}:deploymentgroup:"
        f"{application_name}/{deployment_group_name}"
    )


def deployment_config_arn(region: str, account_id: str, config_name: str) -> str:
    return f"arn:{PARTITION}:codedeploy:{region}:{account_id}:deploymentconfig:{config_name}"


def instance_arn(region: str, account_id: str, instance_name: str) -> str:
    return f"arn:{PARTITION}:codedeploy:{region}:{account_id}:instance/{instance_name}"


@dataclass(frozen=True)
class CodeDeployArn:
    """A parsed CodeDeploy ARN. ``names`` holds the resource's name parts (application, group ...)."""

    region: str
    account_id: str
    resource_type: str  # application | deploymentgroup | deploymentconfig | instance
    names: tuple[str, ...]


def parse_arn(arn: str) -> CodeDeployArn | None:
    """Parse a CodeDeploy ARN; ``None`` if ``arn`` is not one of the four forms above."""
    parts = arn.split(":", 6)
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "codedeploy":
        return None
    region, account_id, rest = parts[3], parts[4], ":".join(parts[5:])
    if rest.startswith("instance/"):
        name = rest[len("instance/") :]
        return CodeDeployArn(region, account_id, "instance", (name,)) if name else None
    resource_type, _, name = rest.partition(":")
    if not name:
        return None
    if resource_type == "deploymentgroup":
        application, _, group = name.partition("/")
        if not application or not group:
            return None
        return CodeDeployArn(region, account_id, resource_type, (application, group))
    if resource_type in ("application", "deploymentconfig"):
        return CodeDeployArn(region, account_id, resource_type, (name,))
    return None

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


# --- additions for authorization (issue 9): wildcard resources, S3 and IAM ARNs ----------------------


def account_resources_arn(region: str, account_id: str) -> str:
    """``arn:aws:codedeploy:<region>:<account>:*``: "all resources of one account in one Region"
    (guide L21630–21634), the resource of the operations the permissions reference gives it."""
    return f"arn:{PARTITION}:codedeploy:{region}:{account_id}:*"


def s3_bucket_arn(bucket: str) -> str:
    """``arn:aws:s3:::<bucket>`` (S3 ARNs name neither region nor account)."""
    return f"arn:{PARTITION}:s3:::{bucket}"


def s3_object_arn(bucket: str, key: str) -> str:
    """``arn:aws:s3:::<bucket>/<key>``, the key as stored (not percent-encoded)."""
    return f"arn:{PARTITION}:s3:::{bucket}/{key}"


def _iam_path(path: str | None) -> str:
    """An IAM path as it sits in an ARN: ``/`` by default, always starting and ending with ``/``."""
    if not path:
        return "/"
    return ("" if path.startswith("/") else "/") + path + ("" if path.endswith("/") else "/")


def iam_user_arn(account_id: str, user_name: str, path: str | None = "/") -> str:
    """``arn:aws:iam::<account>:user<path><name>``, e.g. ``…:user/division_abc/subdivision_xyz/Bob``."""
    return f"arn:{PARTITION}:iam::{account_id}:user{_iam_path(path)}{user_name}"


def iam_group_arn(account_id: str, group_name: str, path: str | None = "/") -> str:
    return f"arn:{PARTITION}:iam::{account_id}:group{_iam_path(path)}{group_name}"


def iam_policy_arn(account_id: str, policy_name: str, path: str | None = "/") -> str:
    """A customer managed policy's ARN; AWS managed policies use the account ``aws``."""
    return f"arn:{PARTITION}:iam::{account_id}:policy{_iam_path(path)}{policy_name}"


def iam_role_arn(account_id: str, role_name: str, path: str | None = "/") -> str:
    return f"arn:{PARTITION}:iam::{account_id}:role{_iam_path(path)}{role_name}"

"""What an on-premises instance's own credentials may do: least privilege, whatever registered it.

An instance's agent needs to read the bundles of the revisions deployed to it, and to speak to the
command service for itself (checked there: a request names the instance that signed it). Nothing else:
not other applications' bundles, not the bucket list. So the server grants an instance identity
``s3:GetObject`` / ``s3:GetObjectVersion`` on exactly those bundles (``instance_grant``), and reads the
policy that ``aws deploy register`` and ``opendeploy register`` put on the instance's IAM user
(``codedeploy-agent``: ``s3:Get*`` and ``s3:List*`` on ``*``, what the guide asks instances to have)
as that grant rather
than as access to every bucket (``is_registration_policy``). Any other policy an administrator attaches
to the instance's user grants what it says. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

REGISTRATION_POLICY_NAME = "codedeploy-agent"
# The inline policy both register commands put on an instance's IAM user.
REGISTRATION_POLICY: Mapping[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}],
}
BUNDLE_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")


def _normalised(document: Mapping[str, Any]) -> Any:
    statements = document.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        return None
    result = []
    for statement in statements:
        if not isinstance(statement, Mapping) or set(statement) - {"Sid", "Effect", "Action", "Resource"}:
            return None
        actions = statement.get("Action")
        actions = [actions] if isinstance(actions, str) else actions
        resources = statement.get("Resource")
        resources = [resources] if isinstance(resources, str) else resources
        if not isinstance(actions, list) or not isinstance(resources, list):
            return None
        result.append(
            (statement.get("Effect"), sorted(str(a).lower() for a in actions), sorted(map(str, resources)))
        )
    return sorted(result)


_REGISTRATION = _normalised(REGISTRATION_POLICY)


def is_registration_policy(name: str, document: str) -> bool:
    """Whether an inline policy is the one the register commands put on an instance's user (by name and
    by what it allows; whitespace, key order, Sids and the case of actions do not matter)."""
    if name != REGISTRATION_POLICY_NAME:
        return False
    try:
        parsed = json.loads(document)
    except ValueError:
        return False
    return isinstance(parsed, Mapping) and _normalised(parsed) == _REGISTRATION


def literal_resource(text: str) -> str:
    """``text`` as a resource pattern that matches only itself (IAM's ``${*}``, ``${?}``, ``${$}``)."""
    return text.replace("$", "${$}").replace("*", "${*}").replace("?", "${?}")


def instance_grant(bundles: Iterable[tuple[str, str]]) -> dict[str, Any] | None:
    """The policy that lets an instance read the bundles ``(bucket, key)`` deployed to it (None: none)."""
    resources = sorted({literal_resource(f"arn:aws:s3:::{bucket}/{key}") for bucket, key in bundles})
    if not resources:
        return None
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadBundlesDeployedHere",
                "Effect": "Allow",
                "Action": list(BUNDLE_ACTIONS),
                "Resource": resources,
            }
        ],
    }

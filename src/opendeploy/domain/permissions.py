"""What a request needs to be allowed: the vocabulary shared by the per-service permission tables.

``codedeploy_permissions``, ``s3_permissions`` and ``iam_permissions`` each turn one request into a
list of requirements (``Requirement``): a ``Permission`` (an IAM action on one resource ARN) or an
``AnyOf`` (satisfied when any one of its permissions is allowed; footnote ¹ of the guide's
permissions reference, L22826–22829: CreateDeployment needs "GetApplicationRevision or
RegisterApplicationRevision"). A request is allowed only when **every** requirement is met: the
policy evaluator decides each ``Permission`` on its own (explicit Deny wins, then Allow, else the
implicit deny; guide L21445–21494), and ``first_unmet`` combines those decisions and names the
permission an ``AccessDenied`` message should cite.

An empty list means the request needs no permission at all (only ``sts:GetCallerIdentity``, which
AWS answers for any valid credentials). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar


@dataclass(frozen=True)
class Permission:
    """One IAM action (``service:Operation``) on one resource ARN (or ``*``)."""

    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.action} on resource: {self.resource}"


@dataclass(frozen=True)
class AnyOf:
    """Met when at least one of ``options`` is allowed. An explicit Deny of one option does not deny
    the request when another option is allowed: each option is its own authorization question."""

    options: tuple[Permission, ...]

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError("AnyOf needs at least one permission")


Requirement = Permission | AnyOf


@dataclass(frozen=True)
class Scope:
    """Where the request is served: the region and account that own the resources it names."""

    region: str
    account_id: str


_R = TypeVar("_R", Permission, Requirement)


class UnknownOperation(KeyError):
    """The permission table has no entry for this operation: the caller must deny, never allow."""


def unique(requirements: Iterable[_R]) -> list[_R]:
    """``requirements`` without repeats, first occurrence kept (batch items often share a resource)."""
    return list(dict.fromkeys(requirements))


def permissions_of(requirements: Iterable[Requirement]) -> list[Permission]:
    """Every permission named, options of an ``AnyOf`` included (for audit records and debugging)."""
    result: list[Permission] = []
    for requirement in requirements:
        result.extend(requirement.options if isinstance(requirement, AnyOf) else (requirement,))
    return list(dict.fromkeys(result))


def first_unmet(
    requirements: Iterable[Requirement], is_allowed: Callable[[Permission], bool]
) -> Permission | None:
    """The first requirement ``is_allowed`` does not satisfy (for an ``AnyOf``: its first option, the
    one an AccessDenied message names), or ``None`` when the request is allowed.

    ``is_allowed`` is the evaluator's final decision for one permission (Deny wins within it). Stops at
    the first unmet requirement: AWS denies the whole call, batch operations included.
    """
    for requirement in requirements:
        if isinstance(requirement, AnyOf):
            if not any(is_allowed(option) for option in requirement.options):
                return requirement.options[0]
        elif not is_allowed(requirement):
            return requirement
    return None


# CloudTrail's ``readOnly`` (guide §7, L20492–20539): true for the operations that only read.
_READ_ONLY_PREFIXES = ("Get", "List", "BatchGet", "Describe", "Head", "Lookup")


def is_read_only(operation: str) -> bool:
    """CloudTrail's ``readOnly`` flag for an operation of any of the server's APIs (CodeDeploy, the
    command service, S3, IAM, STS): true for ``Get*``, ``List*``, ``BatchGet*``, ``Describe*``,
    ``Head*`` and ``Lookup*`` (CloudTrail's LookupEvents). ``PollHostCommand`` is not read-only: a
    poll hands a command to the agent."""
    return operation.startswith(_READ_ONLY_PREFIXES)

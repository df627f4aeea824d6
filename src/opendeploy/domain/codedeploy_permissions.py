"""The CodeDeploy permissions reference as code: for each request, the (action, resource) pairs that
must be allowed.

Source: the guide's "CodeDeploy permissions reference" (L22451–22837; digest
``spec/guide-rollback-monitoring-security.md`` §14 and §14.1), the ARN formats of L21609–21634 and
the "Authorization semantics this implies" there. The action is always ``codedeploy:<Operation>``
(L22459–22463). Resources are emitted in the canonical forms of ``domain.arns`` (``application:``,
``deploymentgroup:app/group``, ``deploymentconfig:`` — the reference's ``deploymentconfig/`` is
accepted on the *policy* side by the evaluator, L22489–22490 — and ``instance/``).

Rules the table implies (guide line of each entry in ``_TABLE``):

- Deployment-scoped operations are authorized on the deployment's deployment group, so the
  deployment id is resolved first through ``Lookup.deployment_group_of``. An id that names no
  deployment (unknown, malformed or absent) is authorized on ``deploymentgroup:*/*`` (a literal
  resource, not a pattern): only a caller allowed on every deployment group passes and then gets the
  handler's ``DeploymentDoesNotExistException``; anyone else gets AccessDenied exactly as for a
  deployment of a group they may not touch, so existence does not leak (AWS answers AccessDenied
  first as well).
- Footnote ¹ (L22826–22829): CreateDeployment also needs ``GetDeploymentConfig`` on the config it
  will use (the request's ``deploymentConfigName``, else the group's configured one, else
  ``CodeDeployDefault.OneAtATime``) and ``AnyOf(GetApplicationRevision, RegisterApplicationRevision)``
  on the application (Example 3, L22242–22282).
- Footnote ² (L22830–22832): ListDeployments is authorized on the deployment group only when both
  ``applicationName`` and ``deploymentGroupName`` are given, otherwise on ``*``.
- Footnote ³ (L22833–22837): UpdateApplication and a renaming UpdateDeploymentGroup need the action
  on both the old and the new name.
- Batch operations need the action on every item (one permission per distinct resource); AWS denies
  the whole call when one is not allowed, and so must the API layer (``permissions.first_unmet``).
  A batch with no items is authorized on the wildcard of its items' type, so no list is ever empty.
- Setting ``serviceRoleArn`` (CreateDeploymentGroup, UpdateDeploymentGroup) also needs
  ``iam:PassRole`` on that role (guide L22403–22419; digest "Security model to emulate").
- A required name missing from the request becomes ``*`` in its place (e.g. ``application:*``): the
  handler will refuse the request, and only a caller allowed on every such resource learns why.

Where the guide's table is silent or odd (decisions, each repeated at its entry):

- SkipWaitTimeForInstanceTermination: the table writes an instance ARN (L22789–22797, flagged in the
  digest §17.3), but the request names a deployment and no instance; it is the deprecated form of
  ContinueDeployment(TERMINATION_WAIT), so it is authorized like ContinueDeployment, on the
  deployment's group.
- BatchGetApplications and ListApplicationRevisions follow the guide literally (``application:*``,
  L22510, L22695), although the request names applications: a caller needs the action on all
  applications.
- Operations outside the guide (§14.1): the DeploymentTargets operations and
  PutLifecycleEventHookExecutionStatus act on a deployment, so on its group like the
  DeploymentInstances operations; TagResource, UntagResource and ListTagsForResource on the ARN the
  request gives (as given: a foreign or malformed ARN matches no policy of this account and the
  handler refuses it anyway); DeleteResourcesByExternalId deletes deployments of any group, so
  ``*`` (like ListDeployments without a group); DeleteGitHubAccountToken like
  ListGitHubAccountTokenNames, on ``arn:aws:codedeploy:<region>:<account>:*`` (L22748).
- The agent command service (guide §14.1, xref L25680–25684) uses the ``codedeploy-commands-secure:``
  prefix on ``*`` (``command_service_required``).

The API layer should validate the request against botocore's model first (names then carry no
``*``, ``?`` or ``/``), call ``required`` and check every requirement with the evaluator before the
handler runs. Pure: the only data it needs comes through ``Lookup``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from opendeploy.domain import arns
from opendeploy.domain.permissions import AnyOf, Permission, Requirement, Scope, UnknownOperation, unique

SERVICE_PREFIX = "codedeploy"
COMMAND_SERVICE_PREFIX = "codedeploy-commands-secure"
DEFAULT_DEPLOYMENT_CONFIG = "CodeDeployDefault.OneAtATime"
ANY_NAME = "*"


class Lookup(Protocol):
    """What the permission table needs from the database (the API layer implements it)."""

    def deployment_group_of(self, deployment_id: str) -> tuple[str, str] | None:
        """``(application name, deployment group name)`` of the deployment, ``None`` if there is none.

        A deployment whose group has been deleted still answers with the names it was created in
        (the deployment record keeps them), so its ARN stays the one policies were written for."""
        ...

    def deployment_config_of_group(self, application_name: str, deployment_group_name: str) -> str | None:
        """The deployment configuration the group is configured with, ``None`` if there is no such group."""
        ...


@dataclass
class InMemoryLookup:
    """A ``Lookup`` over dicts, for tests."""

    deployments: dict[str, tuple[str, str]] = field(default_factory=dict)
    group_configs: dict[tuple[str, str], str] = field(default_factory=dict)

    def deployment_group_of(self, deployment_id: str) -> tuple[str, str] | None:
        return self.deployments.get(deployment_id)

    def deployment_config_of_group(self, application_name: str, deployment_group_name: str) -> str | None:
        return self.group_configs.get((application_name, deployment_group_name))


@dataclass(frozen=True)
class _Request:
    operation: str
    params: Mapping[str, Any]
    scope: Scope
    lookup: Lookup

    def name(self, member: str) -> str:
        value = self.params.get(member)
        return value if isinstance(value, str) and value else ANY_NAME

    def names(self, member: str) -> list[str]:
        values = self.params.get(member) or []
        return [value for value in values if isinstance(value, str) and value]

    def allow(self, resource: str, operation: str | None = None) -> Permission:
        return Permission(f"{SERVICE_PREFIX}:{operation or self.operation}", resource)

    # --- resources -------------------------------------------------------------------------------

    def application(self, name: str) -> str:
        return arns.application_arn(self.scope.region, self.scope.account_id, name)

    def group(self, application: str, group: str) -> str:
        return arns.deployment_group_arn(self.scope.region, self.scope.account_id, application, group)

    def config(self, name: str) -> str:
        return arns.deployment_config_arn(self.scope.region, self.scope.account_id, name)

    def instance(self, name: str) -> str:
        return arns.instance_arn(self.scope.region, self.scope.account_id, name)

    def account(self) -> str:
        return arns.account_resources_arn(self.scope.region, self.scope.account_id)

    def group_of_deployment(self, deployment_id: object) -> str:
        """The deployment's group ARN; ``deploymentgroup:*/*`` when no deployment has this id."""
        found = (
            self.lookup.deployment_group_of(deployment_id)
            if isinstance(deployment_id, str) and deployment_id
            else None
        )
        return self.group(*found) if found is not None else self.group(ANY_NAME, ANY_NAME)


Rule = Callable[[_Request], list[Requirement]]


# --- rules, one per shape of entry in the table ----------------------------------------------------


def _on_application(member: str = "applicationName") -> Rule:
    return lambda r: [r.allow(r.application(r.name(member)))]


def _on_all_applications(r: _Request) -> list[Requirement]:
    return [r.allow(r.application(ANY_NAME))]


def _on_config(r: _Request) -> list[Requirement]:
    return [r.allow(r.config(r.name("deploymentConfigName")))]


def _on_all_configs(r: _Request) -> list[Requirement]:
    return [r.allow(r.config(ANY_NAME))]


def _on_group(group_member: str = "deploymentGroupName") -> Rule:
    return lambda r: [r.allow(r.group(r.name("applicationName"), r.name(group_member)))]


def _on_deployment_group(r: _Request) -> list[Requirement]:
    """Deployment-scoped: the group of ``deploymentId``."""
    return [r.allow(r.group_of_deployment(r.params.get("deploymentId")))]


def _on_instance(r: _Request) -> list[Requirement]:
    return [r.allow(r.instance(r.name("instanceName")))]


def _on_instances(r: _Request) -> list[Requirement]:
    """One permission per instance named in ``instanceNames``."""
    return [r.allow(r.instance(name)) for name in r.names("instanceNames") or [ANY_NAME]]


def _on_account(r: _Request) -> list[Requirement]:
    return [r.allow(r.account())]


def _on_everything(r: _Request) -> list[Requirement]:
    return [r.allow("*")]


def _on_given_arn(r: _Request) -> list[Requirement]:
    return [r.allow(r.name("ResourceArn"))]


def _pass_role(r: _Request) -> list[Requirement]:
    role = r.params.get("serviceRoleArn")
    return [Permission("iam:PassRole", role)] if isinstance(role, str) and role else []


# --- entries that need more than one resource ------------------------------------------------------


def _create_deployment(r: _Request) -> list[Requirement]:
    """Footnote ¹ (L22826–22829) and Example 3 (L22242–22282)."""
    application, group = r.name("applicationName"), r.name("deploymentGroupName")
    config = r.params.get("deploymentConfigName")
    if not (isinstance(config, str) and config) and ANY_NAME not in (application, group):
        config = r.lookup.deployment_config_of_group(application, group)
    if not (isinstance(config, str) and config):
        config = DEFAULT_DEPLOYMENT_CONFIG
    return [
        r.allow(r.group(application, group)),
        r.allow(r.config(config), "GetDeploymentConfig"),
        AnyOf(
            (
                r.allow(r.application(application), "GetApplicationRevision"),
                r.allow(r.application(application), "RegisterApplicationRevision"),
            )
        ),
    ]


def _update_application(r: _Request) -> list[Requirement]:
    """Footnote ³ (L22833–22835): both the old and the new name."""
    names = [r.name("applicationName")]
    new = r.params.get("newApplicationName")
    if isinstance(new, str) and new:
        names.append(new)
    return [r.allow(r.application(name)) for name in names]


def _create_deployment_group(r: _Request) -> list[Requirement]:
    return [*_on_group()(r), *_pass_role(r)]


def _update_deployment_group(r: _Request) -> list[Requirement]:
    """Footnote ³ (L22835–22837): a rename needs the action on both names; a new role needs PassRole."""
    application = r.name("applicationName")
    groups = [r.name("currentDeploymentGroupName")]
    new = r.params.get("newDeploymentGroupName")
    if isinstance(new, str) and new:
        groups.append(new)
    return [*(r.allow(r.group(application, group)) for group in groups), *_pass_role(r)]


def _batch_get_deployment_groups(r: _Request) -> list[Requirement]:
    application = r.name("applicationName")
    groups = r.names("deploymentGroupNames") or [ANY_NAME]
    return [r.allow(r.group(application, group)) for group in groups]


def _batch_get_deployments(r: _Request) -> list[Requirement]:
    ids: Iterable[object] = r.params.get("deploymentIds") or [None]
    return [r.allow(r.group_of_deployment(deployment_id)) for deployment_id in ids]


def _list_deployments(r: _Request) -> list[Requirement]:
    """Footnote ² (L22830–22832): the group only when one is given, else ``*``."""
    application, group = r.params.get("applicationName"), r.params.get("deploymentGroupName")
    if isinstance(application, str) and application and isinstance(group, str) and group:
        return [r.allow(r.group(application, group))]
    return [r.allow("*")]


# operation -> (rule, guide line of its entry in the permissions reference, or where it is decided)
_TABLE: dict[str, tuple[Rule, str]] = {
    "AddTagsToOnPremisesInstances": (_on_instances, "L22494"),
    "BatchGetApplicationRevisions": (_on_application(), "L22501"),
    "BatchGetApplications": (_on_all_applications, "L22510"),  # application:* as the guide writes
    "BatchGetDeploymentGroups": (_batch_get_deployment_groups, "L22518"),
    "BatchGetDeploymentInstances": (_on_deployment_group, "L22527"),
    "BatchGetDeployments": (_batch_get_deployments, "L22536"),
    "BatchGetOnPremisesInstances": (_on_account, "L22544"),
    "ContinueDeployment": (_on_deployment_group, "L22552"),
    "CreateApplication": (_on_application(), "L22562"),
    "CreateDeployment": (_create_deployment, "L22571, footnote 1 L22826"),
    "CreateDeploymentConfig": (_on_config, "L22580"),
    "CreateDeploymentGroup": (_create_deployment_group, "L22588, PassRole L22403"),
    "DeleteApplication": (_on_application(), "L22597"),
    "DeleteDeploymentConfig": (_on_config, "L22606"),
    "DeleteDeploymentGroup": (_on_group(), "L22615"),
    "DeregisterOnPremisesInstance": (_on_instance, "L22624"),
    "GetApplication": (_on_application(), "L22632"),
    "GetApplicationRevision": (_on_application(), "L22640"),
    "GetDeployment": (_on_deployment_group, "L22650"),
    "GetDeploymentConfig": (_on_config, "L22660"),
    "GetDeploymentGroup": (_on_group(), "L22669"),
    "GetDeploymentInstance": (_on_deployment_group, "L22679"),
    "GetOnPremisesInstance": (_on_instance, "L22687"),
    "ListApplicationRevisions": (_on_all_applications, "L22695"),  # application:* as the guide writes
    "ListApplications": (_on_all_applications, "L22704"),
    "ListDeploymentConfigs": (_on_all_configs, "L22712"),
    "ListDeploymentGroups": (
        lambda r: [r.allow(r.group(r.name("applicationName"), ANY_NAME))],
        "L22720",
    ),
    "ListDeploymentInstances": (_on_deployment_group, "L22729"),
    "ListDeployments": (_list_deployments, "L22738, footnote 2 L22830"),
    "ListGitHubAccountTokenNames": (_on_account, "L22748"),
    "ListOnPremisesInstances": (_on_account, "L22756"),
    "RegisterApplicationRevision": (_on_application(), "L22764"),
    "RegisterOnPremisesInstance": (_on_instance, "L22774"),
    "RemoveTagsFromOnPremisesInstances": (_on_instances, "L22781"),
    # The guide writes an instance ARN; the request names only a deployment (see module docstring).
    "SkipWaitTimeForInstanceTermination": (_on_deployment_group, "L22789 (decided: as ContinueDeployment)"),
    "StopDeployment": (_on_deployment_group, "L22798"),
    "UpdateApplication": (_update_application, "L22808, footnote 3 L22833"),
    "UpdateDeploymentGroup": (_update_deployment_group, "L22817, footnote 3 L22835"),
    # Not in the guide's table (§14.1): decided by analogy, see the module docstring.
    "PutLifecycleEventHookExecutionStatus": (_on_deployment_group, "§14.1 (L8345): the deployment's group"),
    "DeleteGitHubAccountToken": (_on_account, "§14.1 (L27588): as ListGitHubAccountTokenNames"),
    "GetDeploymentTarget": (_on_deployment_group, "§14.1 [EXTERNAL]: as GetDeploymentInstance"),
    "ListDeploymentTargets": (_on_deployment_group, "§14.1 [EXTERNAL]: as ListDeploymentInstances"),
    "BatchGetDeploymentTargets": (_on_deployment_group, "§14.1 [EXTERNAL]: as BatchGetDeploymentInstances"),
    "DeleteResourcesByExternalId": (_on_everything, "§14.1 [EXTERNAL]: deployments of any group"),
    "TagResource": (_on_given_arn, "§14.1 [EXTERNAL]: the ARN given"),
    "UntagResource": (_on_given_arn, "§14.1 [EXTERNAL]: the ARN given"),
    "ListTagsForResource": (_on_given_arn, "§14.1 [EXTERNAL]: the ARN given"),
}

OPERATIONS: frozenset[str] = frozenset(_TABLE)

# The agent command service (guide §14.1, xref L25680–25684); PostHostCommandUpdate is the fifth
# operation of the wire protocol (spec/agent-wire-protocol-and-behaviour.md).
COMMAND_SERVICE_OPERATIONS: frozenset[str] = frozenset(
    {
        "PollHostCommand",
        "GetDeploymentSpecification",
        "PutHostCommandAcknowledgement",
        "PutHostCommandComplete",
        "PostHostCommandUpdate",
    }
)


def required(operation: str, params: Mapping[str, Any], scope: Scope, lookup: Lookup) -> list[Requirement]:
    """What a CodeDeploy API request needs: every requirement must be met (never an empty list).

    ``params`` are the request's members in wire form (as validated against botocore's model).
    Raises ``UnknownOperation`` for an operation the table does not know.
    """
    entry = _TABLE.get(operation)
    if entry is None:
        raise UnknownOperation(operation)
    return unique(entry[0](_Request(operation, params, scope, lookup)))


def guide_reference(operation: str) -> str:
    """Where the guide (or the decision in this module) gives the operation's resource."""
    entry = _TABLE.get(operation)
    if entry is None:
        raise UnknownOperation(operation)
    return entry[1]


def command_service_required(operation: str) -> list[Requirement]:
    """What an agent command service request needs: ``codedeploy-commands-secure:<Operation>`` on ``*``."""
    if operation not in COMMAND_SERVICE_OPERATIONS:
        raise UnknownOperation(operation)
    return [Permission(f"{COMMAND_SERVICE_PREFIX}:{operation}", "*")]


def request_context(operation: str, params: Mapping[str, Any]) -> dict[str, list[str]]:
    """Condition keys the request itself sets: ``aws:RequestTag/<key>`` and ``aws:TagKeys`` for the
    operations that carry tags (CreateApplication, CreateDeploymentGroup, TagResource) or tag keys
    (UntagResource). Values are lists, as multivalued keys are for ``ForAnyValue``/``ForAllValues``."""
    context: dict[str, list[str]] = {}
    tags: Sequence[Mapping[str, Any]] = ()
    if operation in ("CreateApplication", "CreateDeploymentGroup"):
        tags = params.get("tags") or ()
    elif operation == "TagResource":
        tags = params.get("Tags") or ()
    keys: list[str] = []
    for tag in tags:
        key = tag.get("Key")
        if isinstance(key, str):
            keys.append(key)
            context[f"aws:RequestTag/{key}"] = [str(tag.get("Value") or "")]
    if operation == "UntagResource":
        keys = [key for key in params.get("TagKeys") or () if isinstance(key, str)]
    if keys:
        context["aws:TagKeys"] = keys
    return context

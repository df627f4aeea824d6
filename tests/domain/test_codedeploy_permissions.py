"""The CodeDeploy permissions reference as code (guide L22451–22837, digest §14 and §14.1)."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from opendeploy.domain import codedeploy_permissions as cd
from opendeploy.domain.permissions import (
    AnyOf,
    Permission,
    Requirement,
    Scope,
    UnknownOperation,
    first_unmet,
    is_read_only,
    permissions_of,
)

REGION, ACCOUNT = "us-west-2", "444455556666"
SCOPE = Scope(REGION, ACCOUNT)
PREFIX = f"arn:aws:codedeploy:{REGION}:{ACCOUNT}"
DEPLOYMENT = "d-ABCDEF123"
OTHER_DEPLOYMENT = "d-XYZXYZ789"
MISSING_DEPLOYMENT = "d-NOTHERE00"
LOOKUP = cd.InMemoryLookup(
    deployments={DEPLOYMENT: ("WordPress_App", "WordPress_DepGroup"), OTHER_DEPLOYMENT: ("App2", "Group2")},
    group_configs={("WordPress_App", "WordPress_DepGroup"): "ThreeQuartersHealthy"},
)

APP = f"{PREFIX}:application:WordPress_App"
GROUP = f"{PREFIX}:deploymentgroup:WordPress_App/WordPress_DepGroup"
ANY_GROUP = f"{PREFIX}:deploymentgroup:*/*"
ACCOUNT_WIDE = f"{PREFIX}:*"
ROLE = "arn:aws:iam::444455556666:role/CodeDeployServiceRole"
REVISION = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "zip"}}


def allow(operation: str, resource: str) -> Permission:
    return Permission(f"codedeploy:{operation}", resource)


def required(operation: str, **params: Any) -> list[Requirement]:
    return cd.required(operation, params, SCOPE, LOOKUP)


# operation -> (request parameters, the resources codedeploy:<operation> is required on); every one of
# the 47 operations the server registers has a row. Multi-permission operations are tested below too.
TABLE: dict[str, tuple[dict[str, Any], list[str]]] = {
    "AddTagsToOnPremisesInstances": (
        {"tags": [{"Key": "k", "Value": "v"}], "instanceNames": ["i-1", "i-2"]},
        [f"{PREFIX}:instance/i-1", f"{PREFIX}:instance/i-2"],
    ),
    "BatchGetApplicationRevisions": ({"applicationName": "WordPress_App", "revisions": [REVISION]}, [APP]),
    "BatchGetApplications": ({"applicationNames": ["WordPress_App", "Other"]}, [f"{PREFIX}:application:*"]),
    "BatchGetDeploymentGroups": (
        {"applicationName": "WordPress_App", "deploymentGroupNames": ["WordPress_DepGroup", "Other"]},
        [GROUP, f"{PREFIX}:deploymentgroup:WordPress_App/Other"],
    ),
    "BatchGetDeploymentInstances": ({"deploymentId": DEPLOYMENT, "instanceIds": ["i-1"]}, [GROUP]),
    "BatchGetDeploymentTargets": ({"deploymentId": DEPLOYMENT, "targetIds": ["i-1"]}, [GROUP]),
    "BatchGetDeployments": (
        {"deploymentIds": [DEPLOYMENT, OTHER_DEPLOYMENT]},
        [GROUP, f"{PREFIX}:deploymentgroup:App2/Group2"],
    ),
    "BatchGetOnPremisesInstances": ({"instanceNames": ["i-1"]}, [ACCOUNT_WIDE]),
    "ContinueDeployment": ({"deploymentId": DEPLOYMENT, "deploymentWaitType": "READY_WAIT"}, [GROUP]),
    "CreateApplication": ({"applicationName": "WordPress_App"}, [APP]),
    "CreateDeployment": (
        {
            "applicationName": "WordPress_App",
            "deploymentGroupName": "WordPress_DepGroup",
            "revision": REVISION,
        },
        [GROUP],
    ),
    "CreateDeploymentConfig": ({"deploymentConfigName": "Custom"}, [f"{PREFIX}:deploymentconfig:Custom"]),
    "CreateDeploymentGroup": (
        {
            "applicationName": "WordPress_App",
            "deploymentGroupName": "WordPress_DepGroup",
            "serviceRoleArn": ROLE,
        },
        [GROUP],
    ),
    "DeleteApplication": ({"applicationName": "WordPress_App"}, [APP]),
    "DeleteDeploymentConfig": ({"deploymentConfigName": "Custom"}, [f"{PREFIX}:deploymentconfig:Custom"]),
    "DeleteDeploymentGroup": (
        {"applicationName": "WordPress_App", "deploymentGroupName": "WordPress_DepGroup"},
        [GROUP],
    ),
    "DeleteGitHubAccountToken": ({"tokenName": "my-token"}, [ACCOUNT_WIDE]),
    "DeleteResourcesByExternalId": ({"externalId": "stack-1"}, ["*"]),
    "DeregisterOnPremisesInstance": ({"instanceName": "i-1"}, [f"{PREFIX}:instance/i-1"]),
    "GetApplication": ({"applicationName": "WordPress_App"}, [APP]),
    "GetApplicationRevision": ({"applicationName": "WordPress_App", "revision": REVISION}, [APP]),
    "GetDeployment": ({"deploymentId": DEPLOYMENT}, [GROUP]),
    "GetDeploymentConfig": (
        {"deploymentConfigName": "CodeDeployDefault.AllAtOnce"},
        [f"{PREFIX}:deploymentconfig:CodeDeployDefault.AllAtOnce"],
    ),
    "GetDeploymentGroup": (
        {"applicationName": "WordPress_App", "deploymentGroupName": "WordPress_DepGroup"},
        [GROUP],
    ),
    "GetDeploymentInstance": ({"deploymentId": DEPLOYMENT, "instanceId": "i-1"}, [GROUP]),
    "GetDeploymentTarget": ({"deploymentId": DEPLOYMENT, "targetId": "i-1"}, [GROUP]),
    "GetOnPremisesInstance": ({"instanceName": "i-1"}, [f"{PREFIX}:instance/i-1"]),
    "ListApplicationRevisions": ({"applicationName": "WordPress_App"}, [f"{PREFIX}:application:*"]),
    "ListApplications": ({}, [f"{PREFIX}:application:*"]),
    "ListDeploymentConfigs": ({}, [f"{PREFIX}:deploymentconfig:*"]),
    "ListDeploymentGroups": (
        {"applicationName": "WordPress_App"},
        [f"{PREFIX}:deploymentgroup:WordPress_App/*"],
    ),
    "ListDeploymentInstances": ({"deploymentId": DEPLOYMENT}, [GROUP]),
    "ListDeploymentTargets": ({"deploymentId": DEPLOYMENT}, [GROUP]),
    "ListDeployments": (
        {"applicationName": "WordPress_App", "deploymentGroupName": "WordPress_DepGroup"},
        [GROUP],
    ),
    "ListGitHubAccountTokenNames": ({}, [ACCOUNT_WIDE]),
    "ListOnPremisesInstances": ({"registrationStatus": "Registered"}, [ACCOUNT_WIDE]),
    "ListTagsForResource": ({"ResourceArn": APP}, [APP]),
    "PutLifecycleEventHookExecutionStatus": (
        {"deploymentId": DEPLOYMENT, "lifecycleEventHookExecutionId": "h-1", "status": "Succeeded"},
        [GROUP],
    ),
    "RegisterApplicationRevision": ({"applicationName": "WordPress_App", "revision": REVISION}, [APP]),
    "RegisterOnPremisesInstance": (
        {"instanceName": "i-1", "iamUserArn": "arn:aws:iam::444455556666:user/onprem"},
        [f"{PREFIX}:instance/i-1"],
    ),
    "RemoveTagsFromOnPremisesInstances": (
        {"tags": [{"Key": "k"}], "instanceNames": ["i-1"]},
        [f"{PREFIX}:instance/i-1"],
    ),
    "SkipWaitTimeForInstanceTermination": ({"deploymentId": DEPLOYMENT}, [GROUP]),
    "StopDeployment": ({"deploymentId": DEPLOYMENT}, [GROUP]),
    "TagResource": ({"ResourceArn": GROUP, "Tags": [{"Key": "team", "Value": "a"}]}, [GROUP]),
    "UntagResource": (
        {"ResourceArn": f"{PREFIX}:deploymentconfig:Custom", "TagKeys": ["team"]},
        [f"{PREFIX}:deploymentconfig:Custom"],
    ),
    "UpdateApplication": ({"applicationName": "WordPress_App"}, [APP]),
    "UpdateDeploymentGroup": (
        {"applicationName": "WordPress_App", "currentDeploymentGroupName": "WordPress_DepGroup"},
        [GROUP],
    ),
}


def registered_operations() -> set[str]:
    from opendeploy.api.app import import_handlers
    from opendeploy.api.codedeploy.registry import OPERATIONS

    import_handlers()
    return set(OPERATIONS)


def test_every_operation_the_server_registers_has_a_mapping() -> None:
    registered = registered_operations()
    assert len(registered) == 47
    assert registered - cd.OPERATIONS == set(), "operations the server serves with no permission mapping"
    assert cd.OPERATIONS - registered == set(), "mappings for operations the server does not serve"
    assert set(TABLE) == registered


def test_the_mapping_covers_botocore_s_whole_codedeploy_model() -> None:
    model = botocore.session.get_session().get_service_model("codedeploy")
    assert set(model.operation_names) == set(cd.OPERATIONS)


@pytest.mark.parametrize("operation", sorted(TABLE))
def test_each_operation_requires_its_own_action_on_the_guide_s_resource(operation: str) -> None:
    params, resources = TABLE[operation]
    requirements = required(operation, **params)
    own = [r for r in requirements if isinstance(r, Permission) and r.action == f"codedeploy:{operation}"]
    assert own == [allow(operation, resource) for resource in resources]
    assert requirements, "never an empty list"
    assert cd.guide_reference(operation)


@pytest.mark.parametrize("operation", sorted(TABLE))
def test_every_operation_with_no_parameters_still_requires_something(operation: str) -> None:
    requirements = required(operation)
    assert requirements
    assert all(isinstance(r, (Permission, AnyOf)) for r in requirements)


def test_the_single_operation_entries_need_nothing_else() -> None:
    multi = {"CreateDeployment", "CreateDeploymentGroup"}
    for operation, (params, resources) in TABLE.items():
        if operation not in multi:
            assert len(required(operation, **params)) == len(resources), operation


# --- footnote 1: CreateDeployment (L22826–22829) and Example 3 (L22242–22282) ---------------------------


def test_example_3_the_three_permissions_create_deployment_needs() -> None:
    requirements = required(
        "CreateDeployment",
        applicationName="WordPress_App",
        deploymentGroupName="WordPress_DepGroup",
        deploymentConfigName="ThreeQuartersHealthy",
        revision=REVISION,
    )
    assert requirements == [
        allow("CreateDeployment", GROUP),
        allow("GetDeploymentConfig", f"{PREFIX}:deploymentconfig:ThreeQuartersHealthy"),
        AnyOf((allow("GetApplicationRevision", APP), allow("RegisterApplicationRevision", APP))),
    ]
    # Example 3's policy: exactly these three statements allow the deployment.
    example_3 = {
        allow("CreateDeployment", GROUP),
        allow("GetDeploymentConfig", f"{PREFIX}:deploymentconfig:ThreeQuartersHealthy"),
        allow("GetApplicationRevision", APP),
    }
    assert first_unmet(requirements, example_3.__contains__) is None
    for missing in example_3:
        assert first_unmet(requirements, (example_3 - {missing}).__contains__) == missing


def test_create_deployment_either_revision_permission_suffices() -> None:
    requirements = required(
        "CreateDeployment", applicationName="WordPress_App", deploymentGroupName="WordPress_DepGroup"
    )
    base = {
        allow("CreateDeployment", GROUP),
        allow("GetDeploymentConfig", f"{PREFIX}:deploymentconfig:ThreeQuartersHealthy"),
    }
    assert (
        first_unmet(requirements, (base | {allow("RegisterApplicationRevision", APP)}).__contains__) is None
    )
    assert first_unmet(requirements, base.__contains__) == allow("GetApplicationRevision", APP)


def test_create_deployment_uses_the_group_s_configuration_when_the_request_names_none() -> None:
    requirements = required(
        "CreateDeployment", applicationName="WordPress_App", deploymentGroupName="WordPress_DepGroup"
    )
    assert allow("GetDeploymentConfig", f"{PREFIX}:deploymentconfig:ThreeQuartersHealthy") in requirements


def test_create_deployment_defaults_to_one_at_a_time_when_the_group_is_unknown() -> None:
    requirements = required("CreateDeployment", applicationName="New", deploymentGroupName="Group")
    assert requirements[:2] == [
        allow("CreateDeployment", f"{PREFIX}:deploymentgroup:New/Group"),
        allow("GetDeploymentConfig", f"{PREFIX}:deploymentconfig:CodeDeployDefault.OneAtATime"),
    ]


def test_create_deployment_the_request_s_configuration_wins_over_the_group_s() -> None:
    requirements = required(
        "CreateDeployment",
        applicationName="WordPress_App",
        deploymentGroupName="WordPress_DepGroup",
        deploymentConfigName="CodeDeployDefault.AllAtOnce",
    )
    assert (
        allow("GetDeploymentConfig", f"{PREFIX}:deploymentconfig:CodeDeployDefault.AllAtOnce") in requirements
    )


# --- footnote 2: ListDeployments (L22830–22832) -----------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{}, {"applicationName": "WordPress_App"}, {"deploymentGroupName": "G"}, {"externalId": "stack"}],
)
def test_list_deployments_without_a_group_needs_star(params: dict[str, Any]) -> None:
    assert required("ListDeployments", **params) == [allow("ListDeployments", "*")]


# --- footnote 3: renames (L22833–22837) ---------------------------------------------------------------


def test_update_application_rename_needs_both_names() -> None:
    assert required("UpdateApplication", applicationName="WordPress_App", newApplicationName="Blog") == [
        allow("UpdateApplication", APP),
        allow("UpdateApplication", f"{PREFIX}:application:Blog"),
    ]


def test_update_application_to_the_same_name_needs_it_once() -> None:
    assert required(
        "UpdateApplication", applicationName="WordPress_App", newApplicationName="WordPress_App"
    ) == [allow("UpdateApplication", APP)]


def test_update_deployment_group_rename_needs_both_names_and_pass_role_for_a_new_role() -> None:
    assert required(
        "UpdateDeploymentGroup",
        applicationName="WordPress_App",
        currentDeploymentGroupName="WordPress_DepGroup",
        newDeploymentGroupName="Blue",
        serviceRoleArn=ROLE,
    ) == [
        allow("UpdateDeploymentGroup", GROUP),
        allow("UpdateDeploymentGroup", f"{PREFIX}:deploymentgroup:WordPress_App/Blue"),
        Permission("iam:PassRole", ROLE),
    ]


def test_create_deployment_group_passes_its_service_role() -> None:
    params, _ = TABLE["CreateDeploymentGroup"]
    assert required("CreateDeploymentGroup", **params) == [
        allow("CreateDeploymentGroup", GROUP),
        Permission("iam:PassRole", ROLE),
    ]


# --- deployment-scoped operations: resolution and nonexistent ids ------------------------------------


DEPLOYMENT_SCOPED = [
    "GetDeployment",
    "StopDeployment",
    "ContinueDeployment",
    "SkipWaitTimeForInstanceTermination",
    "ListDeploymentInstances",
    "GetDeploymentInstance",
    "BatchGetDeploymentInstances",
    "GetDeploymentTarget",
    "ListDeploymentTargets",
    "BatchGetDeploymentTargets",
    "PutLifecycleEventHookExecutionStatus",
]


@pytest.mark.parametrize("operation", DEPLOYMENT_SCOPED)
@pytest.mark.parametrize("deployment_id", [MISSING_DEPLOYMENT, "not-an-id", "", None])
def test_a_deployment_that_does_not_exist_is_authorized_on_every_group(
    operation: str, deployment_id: str | None
) -> None:
    assert required(operation, deploymentId=deployment_id) == [allow(operation, ANY_GROUP)]


def test_batch_get_deployments_one_permission_per_group_and_missing_ids_on_every_group() -> None:
    requirements = required(
        "BatchGetDeployments", deploymentIds=[DEPLOYMENT, MISSING_DEPLOYMENT, DEPLOYMENT, OTHER_DEPLOYMENT]
    )
    assert requirements == [
        allow("BatchGetDeployments", GROUP),
        allow("BatchGetDeployments", ANY_GROUP),
        allow("BatchGetDeployments", f"{PREFIX}:deploymentgroup:App2/Group2"),
    ]


def test_a_batch_is_denied_as_a_whole_when_one_item_is_not_allowed() -> None:
    requirements = required("BatchGetDeployments", deploymentIds=[DEPLOYMENT, OTHER_DEPLOYMENT])
    allowed = {allow("BatchGetDeployments", GROUP)}
    assert first_unmet(requirements, allowed.__contains__) == allow(
        "BatchGetDeployments", f"{PREFIX}:deploymentgroup:App2/Group2"
    )


@pytest.mark.parametrize(
    ("operation", "params", "resource"),
    [
        ("BatchGetDeployments", {"deploymentIds": []}, ANY_GROUP),
        (
            "BatchGetDeploymentGroups",
            {"applicationName": "A", "deploymentGroupNames": []},
            f"{PREFIX}:deploymentgroup:A/*",
        ),
        ("AddTagsToOnPremisesInstances", {"instanceNames": [], "tags": []}, f"{PREFIX}:instance/*"),
    ],
)
def test_an_empty_batch_is_authorized_on_the_wildcard_of_its_items(
    operation: str, params: dict[str, Any], resource: str
) -> None:
    assert required(operation, **params) == [allow(operation, resource)]


def test_missing_names_become_wildcards() -> None:
    assert required("GetApplication") == [allow("GetApplication", f"{PREFIX}:application:*")]
    assert required("GetDeploymentGroup", applicationName="A") == [
        allow("GetDeploymentGroup", f"{PREFIX}:deploymentgroup:A/*")
    ]


def test_tag_operations_use_the_arn_given_as_given() -> None:
    foreign = "arn:aws:codedeploy:eu-west-1:111122223333:application:Theirs"
    assert required("ListTagsForResource", ResourceArn=foreign) == [allow("ListTagsForResource", foreign)]


def test_the_guide_s_policy_examples_resources() -> None:
    """L22146–22163: DeleteDeploymentGroup on WordPress_App/WordPress_DepGroup; Example 2 (L22222–22240):
    RegisterApplicationRevision on an application."""
    assert required(
        "DeleteDeploymentGroup", applicationName="WordPress_App", deploymentGroupName="WordPress_DepGroup"
    ) == [allow("DeleteDeploymentGroup", GROUP)]
    assert required("RegisterApplicationRevision", applicationName="TestApp", revision=REVISION) == [
        allow("RegisterApplicationRevision", f"{PREFIX}:application:TestApp")
    ]


def test_unknown_operation_raises() -> None:
    with pytest.raises(UnknownOperation):
        cd.required("DeleteEverything", {}, SCOPE, LOOKUP)
    with pytest.raises(UnknownOperation):
        cd.command_service_required("GetApplication")


# --- the agent command service ------------------------------------------------------------------------


@pytest.mark.parametrize("operation", sorted(cd.COMMAND_SERVICE_OPERATIONS))
def test_command_service_operations_use_their_own_prefix_on_star(operation: str) -> None:
    assert cd.command_service_required(operation) == [
        Permission(f"codedeploy-commands-secure:{operation}", "*")
    ]


def test_command_service_operations_are_the_model_s() -> None:
    import json
    from importlib import resources

    path = resources.files("opendeploy.data") / "botocore/codedeploy-commands/2014-10-06/service-2.json"
    assert set(json.loads(path.read_text())["operations"]) == cd.COMMAND_SERVICE_OPERATIONS


# --- CloudTrail readOnly, request context, helpers ----------------------------------------------------


def test_read_only_flags() -> None:
    read_only = {op for op in cd.OPERATIONS if is_read_only(op)}
    assert read_only == {op for op in cd.OPERATIONS if op.startswith(("Get", "List", "BatchGet"))}
    assert "CreateDeployment" not in read_only and "GetDeployment" in read_only
    assert not is_read_only("PollHostCommand")
    assert is_read_only("GetDeploymentSpecification")


def test_request_context_carries_request_tags_and_tag_keys() -> None:
    assert cd.request_context(
        "CreateApplication", {"applicationName": "A", "tags": [{"Key": "team", "Value": "blue"}]}
    ) == {"aws:RequestTag/team": ["blue"], "aws:TagKeys": ["team"]}
    assert cd.request_context("UntagResource", {"ResourceArn": APP, "TagKeys": ["a", "b"]}) == {
        "aws:TagKeys": ["a", "b"]
    }
    assert cd.request_context("GetApplication", {"applicationName": "A"}) == {}


def test_permissions_of_flattens_any_of() -> None:
    requirements = required(
        "CreateDeployment", applicationName="WordPress_App", deploymentGroupName="WordPress_DepGroup"
    )
    assert permissions_of(requirements)[-2:] == [
        allow("GetApplicationRevision", APP),
        allow("RegisterApplicationRevision", APP),
    ]


def test_any_of_needs_an_option_and_first_unmet_names_its_first() -> None:
    with pytest.raises(ValueError):
        AnyOf(())
    either = AnyOf((allow("GetApplicationRevision", APP), allow("RegisterApplicationRevision", APP)))
    assert first_unmet([either], lambda _: False) == allow("GetApplicationRevision", APP)
    assert first_unmet([], lambda _: False) is None
    assert str(allow("GetApplication", APP)) == f"codedeploy:GetApplication on resource: {APP}"

"""Application revisions through boto3 against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from test_deployment_targets import ROLE, EngineRecords, wait_until_completed

from support.names import unique


def _s3(key: str, bucket: str = "revisions-bucket", **extra: str) -> dict[str, Any]:
    return {"revisionType": "S3", "s3Location": {"bucket": bucket, "key": key, "bundleType": "zip", **extra}}


GITHUB = {
    "revisionType": "GitHub",
    "gitHubLocation": {"repository": "awslabs/aws-codedeploy-sample-tomcat", "commitId": "a" * 40},
}


def _application(codedeploy: Any, platform: str = "Server") -> str:
    name = unique("app")
    codedeploy.create_application(applicationName=name, computePlatform=platform)
    return name


def test_register_and_get(codedeploy):
    application = _application(codedeploy)
    before = time.time()
    codedeploy.register_application_revision(
        applicationName=application, revision=_s3("app.zip"), description="first upload"
    )
    answer = codedeploy.get_application_revision(applicationName=application, revision=_s3("app.zip"))
    assert answer["applicationName"] == application
    assert answer["revision"] == _s3("app.zip")
    info = answer["revisionInfo"]
    assert info["description"] == "first upload"
    assert info["deploymentGroups"] == []
    assert before - 1 <= info["registerTime"].timestamp() <= time.time() + 1
    assert "firstUsedTime" not in info and "lastUsedTime" not in info

    codedeploy.register_application_revision(applicationName=application, revision=GITHUB)
    assert (
        codedeploy.get_application_revision(applicationName=application, revision=GITHUB)["revision"]
        == GITHUB
    )


def test_registering_again_keeps_the_registration_time(codedeploy):
    """Decision: registering a revision again updates its description, not its registration time."""
    application = _application(codedeploy)
    codedeploy.register_application_revision(
        applicationName=application, revision=_s3("a.zip"), description="one"
    )
    first = codedeploy.get_application_revision(applicationName=application, revision=_s3("a.zip"))[
        "revisionInfo"
    ]
    codedeploy.register_application_revision(
        applicationName=application, revision=_s3("a.zip"), description="two"
    )
    second = codedeploy.get_application_revision(applicationName=application, revision=_s3("a.zip"))[
        "revisionInfo"
    ]
    assert second["registerTime"] == first["registerTime"]
    assert second["description"] == "two"


def test_version_and_etag_are_part_of_the_revision(codedeploy):
    """Guide L18001–18003: a revision registered with a version or an eTag is found only with them."""
    application = _application(codedeploy)
    with_etag = _s3("v.zip", eTag="47e8", version="3HL4kqtJlcpXroDTDmjVBH40Nrjfkd")
    codedeploy.register_application_revision(applicationName=application, revision=with_etag)
    assert (
        codedeploy.get_application_revision(applicationName=application, revision=with_etag)["revision"]
        == with_etag
    )
    with pytest.raises(codedeploy.exceptions.RevisionDoesNotExistException):
        codedeploy.get_application_revision(applicationName=application, revision=_s3("v.zip"))


def test_appspec_content_revisions_carry_their_sha256(codedeploy):
    application = _application(codedeploy, "Lambda")
    content = "version: 0.0\nResources: []\n"
    revision = {"revisionType": "AppSpecContent", "appSpecContent": {"content": content}}
    codedeploy.register_application_revision(applicationName=application, revision=revision)
    got = codedeploy.get_application_revision(applicationName=application, revision=revision)["revision"]
    assert got["appSpecContent"] == {
        "content": content,
        "sha256": hashlib.sha256(content.encode()).hexdigest(),
    }
    wrong = {"revisionType": "AppSpecContent", "appSpecContent": {"content": content, "sha256": "0" * 64}}
    with pytest.raises(codedeploy.exceptions.InvalidRevisionException, match="SHA-256"):
        codedeploy.register_application_revision(applicationName=application, revision=wrong)


@pytest.mark.parametrize(
    ("platform", "revision", "gist"),
    [
        (
            "Server",
            {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "YAML"}},
            "tar, tgz, zip",
        ),
        ("Server", {"revisionType": "S3", "s3Location": {"key": "k", "bundleType": "zip"}}, "bucket"),
        (
            "Server",
            {"revisionType": "GitHub", "gitHubLocation": {"repository": "a/b", "commitId": "abc123"}},
            "full commit",
        ),
        (
            "Server",
            {"revisionType": "GitHub", "gitHubLocation": {"repository": "nobody", "commitId": "a" * 40}},
            "owner/repository",
        ),
        ("Server", {"revisionType": "String", "string": {"content": "version: 0.0"}}, "Lambda"),
        ("Server", {"revisionType": "S3", "gitHubLocation": GITHUB["gitHubLocation"]}, "s3Location"),
        ("Lambda", {"revisionType": "GitHub", "gitHubLocation": GITHUB["gitHubLocation"]}, "Server"),
        (
            "Lambda",
            {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "zip"}},
            "YAML, JSON",
        ),
        ("ECS", {"revisionType": "String", "string": {"content": "version: 0.0"}}, "Lambda"),
    ],
)
def test_invalid_revisions_are_refused_with_the_reason(codedeploy, platform, revision, gist):
    application = _application(codedeploy, platform)
    with pytest.raises(codedeploy.exceptions.InvalidRevisionException, match=gist):
        codedeploy.register_application_revision(applicationName=application, revision=revision)


def test_register_and_get_refusals(codedeploy):
    application = _application(codedeploy)
    exceptions = codedeploy.exceptions
    with pytest.raises(exceptions.ApplicationDoesNotExistException):
        codedeploy.register_application_revision(applicationName=unique("none"), revision=_s3("x.zip"))
    with pytest.raises(exceptions.DescriptionTooLongException):
        codedeploy.register_application_revision(
            applicationName=application, revision=_s3("x.zip"), description="x" * 1025
        )
    with pytest.raises(exceptions.RevisionDoesNotExistException):
        codedeploy.get_application_revision(applicationName=application, revision=_s3("never-registered.zip"))
    with pytest.raises(exceptions.ApplicationDoesNotExistException):
        codedeploy.get_application_revision(applicationName=unique("none"), revision=_s3("x.zip"))


def test_batch_get(codedeploy):
    application = _application(codedeploy)
    for key in ("one.zip", "two.zip"):
        codedeploy.register_application_revision(
            applicationName=application, revision=_s3(key), description=key
        )
    answer = codedeploy.batch_get_application_revisions(
        applicationName=application, revisions=[_s3("two.zip"), _s3("missing.zip"), _s3("one.zip")]
    )
    assert answer["applicationName"] == application
    assert [r["revisionLocation"] for r in answer["revisions"]] == [_s3("two.zip"), _s3("one.zip")]
    assert [r["genericRevisionInfo"]["description"] for r in answer["revisions"]] == ["two.zip", "one.zip"]
    assert "1" in answer["errorMessage"]
    with pytest.raises(codedeploy.exceptions.BatchLimitExceededException):
        codedeploy.batch_get_application_revisions(
            applicationName=application, revisions=[_s3(f"{n}.zip") for n in range(101)]
        )


def test_list_filters_sorting_and_pages(server, codedeploy):
    application = _application(codedeploy)
    keys = [f"releases/app-{n:02d}.zip" for n in range(server.page_size + 2)]
    for key in keys:
        codedeploy.register_application_revision(applicationName=application, revision=_s3(key))
    codedeploy.register_application_revision(applicationName=application, revision=_s3("other/x.zip"))
    codedeploy.register_application_revision(
        applicationName=application, revision=_s3("y.zip", bucket="another-bucket")
    )
    codedeploy.register_application_revision(applicationName=application, revision=GITHUB)

    def listed(**filters: Any) -> list[dict[str, Any]]:
        pages = codedeploy.get_paginator("list_application_revisions").paginate(
            applicationName=application, **filters
        )
        return [revision for page in pages for revision in page["revisions"]]

    everything = listed()
    assert len(everything) == len(keys) + 3  # all revisions, GitHub included (guide L18004–18024)
    oldest_first = listed(sortBy="registerTime", sortOrder="ascending")
    assert [r["s3Location"]["key"] for r in oldest_first[: len(keys)]] == keys
    newest_first = listed(sortBy="registerTime", sortOrder="descending")
    assert newest_first == list(reversed(oldest_first))
    assert listed(s3Bucket="revisions-bucket", s3KeyPrefix="releases/") == [_s3(k) for k in keys]
    assert listed(s3Bucket="another-bucket") == [_s3("y.zip", bucket="another-bucket")]
    with pytest.raises(codedeploy.exceptions.BucketNameFilterRequiredException):
        codedeploy.list_application_revisions(applicationName=application, s3KeyPrefix="releases/")
    with pytest.raises(codedeploy.exceptions.InvalidSortByException):
        codedeploy.list_application_revisions(applicationName=application, sortBy="size")


def test_deployments_register_and_use_revisions_and_set_target_revisions(server, codedeploy):
    """CreateDeployment registers its revision and stamps first/last use; once a deployment succeeds
    its revision is the group's target revision: listed with deployed=include and naming the group."""
    records = EngineRecords(server)
    application, group = _application(codedeploy), unique("dg")
    codedeploy.create_deployment_group(
        applicationName=application, deploymentGroupName=group, serviceRoleArn=ROLE
    )
    codedeploy.register_application_revision(applicationName=application, revision=_s3("idle.zip"))
    deployment_id = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=_s3("deployed.zip")
    )["deploymentId"]
    info = codedeploy.get_application_revision(applicationName=application, revision=_s3("deployed.zip"))[
        "revisionInfo"
    ]
    assert info["firstUsedTime"] == info["lastUsedTime"]
    assert info["deploymentGroups"] == []  # not a target revision: the deployment has not succeeded

    wait_until_completed(codedeploy, deployment_id)  # no instances: the engine fails it at once
    records.complete(deployment_id, "Succeeded")  # what the engine records when a deployment succeeds
    info = codedeploy.get_application_revision(applicationName=application, revision=_s3("deployed.zip"))[
        "revisionInfo"
    ]
    assert info["deploymentGroups"] == [group]

    def listed(deployed: str) -> list[dict[str, Any]]:
        return codedeploy.list_application_revisions(applicationName=application, deployed=deployed)[
            "revisions"
        ]

    assert listed("include") == [_s3("deployed.zip")]
    assert listed("exclude") == [_s3("idle.zip")]
    assert len(listed("ignore")) == 2
    group_info = codedeploy.get_deployment_group(applicationName=application, deploymentGroupName=group)[
        "deploymentGroupInfo"
    ]
    assert group_info["targetRevision"] == _s3("deployed.zip")
    assert group_info["lastSuccessfulDeployment"]["deploymentId"] == deployment_id
    assert group_info["lastSuccessfulDeployment"]["status"] == "Succeeded"
    assert "endTime" in group_info["lastSuccessfulDeployment"]

    second = codedeploy.create_deployment(
        applicationName=application, deploymentGroupName=group, revision=_s3("deployed.zip")
    )["deploymentId"]
    later = codedeploy.get_application_revision(applicationName=application, revision=_s3("deployed.zip"))[
        "revisionInfo"
    ]
    assert later["firstUsedTime"] == info["firstUsedTime"]
    assert later["lastUsedTime"] > info["lastUsedTime"]
    previous = codedeploy.get_deployment(deploymentId=second)["deploymentInfo"]["previousRevision"]
    assert previous == _s3("deployed.zip")

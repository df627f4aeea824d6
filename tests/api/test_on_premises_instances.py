"""On-premises instances through boto3 and the guide's aws CLI examples, against a real server."""

from __future__ import annotations

import time

import pytest

from support.names import unique

ACCOUNT = "444455556666"


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def session_arn(name: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/CodeDeployInstanceRole/{name}"


def test_register_get_and_deregister(server, codedeploy):
    name = unique("AssetTag")
    before = time.time()
    codedeploy.register_on_premises_instance(instanceName=name, iamSessionArn=session_arn(name))
    info = codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert info["instanceName"] == name
    assert info["iamSessionArn"] == session_arn(name)
    assert "iamUserArn" not in info and "deregisterTime" not in info
    assert info["instanceArn"] == f"arn:aws:codedeploy:{server.region}:{server.account_id}:instance/{name}"
    assert before - 1 <= info["registerTime"].timestamp() <= time.time() + 1
    assert info["tags"] == []

    codedeploy.add_tags_to_on_premises_instances(instanceNames=[name], tags=[{"Key": "Name", "Value": "web"}])
    codedeploy.deregister_on_premises_instance(instanceName=name)
    info = codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert info["deregisterTime"] >= info["registerTime"]
    # The guide: DeregisterOnPremisesInstance does not remove tags.
    assert info["tags"] == [{"Key": "Name", "Value": "web"}]
    # Deregistering again, or an unknown name, succeeds (the model lists no not-found error).
    codedeploy.deregister_on_premises_instance(instanceName=name)
    codedeploy.deregister_on_premises_instance(instanceName=unique("never-registered"))

    # The same name can be registered again at once; it is a fresh registration without old tags.
    codedeploy.register_on_premises_instance(instanceName=name, iamUserArn=user_arn(name))
    info = codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert info["iamUserArn"] == user_arn(name) and "iamSessionArn" not in info
    assert "deregisterTime" not in info and info["tags"] == []


def test_registration_errors(server, codedeploy):
    name = unique("i")
    codedeploy.register_on_premises_instance(instanceName=name, iamUserArn=user_arn(name))
    exceptions = codedeploy.exceptions
    with pytest.raises(exceptions.InstanceNameAlreadyRegisteredException):
        codedeploy.register_on_premises_instance(instanceName=name, iamUserArn=user_arn(unique("u")))
    # One IAM user identifies one instance.
    with pytest.raises(exceptions.IamUserArnAlreadyRegisteredException, match=name):
        codedeploy.register_on_premises_instance(instanceName=unique("i"), iamUserArn=user_arn(name))
    sess = session_arn(unique("s"))
    codedeploy.register_on_premises_instance(instanceName=unique("i"), iamSessionArn=sess)
    with pytest.raises(exceptions.IamSessionArnAlreadyRegisteredException):
        codedeploy.register_on_premises_instance(instanceName=unique("i"), iamSessionArn=sess)
    with pytest.raises(exceptions.MultipleIamArnsProvidedException):
        codedeploy.register_on_premises_instance(
            instanceName=unique("i"), iamUserArn=user_arn(unique("u")), iamSessionArn=session_arn(unique("s"))
        )
    with pytest.raises(exceptions.IamArnRequiredException):
        codedeploy.register_on_premises_instance(instanceName=unique("i"))
    with pytest.raises(exceptions.InvalidIamUserArnException):
        codedeploy.register_on_premises_instance(instanceName=unique("i"), iamUserArn="arn:aws:iam::1:role/x")
    # The guide's own example ARN has "sts" and "iam" transposed; it is not a session ARN.
    with pytest.raises(exceptions.InvalidIamSessionArnException):
        codedeploy.register_on_premises_instance(
            instanceName=unique("i"),
            iamSessionArn="arn:sts:iam::123456789012:assumed-role/CodeDeployInstanceRole/AssetTag12010298EX",
        )
    # The guide: a colon is not allowed in an instance name (so MAC addresses are not valid names).
    with pytest.raises(exceptions.InvalidInstanceNameException, match="colon"):
        codedeploy.register_on_premises_instance(
            instanceName="00:1a:2b:3c:4d:5e", iamUserArn=user_arn(unique("u"))
        )
    raw = server.raw_client()
    with pytest.raises(raw.exceptions.InstanceNameRequiredException):
        raw.register_on_premises_instance(iamUserArn=user_arn(unique("u")))
    # A refused registration stored nothing.
    with pytest.raises(exceptions.InstanceNotRegisteredException):
        codedeploy.get_on_premises_instance(instanceName="00:1a:2b:3c:4d:5e".replace(":", ""))


def test_tags(codedeploy):
    a, b = unique("a"), unique("b")
    for name in (a, b):
        codedeploy.register_on_premises_instance(instanceName=name, iamUserArn=user_arn(name))
    codedeploy.add_tags_to_on_premises_instances(
        instanceNames=[a, b],
        tags=[{"Key": "Name", "Value": "CodeDeployDemo-OnPrem"}, {"Key": "Env", "Value": "beta"}],
    )
    codedeploy.add_tags_to_on_premises_instances(instanceNames=[a], tags=[{"Key": "Env", "Value": "prod"}])
    infos = codedeploy.batch_get_on_premises_instances(instanceNames=[a, b])["instanceInfos"]
    assert [i["tags"] for i in infos] == [
        [{"Key": "Name", "Value": "CodeDeployDemo-OnPrem"}, {"Key": "Env", "Value": "prod"}],
        [{"Key": "Name", "Value": "CodeDeployDemo-OnPrem"}, {"Key": "Env", "Value": "beta"}],
    ]
    # Removing needs the key, and the value too when one is given.
    codedeploy.remove_tags_from_on_premises_instances(
        instanceNames=[a, b], tags=[{"Key": "Env", "Value": "beta"}, {"Key": "Name"}]
    )
    infos = codedeploy.batch_get_on_premises_instances(instanceNames=[a, b])["instanceInfos"]
    assert [i["tags"] for i in infos] == [[{"Key": "Env", "Value": "prod"}], []]


def test_tag_errors(server, codedeploy):
    name = unique("t")
    codedeploy.register_on_premises_instance(instanceName=name, iamUserArn=user_arn(name))
    exceptions = codedeploy.exceptions
    with pytest.raises(exceptions.InstanceNotRegisteredException, match="nobody"):
        codedeploy.add_tags_to_on_premises_instances(
            instanceNames=[name, "nobody"], tags=[{"Key": "k", "Value": "v"}]
        )
    with pytest.raises(exceptions.TagRequiredException):
        codedeploy.add_tags_to_on_premises_instances(instanceNames=[name], tags=[])
    with pytest.raises(exceptions.InvalidTagException, match="Key"):
        codedeploy.add_tags_to_on_premises_instances(instanceNames=[name], tags=[{"Value": "values-only"}])
    with pytest.raises(exceptions.InstanceNameRequiredException):
        codedeploy.add_tags_to_on_premises_instances(instanceNames=[], tags=[{"Key": "k", "Value": "v"}])
    with pytest.raises(exceptions.InstanceLimitExceededException):
        codedeploy.add_tags_to_on_premises_instances(
            instanceNames=[f"n{i}" for i in range(101)], tags=[{"Key": "k", "Value": "v"}]
        )
    with pytest.raises(exceptions.TagLimitExceededException, match="10"):
        codedeploy.add_tags_to_on_premises_instances(
            instanceNames=[name], tags=[{"Key": f"k{i}", "Value": "v"} for i in range(11)]
        )
    # Nothing of a refused call is applied, not even to the instances that were fine.
    assert codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]["tags"] == []
    # Decision: a deregistered instance cannot gain tags, but its tags can still be removed.
    codedeploy.add_tags_to_on_premises_instances(instanceNames=[name], tags=[{"Key": "k", "Value": "v"}])
    codedeploy.deregister_on_premises_instance(instanceName=name)
    with pytest.raises(exceptions.InstanceNotRegisteredException):
        codedeploy.add_tags_to_on_premises_instances(instanceNames=[name], tags=[{"Key": "x", "Value": "y"}])
    codedeploy.remove_tags_from_on_premises_instances(instanceNames=[name], tags=[{"Key": "k", "Value": "v"}])
    assert codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]["tags"] == []


def test_batch_get(codedeploy):
    names = [unique("bg") for _ in range(3)]
    for name in names:
        codedeploy.register_on_premises_instance(instanceName=name, iamUserArn=user_arn(name))
    infos = codedeploy.batch_get_on_premises_instances(instanceNames=[names[2], "unknown-one", names[0]])
    # Unknown names are left out (the model lists no not-found error for this call).
    assert [i["instanceName"] for i in infos["instanceInfos"]] == [names[2], names[0]]
    with pytest.raises(codedeploy.exceptions.BatchLimitExceededException):
        codedeploy.batch_get_on_premises_instances(instanceNames=[f"n{i}" for i in range(101)])
    with pytest.raises(codedeploy.exceptions.InstanceNameRequiredException):
        codedeploy.batch_get_on_premises_instances(instanceNames=[])


def test_list_filters(server_factory):
    # A private server: the listing covers every instance, so exact answers can be asserted.
    server = server_factory("sqlite")
    codedeploy = server.client()
    tags = {
        "web-1": [{"Key": "Name", "Value": "CodeDeployDemo-OnPrem"}],
        "web-2": [{"Key": "Name", "Value": "CodeDeployDemo-OnPrem-Beta"}],
        "db-1": [{"Key": "Role", "Value": "db"}],
        "old-1": [{"Key": "Name", "Value": "CodeDeployDemo-OnPrem"}],
    }
    for name, instance_tags in tags.items():
        codedeploy.register_on_premises_instance(instanceName=name, iamUserArn=user_arn(name))
        codedeploy.add_tags_to_on_premises_instances(instanceNames=[name], tags=instance_tags)
    codedeploy.deregister_on_premises_instance(instanceName="old-1")

    def names(**kwargs):
        pages = codedeploy.get_paginator("list_on_premises_instances").paginate(**kwargs)
        return [n for page in pages for n in page["instanceNames"]]

    # Without a status both registered and deregistered instances are listed (guide L14011).
    assert names() == ["db-1", "old-1", "web-1", "web-2"]
    assert names(registrationStatus="Registered") == ["db-1", "web-1", "web-2"]
    assert names(registrationStatus="Deregistered") == ["old-1"]
    # The guide's example: two KEY_AND_VALUE filters select instances with either tag.
    both = [
        {"Key": "Name", "Value": "CodeDeployDemo-OnPrem", "Type": "KEY_AND_VALUE"},
        {"Key": "Name", "Value": "CodeDeployDemo-OnPrem-Beta", "Type": "KEY_AND_VALUE"},
    ]
    assert names(registrationStatus="Registered", tagFilters=both) == ["web-1", "web-2"]
    assert names(tagFilters=[{"Key": "Role", "Type": "KEY_ONLY"}]) == ["db-1"]
    assert names(tagFilters=[{"Value": "db", "Type": "VALUE_ONLY"}]) == ["db-1"]
    with pytest.raises(codedeploy.exceptions.InvalidTagFilterException):
        codedeploy.list_on_premises_instances(tagFilters=[{"Value": "x", "Type": "KEY_ONLY"}])
    raw = server.raw_client()
    with pytest.raises(raw.exceptions.InvalidRegistrationStatusException):
        raw.list_on_premises_instances(registrationStatus="Pending")


def test_list_paginates(server_factory):
    server = server_factory("sqlite")
    codedeploy = server.client()
    expected = sorted(f"host-{i:02d}" for i in range(server.page_size * 2 + 3))
    for name in expected:
        codedeploy.register_on_premises_instance(instanceName=name, iamUserArn=user_arn(name))
    pages = list(
        codedeploy.get_paginator("list_on_premises_instances").paginate(registrationStatus="Registered")
    )
    assert len(pages) == 3
    assert [n for page in pages for n in page["instanceNames"]] == expected


def test_guide_cli_examples(server):
    """The guide's on-premises commands (L12913, L12948, L13870, L13982, L14021, L14028, L14082,
    L14225) through the aws CLI."""
    first, second = unique("AssetTag12010298EX"), unique("AssetTag09920444EX")
    server.aws_json(
        "deploy",
        "register-on-premises-instance",
        "--instance-name",
        first,
        "--iam-session-arn",
        session_arn(first),
    )
    server.aws_json(
        "deploy",
        "register-on-premises-instance",
        "--instance-name",
        second,
        "--iam-user-arn",
        user_arn(second),
    )
    server.aws_json(
        "deploy", "add-tags-to-on-premises-instances", "--instance-names", first, second,
        "--tags", "Key=Name,Value=CodeDeployDemo-OnPrem",
    )  # fmt: skip
    got = server.aws_json("deploy", "get-on-premises-instance", "--instance-name", first)["instanceInfo"]
    assert got["tags"] == [{"Key": "Name", "Value": "CodeDeployDemo-OnPrem"}]
    listed = server.aws_json(
        "deploy", "list-on-premises-instances", "--registration-status", "Registered",
        "--tag-filters", "Key=Name,Value=CodeDeployDemo-OnPrem,Type=KEY_AND_VALUE",
        "Key=Name,Value=CodeDeployDemo-OnPrem-Beta,Type=KEY_AND_VALUE",
    )["instanceNames"]  # fmt: skip
    assert {first, second} <= set(listed)
    batch = server.aws_json("deploy", "batch-get-on-premises-instances", "--instance-names", first, second)
    assert sorted(i["instanceName"] for i in batch["instanceInfos"]) == sorted([first, second])
    server.aws_json(
        "deploy", "remove-tags-from-on-premises-instances", "--instance-names", first,
        "--tags", "Key=Name,Value=CodeDeployDemo-OnPrem",
    )  # fmt: skip
    server.aws_json("deploy", "deregister-on-premises-instance", "--instance-name", first)
    deregistered = server.aws_json(
        "deploy", "list-on-premises-instances", "--registration-status", "Deregistered"
    )
    assert first in deregistered["instanceNames"] and second not in deregistered["instanceNames"]

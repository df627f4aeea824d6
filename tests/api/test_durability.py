"""Durability: every write the server acknowledged is there after ``kill -9`` and a restart."""

from __future__ import annotations

import pytest


def test_acknowledged_writes_survive_kill_9(server_factory, backend):
    server = server_factory(backend, page_size=5)
    codedeploy = server.client()
    names = [f"durable-{i:02d}" for i in range(12)]
    for name in names:
        codedeploy.create_application(applicationName=name, tags=[{"Key": "n", "Value": name}])
    codedeploy.register_on_premises_instance(
        instanceName="host-1", iamUserArn="arn:aws:iam::444455556666:user/h1"
    )
    codedeploy.add_tags_to_on_premises_instances(
        instanceNames=["host-1"], tags=[{"Key": "Name", "Value": "web"}]
    )
    codedeploy.update_application(applicationName=names[0], newApplicationName="renamed")
    token = codedeploy.list_applications()["nextToken"]
    # SIGKILL right after the last acknowledgement: no shutdown, no chance to flush anything late.
    server.kill9()
    server.start()

    codedeploy = server.client()
    listed = [
        n for page in codedeploy.get_paginator("list_applications").paginate() for n in page["applications"]
    ]
    assert listed == sorted(["renamed", *names[1:]])
    arn = f"arn:aws:codedeploy:{server.region}:{server.account_id}:application:renamed"
    assert codedeploy.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "n", "Value": names[0]}]
    instance = codedeploy.get_on_premises_instance(instanceName="host-1")["instanceInfo"]
    assert instance["tags"] == [{"Key": "Name", "Value": "web"}]
    # The same credentials still work, and a nextToken handed out before the crash still resumes.
    assert codedeploy.list_applications(nextToken=token)["applications"] == listed[5:10]


def test_refused_write_leaves_nothing_behind(server_factory):
    server = server_factory("sqlite")
    codedeploy = server.client()
    with pytest.raises(codedeploy.exceptions.InvalidTagsToAddException):
        codedeploy.create_application(applicationName="half", tags=[{"Key": "aws:reserved", "Value": "x"}])
    server.kill9()
    server.start()
    assert server.client().list_applications()["applications"] == []

"""The awsJson 1.1 wire protocol as clients see it: routing, errors, validation against the model."""

from __future__ import annotations

import httpx
import pytest

from support.names import unique
from support.signing import send_json


def test_error_wire_format(server):
    response = send_json(server, "GetApplication", {"applicationName": unique("missing")})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    assert response.headers["x-amzn-requestid"]
    body = response.json()
    assert body["__type"] == "ApplicationDoesNotExistException"
    assert "No application found" in body["message"]


def test_unknown_operation(server):
    response = send_json(server, "ExplodeEverything")
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"
    response = send_json(server, "ListApplications", target="SomeOtherService_2020.ListApplications")
    assert response.json()["__type"] == "UnknownOperationException"


def test_malformed_json(server):
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        response = send_json(server, "CreateApplication", body=body)
        assert response.status_code == 400
        assert response.json()["__type"] == "SerializationException", body


def test_health_needs_no_credentials(server):
    assert httpx.get(f"{server.endpoint}/health").json()["status"] == "ok"


def test_unknown_member_refused(server):
    response = send_json(server, "CreateApplication", {"applicationName": unique("a"), "colour": "blue"})
    assert response.status_code == 400
    assert response.json()["__type"] == "ValidationException"
    assert "colour" in response.json()["message"]


def test_validation_picks_the_modeled_exception(server):
    """Requests boto3 would refuse itself, sent anyway: the server names the operation's own exception."""
    raw = server.raw_client()
    errors = raw.exceptions
    cases = [
        (errors.ApplicationNameRequiredException, raw.create_application, {}),
        (errors.ApplicationNameRequiredException, raw.get_application, {"applicationName": ""}),
        (errors.InvalidApplicationNameException, raw.get_application, {"applicationName": "x" * 101}),
        (errors.InvalidApplicationNameException, raw.batch_get_applications, {"applicationNames": ["ok", 7]}),
        (
            errors.InvalidComputePlatformException,
            raw.create_application,
            {"applicationName": "a", "computePlatform": 1},
        ),
        (
            errors.InvalidTagsToAddException,
            raw.create_application,
            {"applicationName": "a", "tags": [{"Key": 5}]},
        ),
        (errors.InstanceNameRequiredException, raw.get_on_premises_instance, {}),
        (
            errors.InvalidIamSessionArnException,
            raw.register_on_premises_instance,
            {"instanceName": "i", "iamSessionArn": 5},
        ),
        (
            errors.InvalidRegistrationStatusException,
            raw.list_on_premises_instances,
            {"registrationStatus": "Gone"},
        ),
        (errors.InvalidTagFilterException, raw.list_on_premises_instances, {"tagFilters": [{"Type": "ALL"}]}),
        (errors.TagRequiredException, raw.add_tags_to_on_premises_instances, {"instanceNames": ["i"]}),
        (errors.ResourceArnRequiredException, raw.list_tags_for_resource, {}),
    ]
    for exception, call, params in cases:
        with pytest.raises(exception):
            call(**params)


def test_invalid_request_changes_nothing(server, codedeploy):
    name = unique("atomic")
    raw = server.raw_client()
    with pytest.raises(raw.exceptions.InvalidTagsToAddException):
        raw.create_application(applicationName=name, tags=[{"Key": "ok", "Value": "v"}, {"Key": "aws:no"}])
    with pytest.raises(codedeploy.exceptions.ApplicationDoesNotExistException):
        codedeploy.get_application(applicationName=name)


def test_oversized_body_refused(server):
    body = b'{"applicationName": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    response = send_json(server, "CreateApplication", body=body)
    assert response.status_code == 413
    assert response.json()["__type"] == "RequestEntityTooLargeException"

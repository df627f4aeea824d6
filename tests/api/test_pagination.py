"""nextToken pagination: boto3 paginators across pages, and tokens that cannot be forged or reused."""

from __future__ import annotations

import base64
import json

import pytest

from support.names import unique


def test_paginator_over_several_pages(server, codedeploy):
    created = {unique("page") for _ in range(server.page_size * 2 + 1)}
    for name in sorted(created):
        codedeploy.create_application(applicationName=name)
    pages = list(codedeploy.get_paginator("list_applications").paginate())
    names = [n for page in pages for n in page["applications"]]
    assert len(pages) >= 3
    assert all(len(page["applications"]) <= server.page_size for page in pages)
    assert created <= set(names)
    assert len(names) == len(set(names)) and names == sorted(names)


def test_pages_continue_where_they_left_off_despite_changes(server_factory):
    """A token is a position in the sorted listing: items added or removed meanwhile never make the
    listing repeat or skip an item that stayed."""
    server = server_factory("sqlite", page_size=3)
    codedeploy = server.client()
    for name in ("b", "d", "f", "h", "j"):
        codedeploy.create_application(applicationName=name)
    first = codedeploy.list_applications()
    assert first["applications"] == ["b", "d", "f"]
    codedeploy.create_application(applicationName="a")  # before the position: not seen now
    codedeploy.create_application(applicationName="g")  # after it: seen
    codedeploy.delete_application(applicationName="f")
    second = codedeploy.list_applications(nextToken=first["nextToken"])
    assert second["applications"] == ["g", "h", "j"]
    assert "nextToken" not in second  # nothing after "j": no token for an empty page


def _forge(token: str, position: object) -> str:
    _, mac = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps(position).encode()).rstrip(b"=").decode()
    return f"{forged}.{mac}"


def test_forged_tokens_are_refused(server, codedeploy):
    for _ in range(server.page_size + 1):
        codedeploy.create_application(applicationName=unique("forge"))
    token = codedeploy.list_applications()["nextToken"]
    for bad in (_forge(token, ["zzz"]), "garbage", token + "x", token[::-1], ""):
        with pytest.raises(codedeploy.exceptions.InvalidNextTokenException):
            codedeploy.list_applications(nextToken=bad)


def test_token_is_bound_to_its_listing_and_filters(server, codedeploy):
    for _ in range(server.page_size + 1):
        name = unique("host")
        codedeploy.register_on_premises_instance(
            instanceName=name, iamUserArn=f"arn:aws:iam::444455556666:user/{name}"
        )
    token = codedeploy.list_on_premises_instances(registrationStatus="Registered")["nextToken"]
    assert codedeploy.list_on_premises_instances(registrationStatus="Registered", nextToken=token)
    with pytest.raises(codedeploy.exceptions.InvalidNextTokenException):
        codedeploy.list_on_premises_instances(registrationStatus="Deregistered", nextToken=token)
    with pytest.raises(codedeploy.exceptions.InvalidNextTokenException):
        codedeploy.list_on_premises_instances(nextToken=token)
    with pytest.raises(codedeploy.exceptions.InvalidNextTokenException):
        codedeploy.list_applications(nextToken=token)
    with pytest.raises(codedeploy.exceptions.InvalidNextTokenException):
        codedeploy.list_git_hub_account_token_names(nextToken=token)

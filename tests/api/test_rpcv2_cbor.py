"""Smithy RPC v2 CBOR, the protocol botocore's CodeDeploy model lists first: a botocore client made to
prefer it (as other SDKs may) works against the server exactly like the awsJson one."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import botocore.config
import botocore.loaders
import botocore.session
import cbor2
import httpx
import pytest
from botocore.awsrequest import AWSRequest

from support.names import unique
from support.signing import sign


@pytest.fixture(scope="module")
def cbor_data_dir(tmp_path_factory) -> Path:
    """botocore's CodeDeploy model, changed only to list RPC v2 CBOR as its one protocol."""
    model = botocore.loaders.Loader().load_service_model("codedeploy", "service-2")
    model["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    root = tmp_path_factory.mktemp("models")
    target = root / "codedeploy" / model["metadata"]["apiVersion"] / "service-2.json.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(gzip.compress(json.dumps(model).encode()))
    return root


def cbor_client(server, data_dir: Path):
    session = server.session()
    core = session._session
    core.get_component("data_loader").search_paths.insert(0, str(data_dir))
    client = session.client("codedeploy", config=botocore.config.Config(retries={"max_attempts": 1}))
    assert client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    return client


def test_operations_over_cbor(server, cbor_data_dir):
    client = cbor_client(server, cbor_data_dir)
    requests = []
    client.meta.events.register("before-send", lambda request, **_: requests.append(request))
    name = unique("cbor")
    before = time.time()
    app_id = client.create_application(applicationName=name, computePlatform="Lambda")["applicationId"]
    info = client.get_application(applicationName=name)["application"]
    assert info["applicationId"] == app_id and info["computePlatform"] == "Lambda"
    assert before - 1 <= info["createTime"].timestamp() <= time.time() + 1  # a tagged CBOR timestamp
    assert requests[-1].url.endswith("/service/CodeDeploy_20141006/operation/GetApplication")
    assert requests[-1].headers["Content-Type"] == b"application/cbor"
    # Data written over one protocol is read over the other.
    assert server.client().get_application(applicationName=name)["application"]["applicationId"] == app_id
    assert name in [
        n for page in client.get_paginator("list_applications").paginate() for n in page["applications"]
    ]
    # A timestamp in a request (ListDeployments' createTimeRange) arrives as epoch seconds.
    client.list_deployments(createTimeRange={"start": before - 60, "end": time.time() + 60})

    with pytest.raises(client.exceptions.ApplicationDoesNotExistException):
        client.get_application(applicationName=unique("missing"))
    with pytest.raises(client.exceptions.InvalidApplicationNameException):
        client.create_application(applicationName="not valid!")


def test_malformed_cbor_is_a_serialization_error(server):
    key, secret = server.credentials()
    url = f"{server.endpoint}/service/CodeDeploy_20141006/operation/CreateApplication"
    request = AWSRequest(
        method="POST",
        url=url,
        data=b"\xff\x00not cbor",
        headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"},
    )
    sign(request, access_key=key, secret_key=secret, service="codedeploy", region=server.region)
    response = httpx.post(url, content=request.body, headers=dict(request.headers.items()))
    assert response.status_code == 400
    assert response.headers["smithy-protocol"] == "rpc-v2-cbor"
    assert cbor2.loads(response.content)["__type"] == "SerializationException"

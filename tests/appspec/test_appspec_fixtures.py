"""Every file in the guide's fixture set loads: whole AppSpecs as they are, fragments (a files:, hooks: or
permissions: section alone) wrapped into a whole AppSpec of their platform."""

from __future__ import annotations

import json
import pickle

import pytest
from appspec_fixtures import FIXTURES, whole_server_appspec

from opendeploy.appspec import (
    AppSpecError,
    EcsAppSpec,
    LambdaAppSpec,
    ServerAppSpec,
    load_appspec,
    load_server_appspec,
)

ECS_RESOURCES = [
    {
        "TargetService": {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "TaskDefinition": "arn:aws:ecs:us-east-1:111222333444:task-definition/web:1",
                "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 80},
            },
        }
    }
]
LAMBDA_RESOURCES = [
    {
        "f": {
            "Type": "AWS::Lambda::Function",
            "Properties": {"Name": "f", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"},
        }
    }
]


def whole(name: str, text: str) -> tuple[str, str]:
    """(compute platform, whole AppSpec text) for a fixture."""
    if name.startswith("ec2_"):
        if text.startswith("version"):
            return "Server", text
        return "Server", whole_server_appspec(text, "windows" if "_win_" in name else "linux")
    platform = "ECS" if name.startswith("ecs_") else "Lambda"
    if "_hooks_section_" not in name:
        return platform, text
    resources = ECS_RESOURCES if platform == "ECS" else LAMBDA_RESOURCES
    if name.endswith(".json"):
        return platform, json.dumps(json.loads(text) | {"version": 0.0, "Resources": resources}, indent=1)
    return platform, "version: 0.0\nResources: " + json.dumps(resources) + "\n" + text


FIXTURE_NAMES = sorted(path.name for path in FIXTURES.iterdir())


def test_the_whole_fixture_set_is_here() -> None:
    """Appendix A lists 23 fixtures."""
    assert len(FIXTURE_NAMES) == 23


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_loads(name: str) -> None:
    platform, text = whole(name, (FIXTURES / name).read_text())
    spec = load_appspec(text, platform, name)
    expected = {"Server": ServerAppSpec, "Lambda": LambdaAppSpec, "ECS": EcsAppSpec}[platform]
    assert isinstance(spec, expected)
    assert spec.version == "0.0"
    assert spec.source_name == name
    if "permissions" not in name and ("_hooks_" in name or "_full_" in name or "spacing" in name):
        assert spec.hooks


def test_errors_survive_pickling() -> None:
    with pytest.raises(AppSpecError) as caught:
        load_server_appspec("version: 2\nos: linux\nfiles: 3\n")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.key_path, copy.line, copy.message) == ("version", 1, caught.value.message)
    assert len(copy.problems) == 2

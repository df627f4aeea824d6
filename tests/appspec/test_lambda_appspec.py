"""AWS Lambda AppSpec: the guide's examples load, in YAML and JSON, and bad values are named precisely."""

from __future__ import annotations

import json

import pytest
from appspec_fixtures import fixture_text

from opendeploy.appspec import (
    AppSpecError,
    LambdaAppSpec,
    LambdaFunctionResource,
    load_appspec,
    load_lambda_appspec,
)

EXPECTED = LambdaAppSpec(
    version="0.0",
    function=LambdaFunctionResource("myLambdaFunction", "myLambdaFunction", "myLambdaFunctionAlias", 1, 2),
    hooks={
        "BeforeAllowTraffic": "LambdaFunctionToValidateBeforeTrafficShift",
        "AfterAllowTraffic": "LambdaFunctionToValidateAfterTrafficShift",
    },
)

LAMBDA_RESOURCES = """\
version: 0.0
Resources:
  - myLambdaFunction:
      Type: AWS::Lambda::Function
      Properties:
        Name: "myLambdaFunction"
        Alias: "live"
        CurrentVersion: "1"
        TargetVersion: "2"
"""


@pytest.mark.parametrize("fixture", ["lambda_appspec_full_yaml.yml", "lambda_appspec_full_json.json"])
def test_full_examples_load(fixture: str) -> None:
    """Guide L25000–L25011 (YAML) and L25015–L25035 (JSON, where version is the number 0.0)."""
    spec = load_lambda_appspec(fixture_text(fixture), fixture)
    assert spec == LambdaAppSpec(EXPECTED.version, EXPECTED.function, EXPECTED.hooks, fixture)
    assert list(spec.hooks) == ["BeforeAllowTraffic", "AfterAllowTraffic"]
    assert spec.hook_function("AfterAllowTraffic") == "LambdaFunctionToValidateAfterTrafficShift"
    assert spec.hook_function("AllowTraffic") is None


def test_hooks_section_fragment_in_yaml_loads() -> None:
    """Guide L24177–L24179 (lower-case hooks:), wrapped into a whole AppSpec."""
    spec = load_lambda_appspec(LAMBDA_RESOURCES + fixture_text("lambda_hooks_section_yaml.yml"))
    assert spec.hooks == {
        "BeforeAllowTraffic": "BeforeAllowTrafficHookFunctionName",
        "AfterAllowTraffic": "AfterAllowTrafficHookFunctionName",
    }


def test_hooks_section_fragment_in_json_loads() -> None:
    """Guide L24183–L24188, wrapped into a whole AppSpec."""
    document = json.loads(fixture_text("lambda_hooks_section_json.json"))
    document |= {
        "version": 0.0,
        "resources": [
            {
                "myLambdaFunction": {
                    "type": "AWS::Lambda::Function",
                    "properties": {"name": "f", "alias": "live", "currentversion": "3", "targetversion": "4"},
                }
            }
        ],
    }
    spec = load_lambda_appspec(json.dumps(document, indent=2), "appspec.json")
    assert spec.function == LambdaFunctionResource("myLambdaFunction", "f", "live", 3, 4)
    assert list(spec.hooks) == ["BeforeAllowTraffic", "AfterAllowTraffic"]


def test_lower_case_structure_keys_work_as_the_guide_writes_them() -> None:
    """Guide L23530–L23537: the structure section writes every key in lower case."""
    text = (
        "version: 0.0\n"
        "resources:\n"
        "  - name-of-function-to-deploy:\n"
        '      type: "AWS::Lambda::Function"\n'
        "      properties:\n"
        "        name: my-function\n"
        "        alias: prod\n"
        "        currentversion: 7\n"
        "        targetversion: 8\n"
    )
    spec = load_lambda_appspec(text)
    assert spec.function == LambdaFunctionResource("name-of-function-to-deploy", "my-function", "prod", 7, 8)
    assert spec.hooks == {}


def test_json_errors_carry_lines_when_they_can() -> None:
    text = json.dumps(
        {
            "version": 0.0,
            "Resources": [
                {
                    "f": {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {
                            "Name": "f",
                            "Alias": "a",
                            "CurrentVersion": "0",
                            "TargetVersion": "2",
                        },
                    }
                }
            ],
        },
        indent=2,
    )
    with pytest.raises(AppSpecError) as caught:
        load_lambda_appspec(text, "appspec.json")
    assert caught.value.key_path == "Resources[0].f.Properties.CurrentVersion"
    assert caught.value.line == 10
    assert "positive integer" in str(caught.value)


def test_malformed_json_names_its_line() -> None:
    with pytest.raises(AppSpecError) as caught:
        load_lambda_appspec('{\n  "version": 0.0,\n  "Resources": [\n}\n', "appspec.json")
    assert caught.value.line == 4
    assert "not valid JSON" in str(caught.value)


def test_duplicate_json_keys_are_reported() -> None:
    with pytest.raises(AppSpecError, match="'Hooks' appears more than once"):
        load_lambda_appspec('{"version": 0.0, "Resources": [], "Hooks": [], "Hooks": []}')


def test_hook_functions_may_be_arns() -> None:
    """Guide L8452 and L8471 give hook functions by ARN."""
    arn = "arn:aws:lambda:us-east-1:111122223333:function:CodeDeployHook_pre"
    spec = load_lambda_appspec(LAMBDA_RESOURCES + f"Hooks:\n  - BeforeAllowTraffic: {arn}\n")
    assert spec.hooks == {"BeforeAllowTraffic": arn}


def test_the_same_function_may_serve_several_hooks() -> None:
    spec = load_lambda_appspec(
        LAMBDA_RESOURCES + "Hooks:\n  - BeforeAllowTraffic: check\n  - AfterAllowTraffic: check\n"
    )
    assert spec.hooks == {"BeforeAllowTraffic": "check", "AfterAllowTraffic": "check"}


GOOD_PROPERTIES = {"Name": "f", "Alias": "live", "CurrentVersion": '"1"', "TargetVersion": '"2"'}


@pytest.mark.parametrize(
    ("changes", "key_path", "gist"),
    [
        ({"CurrentVersion": '"0"'}, "CurrentVersion", "positive integer"),
        ({"TargetVersion": "abc"}, "TargetVersion", "positive integer"),
        ({"CurrentVersion": "-1"}, "CurrentVersion", "got -1"),
        ({"CurrentVersion": '"1.5"'}, "CurrentVersion", "got '1.5'"),
        ({"Alias": '"123"'}, "Alias", "not only digits"),
        ({"Name": '"my function"'}, "Name", "function name"),
        ({"Alias": None}, "Alias", "required"),
        ({"Memory": "128"}, "Memory", "unknown key"),
    ],
)
def test_bad_function_properties_are_named(changes: dict[str, str | None], key_path: str, gist: str) -> None:
    properties = {key: value for key, value in (GOOD_PROPERTIES | changes).items() if value is not None}
    text = (
        "version: 0.0\nResources:\n  - myLambdaFunction:\n      Type: AWS::Lambda::Function\n"
        "      Properties:\n" + "".join(f"        {key}: {value}\n" for key, value in properties.items())
    )
    with pytest.raises(AppSpecError) as caught:
        load_lambda_appspec(text)
    assert caught.value.key_path == f"Resources[0].myLambdaFunction.Properties.{key_path}"
    assert gist in str(caught.value)


def test_wrong_resource_type_is_rejected() -> None:
    with pytest.raises(AppSpecError) as caught:
        load_lambda_appspec(LAMBDA_RESOURCES.replace("AWS::Lambda::Function", "AWS::ECS::Service"))
    assert caught.value.key_path == "Resources[0].myLambdaFunction.Type"
    assert "AWS::Lambda::Function" in str(caught.value)


def test_resources_is_required() -> None:
    with pytest.raises(AppSpecError) as caught:
        load_lambda_appspec("version: 0.0\nHooks:\n  - BeforeAllowTraffic: check\n")
    assert (caught.value.key_path, caught.value.reason) == ("Resources", "is required but missing")


@pytest.mark.parametrize(
    ("hooks", "gist"),
    [
        ("  - BeforeInstall: f", "BeforeInstall is not a lifecycle event of AWS Lambda deployments"),
        ("  - AllowTraffic: f", "AllowTraffic is run by CodeDeploy itself"),
        ("  - BeforeAllowTrafic: f", "did you mean 'BeforeAllowTraffic'?"),
        ("  - BeforeAllowTraffic: f\n  - BeforeAllowTraffic: g", "has a hook already (first at line 11)"),
        ("  - BeforeAllowTraffic: f\n    AfterAllowTraffic: g", "must name exactly one lifecycle event"),
        ("  BeforeAllowTraffic: f", "must be a list of single-key mappings"),
        ("  - BeforeAllowTraffic: not a function", "must be the name or ARN of a Lambda function"),
        ("  - BeforeAllowTraffic:", "must be the name or ARN of a Lambda function, got nothing"),
    ],
)
def test_bad_hooks_are_named(hooks: str, gist: str) -> None:
    with pytest.raises(AppSpecError) as caught:
        load_lambda_appspec(LAMBDA_RESOURCES + "Hooks:\n" + hooks + "\n")
    assert caught.value.key_path.startswith("Hooks")
    assert gist in str(caught.value)


def test_load_appspec_dispatches_on_the_compute_platform() -> None:
    assert load_appspec(fixture_text("lambda_appspec_full_yaml.yml"), "Lambda").function.target_version == 2
    with pytest.raises(ValueError, match="Server, Lambda, ECS"):
        load_appspec("", "Batch")

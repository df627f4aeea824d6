"""The AWS Lambda AppSpec: parse YAML or JSON and check it into a LambdaAppSpec (guide L23190–L23224,
L23523–L23565, L24132–L24250).

Keys match whatever their case: the guide's structure sections write them in lower case and every example in
PascalCase (``Resources``, ``Properties``, ``CurrentVersion``).
"""

from __future__ import annotations

from opendeploy.appspec.aws_shapes import lambda_alias, lambda_function_name
from opendeploy.appspec.checks import Checker
from opendeploy.appspec.document import Node
from opendeploy.appspec.lifecycle_events import LAMBDA_ALL_EVENTS, LAMBDA_HOOK_EVENTS
from opendeploy.appspec.model import LambdaAppSpec, LambdaFunctionResource
from opendeploy.appspec.resources import check_single_resource, key_path, present
from opendeploy.appspec.serverless_appspec import load_top_level

RESOURCE_KEYS = ("Type", "Properties")
PROPERTY_KEYS = ("Name", "Alias", "CurrentVersion", "TargetVersion")
LAMBDA_FUNCTION_TYPE = "AWS::Lambda::Function"


def load_lambda_appspec(text: str, source_name: str = "appspec.yml") -> LambdaAppSpec:
    """Parse and check an AWS Lambda AppSpec (YAML or JSON). Raises AppSpecError naming every problem."""
    top = load_top_level(
        text,
        source_name,
        platform="AWS Lambda",
        check_resources=_check_function,
        all_events=LAMBDA_ALL_EVENTS,
        hook_events=LAMBDA_HOOK_EVENTS,
    )
    return LambdaAppSpec(version=top.version, function=top.resource, hooks=top.hooks, source_name=source_name)


def _check_function(checker: Checker, node: Node, path: str) -> LambdaFunctionResource | None:
    resource = check_single_resource(checker, node, path, platform="Lambda", example="myLambdaFunction")
    if resource is None:
        return None
    logical_name, body_path, body = resource
    before = len(checker.problems)
    fields = checker.fields(
        body,
        body_path,
        RESOURCE_KEYS,
        required=RESOURCE_KEYS,
        case_insensitive=True,
        where="in a Lambda resource",
    )
    if (node_ := present(fields, "Type")) is not None:
        checker.choice(node_, key_path(body_path, fields, "Type"), [LAMBDA_FUNCTION_TYPE])
    properties_node = present(fields, "Properties")
    if properties_node is None:
        return None
    properties_path = key_path(body_path, fields, "Properties")
    properties = checker.mapping(
        properties_node, properties_path, "a mapping with Name, Alias, CurrentVersion, …"
    )
    if properties is None:
        return None
    props = checker.fields(
        properties,
        properties_path,
        PROPERTY_KEYS,
        required=PROPERTY_KEYS,
        case_insensitive=True,
        where="in the Lambda function's properties",
    )
    name = alias = None
    if (node_ := present(props, "Name")) is not None:
        name = checker.string(node_, key_path(properties_path, props, "Name"), "a Lambda function name")
        if name is not None and not lambda_function_name().accepts(name):
            checker.report(
                key_path(properties_path, props, "Name"),
                node_,
                f"must be a Lambda function name, got {name!r}",
            )
    if (node_ := present(props, "Alias")) is not None:
        alias = checker.string(node_, key_path(properties_path, props, "Alias"), "a Lambda alias name")
        if alias is not None and not lambda_alias().accepts(alias):
            checker.report(
                key_path(properties_path, props, "Alias"),
                node_,
                f"must be a Lambda alias name (letters, digits, - and _, not only digits), got {alias!r}",
            )
    versions: dict[str, int | None] = {}
    for key in ("CurrentVersion", "TargetVersion"):
        if (node_ := present(props, key)) is not None:
            # "must be a valid positive integer" (guide L23561–L23565), written as a string or a number.
            versions[key] = checker.integer(
                node_,
                key_path(properties_path, props, key),
                minimum=1,
                what='a Lambda function version: a positive integer such as "1"',
            )
    if len(checker.problems) > before or name is None or alias is None:
        return None
    current, target = versions.get("CurrentVersion"), versions.get("TargetVersion")
    assert current is not None and target is not None
    return LambdaFunctionResource(
        logical_name=logical_name, name=name, alias=alias, current_version=current, target_version=target
    )

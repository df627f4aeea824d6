"""Value constraints the AWS Lambda and Amazon ECS APIs place on what a Lambda or ECS AppSpec names, read from
botocore's service models rather than restated by hand (function and alias patterns, capacity provider
ranges, AssignPublicIp values)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.model import ServiceModel


@dataclass(frozen=True)
class StringShape:
    """A string member's pattern and length limits."""

    pattern: re.Pattern[str] | None
    min_length: int
    max_length: int | None

    def accepts(self, value: str) -> bool:
        """Whether the API would accept ``value``."""
        if len(value) < self.min_length or (self.max_length is not None and len(value) > self.max_length):
            return False
        return self.pattern is None or self.pattern.fullmatch(value) is not None


@cache
def _model(service: str) -> ServiceModel:
    # Imported here: botocore takes a noticeable time to import, and EC2 AppSpecs never need it.
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


@cache
def string_shape(service: str, shape_name: str) -> StringShape:
    """The constraints of string shape ``shape_name`` in ``service``'s model (e.g. lambda's ``Alias``)."""
    metadata = _model(service).shape_for(shape_name).metadata
    pattern = metadata.get("pattern")
    return StringShape(
        pattern=re.compile(pattern) if pattern else None,
        min_length=metadata.get("min", 0),
        max_length=metadata.get("max"),
    )


@cache
def integer_range(service: str, structure: str, member: str) -> tuple[int | None, int | None]:
    """The (min, max) of integer member ``member`` of ``structure`` in ``service``'s model."""
    metadata = _model(service).shape_for(structure).members[member].metadata
    return metadata.get("min"), metadata.get("max")


@cache
def enum_values(service: str, structure: str, member: str) -> tuple[str, ...]:
    """The allowed values of enum member ``member`` of ``structure`` in ``service``'s model."""
    return tuple(_model(service).shape_for(structure).members[member].enum)


def lambda_function_name() -> StringShape:
    """A Lambda function to deploy: name, partial ARN or ARN (lambda's ``FunctionName``)."""
    return string_shape("lambda", "FunctionName")


def lambda_hook_function() -> StringShape:
    """A hook function to invoke: name or ARN, optionally qualified (lambda ``Invoke``'s function name)."""
    return string_shape("lambda", "NamespacedFunctionName")


def lambda_alias() -> StringShape:
    """A Lambda alias name."""
    return string_shape("lambda", "Alias")

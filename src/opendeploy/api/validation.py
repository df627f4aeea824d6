"""Request validation against botocore's CodeDeploy model, and the choice of the exception AWS names.

``validate_request`` runs botocore's own ``ParamValidator`` (required members, types, minimum lengths)
extended with the constraints it leaves to the service (maximum lengths and sizes, enums, patterns).
A failure becomes the specific exception the model lists for the operation, found by a table-free
rule over member names: a missing ``applicationName`` in an operation whose errors include
``ApplicationNameRequiredException`` raises that; an invalid one raises
``InvalidApplicationNameException``; list members also try the singular (``instanceNames`` ->
``InstanceName...``) and the member's shape name (``iamSessionArn`` -> ``InvalidIamSessionArnException``).
When no such exception is listed, the enclosing members are tried, then ``ValidationException``.

Handlers reuse the same choice for their own semantic checks:
``raise invalid_parameter(ctx.operation, "deploymentConfigName", "…")``,
``raise missing_parameter(ctx.operation, "applicationName")`` or
``modeled_error(ctx.operation, "InvalidTagsToAddException", "InvalidTagException")``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator, ValidationErrors

from opendeploy.api.errors import ApiError

SERVICE_NAME = "codedeploy"
GENERIC_VALIDATION_ERROR = "ValidationException"


@cache
def service_model(service_name: str = SERVICE_NAME) -> ServiceModel:
    """botocore's model of the service (loaded once per process)."""
    return botocore.session.get_session().get_service_model(service_name)


@cache
def operation_model(operation: str, service_name: str = SERVICE_NAME) -> OperationModel | None:
    model = service_model(service_name)
    if operation not in model.operation_names:
        return None
    return model.operation_model(operation)


@cache
def _error_names(operation: str, service_name: str = SERVICE_NAME) -> frozenset[str]:
    op = operation_model(operation, service_name)
    return frozenset(shape.name for shape in op.error_shapes) if op else frozenset()


def modeled_error(
    operation: str,
    *candidates: str,
    default: str = GENERIC_VALIDATION_ERROR,
    service_name: str = SERVICE_NAME,
) -> str:
    """The first of ``candidates`` the model lists for ``operation``, else ``default``."""
    # Case-insensitive, so a member spelt "ec2TagFilters" still finds "InvalidEC2TagException".
    listed = {name.lower(): name for name in _error_names(operation, service_name)}
    for candidate in candidates:
        if candidate.lower() in listed:
            return listed[candidate.lower()]
    return default


def _capitalize(name: str) -> str:
    return name[:1].upper() + name[1:]


def _variants(member: str) -> list[str]:
    """``applicationNames`` -> ``ApplicationNames``, ``ApplicationName``."""
    base = _capitalize(member)
    return [base, base[:-1]] if base.endswith("s") and len(base) > 1 else [base]


_WORD = re.compile(r"[A-Z]+[0-9]*(?![a-z])|[A-Z][a-z0-9]*|[a-z][a-z0-9]*|[0-9]+")
_LAST_WORD = re.compile(r"[A-Z][a-z0-9]+$")


def _words(name: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(name)]


def _same_word(a: str, b: str) -> bool:
    # "Config" ~ "Configuration", "Processes" ~ "Process", "Hosts" ~ "Host"
    return a == b or (min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)))


def _resembles(name: str, core: str) -> bool:
    """Whether every word of ``name`` appears, in order, among the words of ``core``, and both start
    with the same word: ``zonalConfig`` resembles ``ZonalDeploymentConfiguration``."""
    name_words, core_words = _words(name), _words(core)
    if not name_words or not core_words or not _same_word(name_words[0], core_words[0]):
        return False
    position = 1
    for word in name_words[1:]:
        while position < len(core_words) and not _same_word(word, core_words[position]):
            position += 1
        if position == len(core_words):
            return False
        position += 1
    return True


def _invalid_error(operation: str, path: Sequence[tuple[str, str | None]], service_name: str) -> str:
    """The ``Invalid...Exception`` the model lists for ``operation`` that best names a bad value at
    ``path`` ((member, shape name) pairs, outermost first), else ``ValidationException``.

    From the innermost member outwards, each level tries: exact names (the member, its singular, its
    shape, its parent's name + its own: ``MinimumHealthyHostValue``), then listed exceptions whose
    name contains the member's words (``trafficRoutingConfig`` -> ``TrafficRoutingConfiguration``),
    then the shape's name without its last word (``EC2TagFilter`` -> ``EC2Tag``).
    """
    listed = {name.lower(): name for name in _error_names(operation, service_name)}
    cores = sorted(
        name[len("Invalid") : -len("Exception")]
        for name in listed.values()
        if name.startswith("Invalid") and name.endswith("Exception")
    )

    def exact(names: Sequence[str]) -> str | None:
        for name in names:
            for candidate in (f"Invalid{name}Exception", f"Invalid{name}ToAddException"):
                if candidate.lower() in listed:
                    return listed[candidate.lower()]
        return None

    def similar(names: Sequence[str]) -> str | None:
        for name in names:
            matches = [core for core in cores if _resembles(name, core)]
            if matches:
                return f"Invalid{min(matches, key=lambda core: len(_words(core)))}Exception"
        return None

    for depth in range(len(path) - 1, -1, -1):
        member, shape_name = path[depth]
        names = _variants(member) + ([shape_name] if shape_name else [])
        if depth > 0:
            names += [parent + _capitalize(member) for parent in _variants(path[depth - 1][0])]
        shorter = _LAST_WORD.sub("", shape_name) if shape_name else ""
        found = exact(names) or similar(names) or (exact([shorter]) if shorter else None)
        if found:
            return found
    return GENERIC_VALIDATION_ERROR


def invalid_parameter(
    operation: str,
    member: str,
    message: str,
    *,
    shape_name: str | None = None,
    enclosing: Sequence[str] = (),
    service_name: str = SERVICE_NAME,
) -> ApiError:
    """An ``Invalid<Member>Exception`` (as the model lists it for ``operation``) for a bad value.

    ``enclosing`` names the members around it, outermost first (``["minimumHealthyHosts"]``).
    """
    path = [(name, None) for name in enclosing] + [(member, shape_name)]
    return _invalid_from_path(operation, path, message, service_name)


def _invalid_from_path(
    operation: str, path: Sequence[tuple[str, str | None]], message: str, service_name: str
) -> ApiError:
    return ApiError(_invalid_error(operation, path, service_name), message)


def missing_parameter(
    operation: str,
    member: str,
    message: str | None = None,
    *,
    shape_name: str | None = None,
    enclosing: Sequence[str] = (),
    service_name: str = SERVICE_NAME,
) -> ApiError:
    """A ``<Member>RequiredException`` (as listed for ``operation``) for a value that must be given."""
    return _missing_from_path(
        operation, [(name, None) for name in enclosing], member, shape_name, message, service_name
    )


def _missing_from_path(
    operation: str,
    enclosing: Sequence[tuple[str, str | None]],
    member: str,
    shape_name: str | None,
    message: str | None,
    service_name: str,
) -> ApiError:
    names = _variants(member) + ([shape_name] if shape_name else [])
    code = modeled_error(
        operation, *(f"{name}RequiredException" for name in names), default="", service_name=service_name
    )
    if not code:
        code = _invalid_error(operation, enclosing, service_name) if enclosing else GENERIC_VALIDATION_ERROR
    where = ".".join([*(name for name, _ in enclosing), member])
    return ApiError(code, message or f"Missing required parameter: {where}")


# --- botocore's validator, extended with the constraints it does not check --------------------------


class _StrictParamValidator(ParamValidator):
    """botocore's ParamValidator plus maximum lengths, enums, patterns and integer-vs-boolean."""

    def _validate_string(self, param: Any, shape: Shape, errors: ValidationErrors, name: str) -> None:
        super()._validate_string(param, shape, errors, name)
        self._check_string_constraints(param, shape, errors, name)

    def _check_string_constraints(
        self, param: Any, shape: Shape, errors: ValidationErrors, name: str
    ) -> None:
        if not isinstance(param, str):
            return
        maximum = shape.metadata.get("max")
        if maximum is not None and len(param) > maximum:
            errors.report(name, "too long", param=param, max_allowed=maximum)
        enum = getattr(shape, "enum", None)
        if enum and param not in enum:
            errors.report(name, "invalid enum", param=param, valid_values=list(enum))
        pattern = _compiled_pattern(shape.metadata.get("pattern"))
        if pattern is not None and not pattern.fullmatch(param):
            errors.report(name, "invalid pattern", param=param, pattern=pattern.pattern)

    def _validate_list(self, param: Any, shape: Shape, errors: ValidationErrors, name: str) -> None:
        super()._validate_list(param, shape, errors, name)
        if not isinstance(param, list | tuple):
            return
        maximum = shape.metadata.get("max")
        if maximum is not None and len(param) > maximum:
            errors.report(name, "too many", param=param, max_allowed=maximum)
        member = shape.member
        # botocore only type-checks items of lists of plain strings; check their enum, pattern, length.
        if member.type_name == "string" and not self._shape_has_constraints(member):
            for index, item in enumerate(param):
                self._check_string_constraints(item, member, errors, f"{name}[{index}]")

    def _validate_integer(self, param: Any, shape: Shape, errors: ValidationErrors, name: str) -> None:
        if isinstance(param, bool):
            errors.report(name, "invalid type", param=param, valid_types=["integer"])
            return
        super()._validate_integer(param, shape, errors, name)
        maximum = shape.metadata.get("max")
        if isinstance(param, int) and maximum is not None and param > maximum:
            errors.report(name, "invalid range", param=param, min_allowed=shape.metadata.get("min"))

    _validate_long = _validate_integer


@cache
def _compiled_pattern(pattern: str | None) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:  # a regex dialect Python cannot read: leave it unchecked rather than reject
        return None


@dataclass(frozen=True)
class _Problem:
    reason: str
    path: str  # botocore's name: ".applicationName", ".tags[0].Key"
    details: dict[str, Any]


class _CollectingErrors(ValidationErrors):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[_Problem] = []

    def report(self, name: str, reason: str, **kwargs: Any) -> None:
        super().report(name, reason, **kwargs)
        self.problems.append(_Problem(reason, name, kwargs))


_INDEX = re.compile(r"\[\d+\]|\s\(key: .*\)$")


def _members_and_shapes(input_shape: Shape, path: str) -> list[tuple[str, Shape]]:
    """Walk ``.a.b[0].c`` from the input shape: the member names with their shapes."""
    walked: list[tuple[str, Shape]] = []
    shape = input_shape
    for part in [p for p in _INDEX.sub("", path).split(".") if p]:
        while shape.type_name == "list":
            shape = shape.member
        if shape.type_name == "map":
            shape = shape.value
        if shape.type_name != "structure" or part not in shape.members:
            break
        shape = shape.members[part]
        walked.append((part, shape))
    return walked


def _describe(problem: _Problem) -> str:
    where = problem.path.lstrip(".") or "the request"
    d = problem.details
    match problem.reason:
        case "missing required field":
            prefix = f"{where}." if problem.path else ""
            return f"Missing required parameter: {prefix}{d['required_name']}"
        case "unknown field":
            return f"Unknown parameter in {where}: {d['unknown_param']!r}"
        case "invalid type":
            return f"Invalid type for {where}: {type(d['param']).__name__} value {d['param']!r}"
        case "invalid length" if d["param"] == 0:
            return f"{where} must not be empty"
        case "invalid length":
            return f"{where} is too short (minimum length {d['min_allowed']})"
        case "too long":
            return f"{where} is too long (maximum length {d['max_allowed']})"
        case "too many":
            return f"{where} has too many items (maximum {d['max_allowed']})"
        case "invalid range":
            return f"{where} is out of range: {d['param']!r}"
        case "invalid enum":
            return f"{where} must be one of {', '.join(d['valid_values'])}, not {d['param']!r}"
        case "invalid pattern":
            return f"{where} has characters that are not allowed: {d['param']!r} (allowed: {d['pattern']})"
    return f"Invalid value for {where}"


def _error_for(operation: OperationModel, problem: _Problem) -> ApiError:
    message = _describe(problem)
    service_name = operation.service_model.service_name
    walked = _members_and_shapes(operation.input_shape, problem.path)
    path = [(member, _element_shape_name(shape)) for member, shape in walked]
    if problem.reason == "invalid length" and path and problem.details["param"] == 0:
        # An empty value where one is needed is reported as missing: "" names no application.
        return _missing_from_path(operation.name, path[:-1], path[-1][0], path[-1][1], message, service_name)
    if problem.reason == "missing required field":
        member = problem.details["required_name"]
        parent = walked[-1][1] if walked else operation.input_shape
        while parent.type_name == "list":
            parent = parent.member
        shape = parent.members.get(member) if parent.type_name == "structure" else None
        return _missing_from_path(
            operation.name, path, member, _element_shape_name(shape), message, service_name
        )
    if problem.reason == "unknown field" or not walked:
        return ApiError(GENERIC_VALIDATION_ERROR, message)
    return _invalid_from_path(operation.name, path, message, service_name)


def _element_shape_name(shape: Shape | None) -> str | None:
    if shape is None:
        return None
    while shape.type_name == "list":
        shape = shape.member
    return shape.name


def validate_request(operation: OperationModel, params: dict[str, Any]) -> None:
    """Raise the modeled ``ApiError`` for the first problem with ``params``, if any."""
    if operation.input_shape is None:
        if params:
            raise ApiError(GENERIC_VALIDATION_ERROR, f"{operation.name} takes no parameters")
        return
    errors = _CollectingErrors()
    _StrictParamValidator()._validate(params, operation.input_shape, errors, name="")
    if errors.problems:
        # A missing member is the clearest complaint; report it before type or format problems.
        problems = sorted(errors.problems, key=lambda p: p.reason != "missing required field")
        raise _error_for(operation, problems[0])

"""IAM operation registry, the context handlers get, and IAM's errors.

A handler takes an ``IamContext`` and the request's parameters (validated against botocore's ``iam``
model) and returns the members of the operation's output shape (timestamps as epoch seconds). It runs
in one database transaction; ``Get*`` and ``List*`` operations in a read transaction.

Errors carry IAM's codes (``NoSuchEntity``, ``EntityAlreadyExists``, ``LimitExceeded``,
``DeleteConflict``, ``InvalidInput``, ``MalformedPolicyDocument``, ``ValidationError``) with the HTTP
status botocore's model gives each, so botocore raises the matching exception classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from opendeploy.api.codedeploy.registry import OperationContext
from opendeploy.api.errors import ApiError
from opendeploy.api.validation import service_model
from opendeploy.store.secrets import SecretBox

SERVICE_NAME = "iam"
# IAM's codes that botocore's model does not list (the Query protocol's common errors).
_COMMON_STATUS = {"AccessDenied": 403, "ValidationError": 400, "InvalidAction": 400}


@dataclass
class IamContext(OperationContext):
    """What an IAM handler may use: the codedeploy handlers' context plus the server's secrets
    (access keys' secrets are stored encrypted)."""

    secrets: SecretBox | None = None

    @property
    def box(self) -> SecretBox:
        if self.secrets is None:
            raise RuntimeError("IamContext without the server's secrets")
        return self.secrets


IamHandler = Callable[[IamContext, dict[str, Any]], dict[str, Any] | None]

IAM_OPERATIONS: dict[str, IamHandler] = {}


def operation(name: str) -> Callable[[IamHandler], IamHandler]:
    """Register ``handler`` as the implementation of IAM operation ``name``."""

    def register(handler: IamHandler) -> IamHandler:
        if name not in service_model(SERVICE_NAME).operation_names:
            raise ValueError(f"{name} is not an operation of botocore's iam model")
        IAM_OPERATIONS[name] = handler
        return handler

    return register


@cache
def _modeled_status() -> dict[str, int]:
    statuses = dict(_COMMON_STATUS)
    for shape in service_model(SERVICE_NAME).error_shapes:
        error = shape.metadata.get("error", {})
        if "code" in error:
            statuses[error["code"]] = error.get("httpStatusCode", 400)
    return statuses


def iam_error(code: str, message: str) -> ApiError:
    """An error with IAM's ``code`` and the HTTP status the model gives it."""
    return ApiError(code, message, status=_modeled_status().get(code, 400))


def no_such_user(name: str) -> ApiError:
    return iam_error("NoSuchEntity", f"The user with name {name} cannot be found.")

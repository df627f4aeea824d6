"""Identifiers CodeDeploy hands out: deployment ids (``d-`` + 9 upper-case alphanumerics) and UUIDs."""

from __future__ import annotations

import re
import secrets
import string
import uuid

_DEPLOYMENT_ID_ALPHABET = string.ascii_uppercase + string.digits
DEPLOYMENT_ID_PATTERN = re.compile(r"^d-[A-Z0-9]{9}$")


def new_deployment_id() -> str:
    """A fresh deployment id such as ``d-5SHGGURRB``."""
    return "d-" + "".join(secrets.choice(_DEPLOYMENT_ID_ALPHABET) for _ in range(9))


def is_deployment_id(value: str) -> bool:
    return bool(DEPLOYMENT_ID_PATTERN.match(value))


def new_uuid() -> str:
    """A fresh id for an application, deployment group or deployment configuration."""
    return str(uuid.uuid4())

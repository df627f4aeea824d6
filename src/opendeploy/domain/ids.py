"""Identifiers CodeDeploy hands out: deployment ids (``d-`` + 9 upper-case alphanumerics) and UUIDs, and
the ids of requests, audit events and notifications."""

from __future__ import annotations

import random
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


def new_request_id() -> str:
    """An id for a request, an audit event or a notification: a version-4 UUID from the process's own
    generator (seeded by the system, and again in a forked child), not from the system's, which costs a
    system call where every request needs two. They only need to be unique; nothing is secured by them."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))

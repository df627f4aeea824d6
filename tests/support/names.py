"""Unique resource names, so tests can share one server without seeing each other's data."""

from __future__ import annotations

import itertools
import os

_counter = itertools.count(1)


def unique(prefix: str = "t") -> str:
    """``prefix-<pid>-<n>``: unique within a test session, valid as a CodeDeploy name."""
    return f"{prefix}-{os.getpid()}-{next(_counter)}"

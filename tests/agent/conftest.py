"""Fixtures for the host install engine's tests: user accounts the guide's examples name."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from host_accounts import ensure_accounts

NEEDS_ROOT = "needs root: creates users, changes file owners, runs scripts as other users"


@pytest.fixture(scope="session")
def accounts() -> Callable[..., None]:
    """``accounts(users=[...], groups=[...])`` creates what is missing (idempotent); skips when not root."""
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    return ensure_accounts

"""Fixtures for the host install engine's tests: user accounts the guide's examples name."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from collections.abc import Callable

import pytest

NEEDS_ROOT = "needs root: changes file owners / runs scripts as other users"


def _ensure_group(name: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        subprocess.run(["groupadd", "--system", "-f", name], check=True)


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        # --no-user-group: a group of the same name (adm) may already exist.
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--no-user-group",
                "--gid",
                "nogroup",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=True,
        )


@pytest.fixture(scope="session")
def accounts() -> Callable[..., None]:
    """``accounts(users=[...], groups=[...])`` creates what is missing (idempotent); skips when not root."""
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)

    def ensure(users: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> None:
        for group in groups:
            _ensure_group(group)
        for user in users:
            _ensure_user(user)

    return ensure

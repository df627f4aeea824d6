"""Create the accounts and groups tests need (the guide's adm, ec2-user, operator, wheel …), idempotently."""

from __future__ import annotations

import grp
import pwd
import subprocess
from collections.abc import Iterable


def ensure_accounts(users: Iterable[str] = (), groups: Iterable[str] = ()) -> None:
    """Create each missing group and (system, home-less) user; needs root."""
    for group in groups:
        try:
            grp.getgrnam(group)
        except KeyError:
            subprocess.run(["groupadd", "--system", "-f", group], check=True)
    for user in users:
        try:
            pwd.getpwnam(user)
        except KeyError:
            # --no-user-group: a group of the same name (adm) may already exist.
            command = ["useradd", "--system", "--no-create-home", "--no-user-group", "--gid", "nogroup"]
            subprocess.run([*command, "--shell", "/usr/sbin/nologin", user], check=True)

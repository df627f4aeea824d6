"""The AppSpec ``permissions`` section: which installed objects each entry applies to, and applying it.

Only objects this deployment's Install created (copied files, made directories) are ever changed;
files and directories that were already on the host keep their owners and modes. Entries apply in the
AppSpec's order, so where two entries touch the same object the later one wins.

Selection rules (guide L23727–L23955; the decisions where the guide is ambiguous are recorded in
tests/agent/test_permissions.py):

- ``object`` names a file this install copied: the entry applies to that file (if ``type`` has ``file``).
- ``object`` names a directory: the candidates are the installed files (``type: file``) and installed
  directories (``type: directory``) anywhere below it. The directory itself is a candidate too when this
  install created it, ``type`` has ``directory`` and ``pattern`` is ``"**"`` — this is what the guide's
  example result table shows for its rule 6 (``my-folder-3`` becomes ``dr-xrw-r-- root wheel``).
- ``pattern`` is matched against the candidate's path relative to ``object``: ``"**"`` alone matches
  everything; otherwise ``*`` matches within one path component and ``**`` across components, so
  ``"*.txt"`` selects only the object's immediate children.
- An ``except`` item excludes a candidate when it matches the path relative to ``object`` or the
  candidate's absolute path (a leading ``/`` optional): the guide writes ``my-file-3.txt``,
  ``tmp/my-app/my-folder-2/my-folder-3`` and ``/var/www/html/WordPress/ReadMe.txt``.

Per object, the owner and group are set first (a chown clears setuid and setgid bits), then the mode,
then ACLs (``setfacl --set``), then the SELinux context.
"""

from __future__ import annotations

import grp
import os
import posixpath
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from opendeploy.appspec.model import Permission


class PermissionsError(Exception):
    """A permissions entry cannot be applied; the message names the entry and the object."""


@dataclass(frozen=True)
class InstalledObjects:
    """What one Install created: absolute, normalised paths."""

    files: frozenset[str]
    directories: frozenset[str]


@dataclass
class PermissionsPlan:
    """The objects each entry applies to, in application order, and what it sets on them."""

    selections: list[tuple[int, Permission, list[str]]] = field(default_factory=list)

    def instructions(self) -> list[dict[str, Any]]:
        """The plan as install-instruction records (the ``-install.json`` file's chmod/chown/… entries)."""
        records: list[dict[str, Any]] = []
        for _, entry, paths in self.selections:
            for path in paths:
                if entry.owner or entry.group:
                    records.append(
                        {"type": "chown", "owner": entry.owner, "group": entry.group, "file": path}
                    )
                if entry.mode:
                    records.append({"type": "chmod", "mode": entry.mode, "file": path})
                if entry.acls:
                    records.append({"type": "setfacl", "acl": list(entry.acls), "file": path})
                if entry.context:
                    context = {
                        "user": entry.context.user,
                        "type": entry.context.type,
                        "range": entry.context.range,
                    }
                    records.append({"type": "semanage", "context": context, "file": path})
        return records


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*)", pattern)
    regex = "".join(".*" if p == "**" else "[^/]*" if p == "*" else re.escape(p) for p in parts)
    return re.compile(regex, re.DOTALL)


def _matches_pattern(pattern: str, rel: str) -> bool:
    return pattern == "**" or _glob(pattern).fullmatch(rel) is not None


def _excluded(items: Iterable[str], rel: str, path: str) -> bool:
    absolute = path.lstrip("/")
    return any(_glob(item).fullmatch(rel) or _glob(item.lstrip("/")).fullmatch(absolute) for item in items)


def _below(path: str, directory: str) -> bool:
    return path.startswith(directory.rstrip("/") + "/")


def plan_permissions(permissions: Sequence[Permission], installed: InstalledObjects) -> PermissionsPlan:
    """Work out which installed objects each entry applies to (pure: no file system access)."""
    plan = PermissionsPlan()
    sorted_files = sorted(installed.files)
    sorted_dirs = sorted(installed.directories)
    for index, entry in enumerate(permissions):
        obj = posixpath.normpath(entry.object)
        if not obj.startswith("/"):
            raise PermissionsError(f"permissions[{index}]: object {entry.object!r} is not an absolute path")
        selected: list[str] = []
        if obj in installed.files:
            if "file" in entry.types:
                if entry.pattern != "**" or entry.except_:
                    raise PermissionsError(
                        f"permissions[{index}]: object {obj} is a file, so pattern and except cannot be used"
                    )
                selected.append(obj)
        else:
            if (
                "directory" in entry.types
                and obj in installed.directories
                and entry.pattern == "**"
                and not _excluded(entry.except_, ".", obj)
            ):
                selected.append(obj)
            candidates: list[str] = []
            if "file" in entry.types:
                candidates.extend(p for p in sorted_files if _below(p, obj))
            if "directory" in entry.types:
                candidates.extend(p for p in sorted_dirs if _below(p, obj))
            prefix = len(obj.rstrip("/")) + 1
            for path in candidates:
                rel = path[prefix:]
                if _matches_pattern(entry.pattern, rel) and not _excluded(entry.except_, rel, path):
                    selected.append(path)
        if selected:
            plan.selections.append((index, entry, sorted(set(selected))))
    return plan


# -- applying ------------------------------------------------------------------------------------------


def _uid(name: str, index: int) -> int:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise PermissionsError(f"permissions[{index}]: owner {name!r} is not a user on this host") from None


def _gid(name: str, index: int) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise PermissionsError(f"permissions[{index}]: group {name!r} is not a group on this host") from None


def _rwx(bits: int) -> str:
    return ("r" if bits & 4 else "-") + ("w" if bits & 2 else "-") + ("x" if bits & 1 else "-")


def _full_acl(acls: Sequence[str], mode: int) -> str:
    """The ACL for ``setfacl --set``: the given entries plus the base entries from the object's mode."""
    base = [f"u::{_rwx(mode >> 6 & 7)}", f"g::{_rwx(mode >> 3 & 7)}", f"o::{_rwx(mode & 7)}"]
    return ",".join([*base, *acls])


def _is_default_entry(acl: str) -> bool:
    return acl.startswith(("d:", "default:"))


def selinux_enabled() -> bool:
    return os.path.exists("/sys/fs/selinux/enforce")


def _run(command: list[str], what: str) -> None:
    if shutil.which(command[0]) is None:
        raise PermissionsError(f"{what}: the {command[0]} command is not installed on this host")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PermissionsError(
            f"{what}: {command[0]} failed: {result.stderr.strip() or result.stdout.strip()}"
        )


def check_permissions(plan: PermissionsPlan) -> None:
    """Fail now, before anything is copied, if an entry names an unknown user or group or needs a
    command this host lacks."""
    for index, entry, _ in plan.selections:
        if entry.owner:
            _uid(entry.owner, index)
        if entry.group:
            _gid(entry.group, index)
        if entry.acls and shutil.which("setfacl") is None:
            raise PermissionsError(f"permissions[{index}]: acls need the setfacl command (package acl)")


def apply_permissions(plan: PermissionsPlan, *, warn: Any = None) -> list[str]:
    """Apply the plan to the file system; returns ``semanage`` cleanup lines for contexts it added."""
    context_cleanup: list[str] = []
    for index, entry, paths in plan.selections:
        uid = _uid(entry.owner, index) if entry.owner else -1
        gid = _gid(entry.group, index) if entry.group else -1
        mode = int(entry.mode, 8) if entry.mode else None
        acl_groups: dict[tuple[str, bool], list[str]] = {}
        for path in paths:
            try:
                if uid != -1 or gid != -1:
                    os.chown(path, uid, gid, follow_symlinks=False)
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    continue  # links have no mode, ACL or context of their own
                if mode is not None:
                    os.chmod(path, mode)
                    st = os.lstat(path)
            except OSError as exc:
                raise PermissionsError(
                    f"permissions[{index}]: cannot change {path}: {exc.strerror}"
                ) from None
            if entry.acls:
                is_dir = stat.S_ISDIR(st.st_mode)
                if not is_dir and any(_is_default_entry(a) for a in entry.acls):
                    raise PermissionsError(
                        f"permissions[{index}]: default ACL entries apply only to directories, not {path}"
                    )
                acl_groups.setdefault((_full_acl(entry.acls, stat.S_IMODE(st.st_mode)), is_dir), []).append(
                    path
                )
        for (acl, _), group in acl_groups.items():
            for start in range(0, len(group), 256):
                _run(["setfacl", "--set", acl, "--", *group[start : start + 256]], f"permissions[{index}]")
        if entry.context:
            if not selinux_enabled():
                if warn is not None:
                    warn(f"permissions[{index}]: SELinux is not enabled on this host; context not applied")
                continue
            for path in paths:
                command = ["semanage", "fcontext", "-a", "-t", entry.context.type]
                if entry.context.user:
                    command += ["-s", entry.context.user]
                if entry.context.range:
                    command += ["-r", entry.context.range]
                spec = re.escape(os.path.realpath(path))
                _run([*command, spec], f"permissions[{index}]")
                _run(["restorecon", "-v", path], f"permissions[{index}]")
                context_cleanup.append(f"semanage\0{spec}")
    return context_cleanup


def installed_objects(files: Iterable[str | Path], directories: Iterable[str | Path]) -> InstalledObjects:
    return InstalledObjects(
        frozenset(posixpath.normpath(str(p)) for p in files),
        frozenset(posixpath.normpath(str(p)) for p in directories),
    )

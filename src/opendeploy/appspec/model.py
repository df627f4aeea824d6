"""Typed AppSpec objects: what a parsed and validated AppSpec file says, for each compute platform.

These are plain frozen dataclasses with no I/O; ``opendeploy.appspec`` parsers build them and the
host install engine and the deployment engine read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FileExistsBehavior(StrEnum):
    """What Install does with a file already at a destination that the last deployment did not install."""

    DISALLOW = "DISALLOW"
    OVERWRITE = "OVERWRITE"
    RETAIN = "RETAIN"


DEFAULT_SCRIPT_TIMEOUT = 3600
"""Seconds a hook script may run when its entry names no ``timeout``."""


@dataclass(frozen=True)
class FileMapping:
    """One ``files`` entry: ``source`` (bundle-relative; ``/`` is all of it) copied into ``destination``."""

    source: str
    destination: str


@dataclass(frozen=True)
class SELinuxContext:
    """A ``permissions[].context`` entry: SELinux user, type and range labels."""

    type: str
    user: str | None = None
    range: str | None = None


@dataclass(frozen=True)
class Permission:
    """One ``permissions`` entry, with the guide's defaults filled in.

    ``mode`` keeps the octal digits exactly as written (``"0644"``, ``"644"``, ``"4755"``), never an int.
    ``types`` is the ``type`` list: ``("file",)``, ``("directory",)`` or both (the default).
    """

    object: str
    pattern: str = "**"
    except_: tuple[str, ...] = ()
    owner: str | None = None
    group: str | None = None
    mode: str | None = None
    acls: tuple[str, ...] = ()
    context: SELinuxContext | None = None
    types: tuple[str, ...] = ("file", "directory")


@dataclass(frozen=True)
class HookScript:
    """One script of a lifecycle event hook: where it is in the bundle, its timeout, and whom it runs as."""

    location: str
    timeout: int = DEFAULT_SCRIPT_TIMEOUT
    runas: str | None = None
    sudo: bool = False


@dataclass(frozen=True)
class ServerAppSpec:
    """An EC2/On-Premises AppSpec (``appspec.yml``)."""

    version: str
    os: str
    files: tuple[FileMapping, ...] = ()
    permissions: tuple[Permission, ...] = ()
    hooks: dict[str, tuple[HookScript, ...]] = field(default_factory=dict)
    file_exists_behavior: FileExistsBehavior | None = None
    source_name: str = "appspec.yml"

    def scripts_for(self, lifecycle_event: str) -> tuple[HookScript, ...]:
        """The scripts this AppSpec runs at ``lifecycle_event``, in order (empty if none)."""
        return self.hooks.get(lifecycle_event, ())

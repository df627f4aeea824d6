"""Install: copy the revision's files to their destinations as the AppSpec's ``files`` section says.

The steps, in order (guide L23287–L23507, L19419–L19643):

1. Remove what the deployment group's previous Install put on the host, listed in its cleanup file
   ``deployment-instructions/<dg-id>-cleanup`` (newest first; directories only if empty, so files that
   scripts created are never touched), then delete that file.
2. Plan the copies: a source file goes *into* its destination directory; a source directory's contents
   go into the destination recursively; ``/`` is the whole revision, AppSpec file included. Missing
   destination directories are made. A file already at a destination is handled by the effective
   ``file_exists_behavior``: the AppSpec's, else the deployment's, else DISALLOW (fail the deployment);
   OVERWRITE replaces it; RETAIN keeps it — and, as the guide's rollback example says, lists it as part
   of this deployment, so the next deployment's cleanup removes it.
3. Write the plan to ``<dg-id>-install.json``, then carry it out, listing each object in a new cleanup
   file *before* creating it, so an interrupted Install is still cleaned up next time.
4. Apply the AppSpec's ``permissions`` to what was created.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from opendeploy.agent.deployment_root import DeploymentRoot, write_atomically
from opendeploy.agent.file_copy import copy_file
from opendeploy.agent.permissions import (
    PermissionsError,
    apply_permissions,
    check_permissions,
    installed_objects,
    plan_permissions,
)
from opendeploy.appspec.model import FileExistsBehavior, ServerAppSpec


class InstallError(Exception):
    """Install cannot go ahead or failed part-way; the message says which file and why."""


@dataclass(frozen=True)
class Copy:
    source: str
    destination: str
    replace: bool = False  # OVERWRITE of a file that was already there
    link: bool = False  # the source is a symbolic link, copied as a link


@dataclass(frozen=True)
class MakeDirectory:
    directory: str


@dataclass(frozen=True)
class Retain:
    """RETAIN: the file already at ``destination`` stays and becomes part of this deployment."""

    destination: str


Instruction = Copy | MakeDirectory | Retain


@dataclass
class InstallPlan:
    instructions: list[Instruction] = field(default_factory=list)

    def as_json(self, permission_records: list[dict]) -> str:
        records: list[dict] = []
        for instruction in self.instructions:
            if isinstance(instruction, Copy):
                records.append(
                    {"type": "copy", "source": instruction.source, "destination": instruction.destination}
                )
            elif isinstance(instruction, MakeDirectory):
                records.append({"type": "mkdir", "directory": instruction.directory})
            else:
                records.append({"type": "retain", "file": instruction.destination})
        return json.dumps({"instructions": records + permission_records}) + "\n"


@dataclass(frozen=True)
class InstallResult:
    copied: int
    directories_made: int
    retained: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def effective_file_exists_behavior(
    appspec: ServerAppSpec, deployment_option: FileExistsBehavior | None
) -> FileExistsBehavior:
    """The AppSpec's value wins over the deployment's, which wins over the default DISALLOW."""
    return appspec.file_exists_behavior or deployment_option or FileExistsBehavior.DISALLOW


# -- step 1: the previous deployment's cleanup file ----------------------------------------------------


def remove_previous_install(cleanup_file: Path) -> list[str]:
    """Undo the previous Install listed in ``cleanup_file``, then delete the file.

    Returns the paths it removed.
    """
    try:
        text = cleanup_file.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    lines.pop()  # the text after the last newline: empty, or a line cut short when Install was interrupted
    removed: list[str] = []
    for line in reversed(lines):
        if line.startswith("semanage\0"):
            subprocess.run(
                ["semanage", "fcontext", "-d", line.split("\0", 1)[1]], capture_output=True, check=False
            )
            continue
        if not line.startswith("/"):
            continue  # not a line Install wrote
        try:
            st = os.lstat(line)
        except FileNotFoundError:
            continue
        try:
            if stat.S_ISDIR(st.st_mode):
                os.rmdir(line)
            else:
                os.unlink(line)
            removed.append(line)
        except OSError as exc:
            # A directory that scripts have put files in stays, with those files.
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise InstallError(
                    f"cannot remove {line}, installed by the previous deployment: {exc.strerror}"
                ) from None
    cleanup_file.unlink()
    return removed


# -- step 2: planning ----------------------------------------------------------------------------------


class _Planner:
    def __init__(self, archive: Path, behavior: FileExistsBehavior) -> None:
        self.archive = str(archive)
        self.behavior = behavior
        self.plan = InstallPlan()
        self.copy_targets: dict[str, str] = {}  # destination -> source it comes from
        self.made_dirs: set[str] = set()
        self.existing_dirs: set[str] = set()

    def source_path(self, index: int, source: str) -> str:
        rel = posixpath.normpath(source.replace("\\", "/").lstrip("/")) if source.strip("/\\") else "."
        if rel == ".." or rel.startswith("../"):
            raise InstallError(f"files[{index}]: source {source!r} is outside the revision")
        path = posixpath.join(self.archive, rel) if rel != "." else self.archive
        if not os.path.lexists(path):
            raise InstallError(f"files[{index}]: source {source!r} does not exist in the revision")
        return path

    def ensure_directory(self, directory: str, index: int) -> None:
        if directory in self.made_dirs or directory in self.existing_dirs:
            return
        if directory in self.copy_targets:
            raise InstallError(
                f"files[{index}]: {directory} is both a file being copied and a directory being made"
            )
        try:
            st = os.stat(directory)  # a link to a directory is a fine destination
        except FileNotFoundError:
            parent = posixpath.dirname(directory)
            if parent != directory:
                self.ensure_directory(parent, index)
            self.made_dirs.add(directory)
            self.plan.instructions.append(MakeDirectory(directory))
            return
        except NotADirectoryError:
            st = None
        if st is None or not stat.S_ISDIR(st.st_mode):
            raise InstallError(f"files[{index}]: cannot make directory {directory}: a file is in the way")
        self.existing_dirs.add(directory)

    def copy(self, source: str, destination: str, index: int, *, link: bool) -> None:
        if destination in self.copy_targets:
            raise InstallError(
                f"files[{index}]: two sources are copied to {destination}: "
                f"{self.copy_targets[destination]} and {source}"
            )
        if destination in self.made_dirs:
            raise InstallError(
                f"files[{index}]: {destination} is both a file being copied and a directory being made"
            )
        self.copy_targets[destination] = source
        if posixpath.dirname(destination) in self.made_dirs:
            # Its directory does not exist yet, so neither does the file.
            self.plan.instructions.append(Copy(source, destination, link=link))
            return
        try:
            st = os.lstat(destination)
        except FileNotFoundError:
            self.plan.instructions.append(Copy(source, destination, link=link))
            return
        if stat.S_ISDIR(st.st_mode):
            raise InstallError(
                f"files[{index}]: cannot copy {source} to {destination}: a directory is in the way"
            )
        if self.behavior == FileExistsBehavior.OVERWRITE:
            self.plan.instructions.append(Copy(source, destination, replace=True, link=link))
        elif self.behavior == FileExistsBehavior.RETAIN:
            self.plan.instructions.append(Retain(destination))
        else:
            raise InstallError(
                "The deployment failed because a specified file already exists at this location: "
                f"{destination}"
            )

    def add_tree(self, source_dir: str, destination: str, index: int) -> None:
        self.ensure_directory(destination, index)
        for entry in sorted(os.scandir(source_dir), key=lambda e: e.name):
            target = posixpath.join(destination, entry.name)
            if entry.is_dir(follow_symlinks=False):
                self.add_tree(entry.path, target, index)
            else:
                self.copy(entry.path, target, index, link=entry.is_symlink())

    def add_mapping(self, index: int, source: str, destination: str) -> None:
        if not destination.startswith("/"):
            raise InstallError(f"files[{index}]: destination {destination!r} is not an absolute path")
        destination = posixpath.normpath(destination)
        path = self.source_path(index, source)
        # The named source may be a link to a directory inside the revision: copy what it points to.
        if os.path.isdir(path):
            self.add_tree(path, destination, index)
        else:
            self.ensure_directory(destination, index)
            target = posixpath.join(destination, posixpath.basename(path))
            self.copy(path, target, index, link=os.path.islink(path))


def plan_install(appspec: ServerAppSpec, archive: Path, behavior: FileExistsBehavior) -> InstallPlan:
    """The copies and directories Install will make, checked against what is on disk now."""
    planner = _Planner(archive, behavior)
    for index, mapping in enumerate(appspec.files):
        planner.add_mapping(index, mapping.source, mapping.destination)
    return planner.plan


# -- step 3: carrying it out ---------------------------------------------------------------------------


def _record(cleanup: TextIO, paths: list[str]) -> None:
    cleanup.write("".join(f"{path}\n" for path in paths))
    cleanup.flush()


_BATCH = 256


def _target(instruction: Instruction) -> str:
    return instruction.directory if isinstance(instruction, MakeDirectory) else instruction.destination


def _execute(plan: InstallPlan, cleanup: TextIO) -> tuple[list[str], list[str], list[str]]:
    copied: list[str] = []
    made: list[str] = []
    retained: list[str] = []
    instructions = plan.instructions
    for start in range(0, len(instructions), _BATCH):
        batch = instructions[start : start + _BATCH]
        # Every object is listed before it is created: an interrupted Install is still undone next time.
        _record(cleanup, [_target(i) for i in batch])
        for instruction in batch:
            if isinstance(instruction, MakeDirectory):
                os.mkdir(instruction.directory, 0o755)
                made.append(instruction.directory)
            elif isinstance(instruction, Copy):
                if instruction.replace:
                    os.unlink(instruction.destination)  # replace a link itself, never write through it
                if instruction.link:
                    os.symlink(os.readlink(instruction.source), instruction.destination)
                else:
                    copy_file(instruction.source, instruction.destination)
                copied.append(instruction.destination)
            else:
                retained.append(instruction.destination)
    return copied, made, retained


def install(
    appspec: ServerAppSpec,
    archive: Path,
    root: DeploymentRoot,
    deployment_group_id: str,
    deployment_option: FileExistsBehavior | None,
    *,
    warn: Callable[[str], None] | None = None,
) -> InstallResult:
    """Run the Install lifecycle event for one deployment group (see the module docstring)."""
    root.instructions_dir.mkdir(parents=True, exist_ok=True)
    cleanup_path = root.cleanup_file(deployment_group_id)
    remove_previous_install(cleanup_path)

    behavior = effective_file_exists_behavior(appspec, deployment_option)
    plan = plan_install(appspec, archive, behavior)

    # Permissions apply to what this Install creates; work out which objects before creating anything,
    # so a bad entry fails the event with nothing copied.
    creates_files = [i.destination for i in plan.instructions if isinstance(i, Copy)]
    creates_dirs = [i.directory for i in plan.instructions if isinstance(i, MakeDirectory)]
    try:
        permissions_plan = plan_permissions(
            appspec.permissions, installed_objects(creates_files, creates_dirs)
        )
        check_permissions(permissions_plan)
    except PermissionsError as exc:
        raise InstallError(str(exc)) from None
    write_atomically(
        root.install_instructions_file(deployment_group_id), plan.as_json(permissions_plan.instructions())
    )

    warnings: list[str] = []

    def collect(message: str) -> None:
        warnings.append(message)
        if warn is not None:
            warn(message)

    with open(cleanup_path, "w", encoding="utf-8", errors="surrogateescape") as cleanup:
        try:
            copied, made, retained = _execute(plan, cleanup)
        except OSError as exc:
            raise InstallError(f"Install failed: {exc.filename or ''}: {exc.strerror}") from exc
        try:
            _record(cleanup, apply_permissions(permissions_plan, warn=collect))
        except PermissionsError as exc:
            raise InstallError(str(exc)) from None
    return InstallResult(len(copied), len(made), tuple(retained), tuple(warnings))

"""The agent's on-disk state under ``root_dir``, laid out exactly as AWS's agent lays it out.

```
<root_dir>/<deployment-group-id>/<deployment-id>/{bundle.tar, deployment-archive/, logs/scripts.log}
<root_dir>/deployment-instructions/<dg-id>-cleanup, <dg-id>-install.json,
                                   <dg-id>_last_successful_install, <dg-id>_most_recent_install
<root_dir>/deployment-logs/codedeploy-agent-deployments.log
```

Hook scripts that compute paths from ``DEPLOYMENT_GROUP_ID`` and ``DEPLOYMENT_ID`` keep working, and a
root directory may be shared with AWS's own agent. This module also keeps the revision archive to
``max_revisions`` per deployment group.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEPLOYMENT_INSTRUCTIONS = "deployment-instructions"
DEPLOYMENT_LOGS = "deployment-logs"
DEPLOYMENTS_LOG = "codedeploy-agent-deployments.log"
ARCHIVE = "deployment-archive"
BUNDLE = "bundle.tar"
SCRIPTS_LOG = "logs/scripts.log"


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new content, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@dataclass(frozen=True)
class DeploymentRoot:
    """Paths and bookkeeping under one ``root_dir``."""

    root_dir: Path

    @property
    def instructions_dir(self) -> Path:
        return self.root_dir / DEPLOYMENT_INSTRUCTIONS

    @property
    def deployments_log(self) -> Path:
        return self.root_dir / DEPLOYMENT_LOGS / DEPLOYMENTS_LOG

    def group_dir(self, deployment_group_id: str) -> Path:
        return self.root_dir / deployment_group_id

    def deployment_dir(self, deployment_group_id: str, deployment_id: str) -> Path:
        return self.root_dir / deployment_group_id / deployment_id

    def cleanup_file(self, deployment_group_id: str) -> Path:
        return self.instructions_dir / f"{deployment_group_id}-cleanup"

    def install_instructions_file(self, deployment_group_id: str) -> Path:
        return self.instructions_dir / f"{deployment_group_id}-install.json"

    def _marker(self, deployment_group_id: str, which: str) -> Path:
        return self.instructions_dir / f"{deployment_group_id}_{which}"

    def last_successful_install(self, deployment_group_id: str) -> Path | None:
        """The deployment directory of the deployment group's last successful install, if any."""
        return self._read_marker(self._marker(deployment_group_id, "last_successful_install"))

    def most_recent_install(self, deployment_group_id: str) -> Path | None:
        """The deployment directory of the deployment group's most recent download, if any."""
        return self._read_marker(self._marker(deployment_group_id, "most_recent_install"))

    def mark_last_successful_install(self, deployment_group_id: str, deployment_dir: Path) -> None:
        write_atomically(self._marker(deployment_group_id, "last_successful_install"), str(deployment_dir))

    def mark_most_recent_install(self, deployment_group_id: str, deployment_dir: Path) -> None:
        write_atomically(self._marker(deployment_group_id, "most_recent_install"), str(deployment_dir))

    @staticmethod
    def _read_marker(path: Path) -> Path | None:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return Path(text) if text else None

    @contextlib.contextmanager
    def group_lock(self, deployment_group_id: str) -> Iterator[None]:
        """Hold the deployment group's lock: one command at a time touches its instructions and archive."""
        self.instructions_dir.mkdir(parents=True, exist_ok=True)
        with open(self.instructions_dir / f".{deployment_group_id}.lock", "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def prune_revisions(
        self, deployment_group_id: str, current_deployment_id: str, retained: int
    ) -> list[Path]:
        """Delete the group's oldest archived deployments, keeping the ``retained`` most recent others.

        The current deployment's directory and the last successful one are never deleted, so the
        previous revision's ApplicationStop scripts and its logs stay available. Returns what was deleted.
        """
        group = self.group_dir(deployment_group_id)
        if not group.is_dir():
            return []
        keep = {group / current_deployment_id}
        last_successful = self.last_successful_install(deployment_group_id)
        if last_successful is not None:
            keep.add(last_successful)
        candidates = []
        for entry in os.scandir(group):
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False) and path != group / current_deployment_id:
                candidates.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name, path))
        candidates.sort(reverse=True)  # newest first
        deleted = []
        for _, _, path in candidates[retained:]:
            if path in keep:
                continue
            shutil.rmtree(path, ignore_errors=True)
            deleted.append(path)
        return deleted

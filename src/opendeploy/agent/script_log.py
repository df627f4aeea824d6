"""Where hook scripts' output goes, in the AWS agent's formats.

- ``<deployment-dir>/logs/scripts.log``: ``2024-05-01 12:00:00 LifecycleEvent - AfterInstall``,
  ``… Script - scripts/after.sh``, ``… [stdout]<line>``, ``… [stderr]<line>`` (local time, no zone);
- ``<root_dir>/deployment-logs/codedeploy-agent-deployments.log``: the same entries from every
  deployment, each as ``[2024-05-01 12:00:00.123] [d-ABCDEFGHI]<entry>``;
- the event's diagnostics log tail: the newest whole entries, at most 2 KB, without timestamps.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from opendeploy.agent.diagnostics import LogTail

DEPLOYMENTS_LOG_LIMIT = 64 * 1024 * 1024
DEPLOYMENTS_LOG_KEEP = 8
"""The deployments log rolls over at 64 MiB, keeping 8 files in all, as AWS's agent does."""


def _roll_over(path: Path) -> None:
    """``x.log`` -> ``x.log.1`` -> … -> ``x.log.7``; the oldest is dropped."""
    try:
        if path.stat().st_size < DEPLOYMENTS_LOG_LIMIT:
            return
    except FileNotFoundError:
        return
    for index in range(DEPLOYMENTS_LOG_KEEP - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        newer = path.with_name(f"{path.name}.{index - 1}") if index > 1 else path
        if newer.exists():
            os.replace(newer, older)


class EventLog:
    """The log of one lifecycle event of one deployment; use as a context manager."""

    def __init__(
        self,
        scripts_log: Path,
        deployments_log: Path | None,
        deployment_id: str,
        observer: Callable[[str], None] | None = None,
    ) -> None:
        scripts_log.parent.mkdir(parents=True, exist_ok=True)
        # Both files stay open for the whole event and are closed by close().
        self._scripts = open(scripts_log, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._deployments = None
        if deployments_log is not None:
            deployments_log.parent.mkdir(parents=True, exist_ok=True)
            _roll_over(deployments_log)
            self._deployments = open(deployments_log, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._deployment_id = deployment_id
        self._observer = observer
        self.tail = LogTail()

    def entry(self, text: str) -> None:
        """Record one entry (a single line, without its newline) everywhere it belongs."""
        now = datetime.datetime.now()
        self._scripts.write(f"{now:%Y-%m-%d %H:%M:%S} {text}\n")
        self._scripts.flush()
        if self._deployments is not None:
            self._deployments.write(
                f"[{now:%Y-%m-%d %H:%M:%S}.{now.microsecond // 1000:03d}] [{self._deployment_id}]{text}\n"
            )
            self._deployments.flush()
        self.tail.append(text + "\n")
        if self._observer is not None:
            self._observer(text)

    def close(self) -> None:
        self._scripts.close()
        if self._deployments is not None:
            self._deployments.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

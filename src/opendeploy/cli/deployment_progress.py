"""Following a deployment through the public API: its status and instance counts, and the lifecycle
events of the instances worth showing, fetched with few requests however large the fleet.

Each ``DeploymentTracker.refresh()`` costs one GetDeployment. Which target is in which status comes from
ListDeploymentTargets filtered by status, asked again only for the statuses whose ``deploymentOverview``
count no longer matches what the tracker knows (a status change always changes some count, because
targets only move forward: Pending, then InProgress, then Succeeded / Failed / Skipped), plus the
statuses whose members come and go (InProgress, Ready); everything is listed again now and then in case
something was missed. Lifecycle events (BatchGetDeploymentTargets, 25 targets a call) are fetched only
for the rows on show: again on every refresh while a target is running, once more when its status
changes, never again after it has finished. A deployment to 1,000 instances therefore costs a handful of
requests a refresh, not 40.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

COMPLETED_DEPLOYMENT_STATUSES = frozenset({"Succeeded", "Failed", "Stopped"})
# The deploymentOverview members, in the order people read them.
OVERVIEW_STATUSES: tuple[str, ...] = ("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Ready")
COMPLETED_TARGET_STATUSES = frozenset({"Succeeded", "Failed", "Skipped"})
# Listing order: a target seen in two lists (it moved between the calls) keeps the later status.
LISTING_ORDER: tuple[str, ...] = (
    "Pending",
    "InProgress",
    "Ready",
    "Unknown",
    "Succeeded",
    "Failed",
    "Skipped",
)
# Statuses that gain and lose members, so an unchanged count does not mean unchanged members.
CHANGING_STATUSES = frozenset({"InProgress", "Ready", "Unknown"})
BATCH_SIZE = 25  # BatchGetDeploymentTargets takes at most 25 target ids (API model)
RELIST_INTERVAL = 10.0  # seconds between complete listings, a safety net for anything missed
_TARGET_MEMBERS = ("instanceTarget", "lambdaTarget", "ecsTarget", "cloudFormationTarget")
# The order rows are chosen in when not all fit: failures first, then what is running, then what
# finished most recently, then what is still waiting.
_ROW_PRIORITY = {"Failed": 0, "InProgress": 1, "Ready": 1, "Unknown": 1, "Succeeded": 2, "Skipped": 2}


@dataclass(frozen=True)
class LifecycleEvent:
    """One lifecycle event of one target, as BatchGetDeploymentTargets describes it."""

    name: str
    status: str
    start: datetime | None = None
    end: datetime | None = None
    diagnostics: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> LifecycleEvent:
        return cls(
            name=data.get("lifecycleEventName", "?"),
            status=data.get("status", "Unknown"),
            start=data.get("startTime"),
            end=data.get("endTime"),
            diagnostics=data.get("diagnostics") or {},
        )


@dataclass(frozen=True)
class Target:
    """One target (instance) of the deployment; ``events`` is empty until its details are fetched."""

    target_id: str
    status: str
    events: tuple[LifecycleEvent, ...] = ()
    label: str | None = None  # Blue or Green, in a blue/green deployment
    detailed: bool = False

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Target:
        body: Mapping[str, Any] = next((data[m] for m in _TARGET_MEMBERS if m in data), {})
        return cls(
            target_id=body.get("targetId", "?"),
            status=body.get("status", "Unknown"),
            events=tuple(LifecycleEvent.from_wire(e) for e in body.get("lifecycleEvents") or ()),
            label=body.get("instanceLabel"),
            detailed=True,
        )

    @property
    def current_event(self) -> LifecycleEvent | None:
        """The event running now; else the one that failed; else None."""
        for wanted in ("InProgress", "Failed"):
            for event in self.events:
                if event.status == wanted:
                    return event
        return None

    @property
    def failed_event(self) -> LifecycleEvent | None:
        return next((event for event in self.events if event.status == "Failed"), None)

    def elapsed(self, now: datetime) -> float | None:
        """Seconds from its first event's start to its last event's end (or to ``now`` while running)."""
        starts = [event.start for event in self.events if event.start is not None]
        if not starts:
            return None
        if self.status in COMPLETED_TARGET_STATUSES:
            ends = [event.end for event in self.events if event.end is not None]
            end = max(ends) if ends else now
        else:
            end = now
        return max(0.0, (end - min(starts)).total_seconds())


@dataclass(frozen=True)
class Snapshot:
    """What one refresh found: the deployment, its counts, and the rows worth showing."""

    deployment: Mapping[str, Any]
    overview: Mapping[str, int]
    rows: tuple[Target, ...]  # sorted by target id
    hidden: Mapping[str, int]  # status -> number of targets not among the rows
    target_count: int
    observed_at: datetime

    @property
    def deployment_id(self) -> str:
        return self.deployment.get("deploymentId", "?")

    @property
    def status(self) -> str:
        return self.deployment.get("status", "Unknown")

    @property
    def finished(self) -> bool:
        return self.status in COMPLETED_DEPLOYMENT_STATUSES

    @property
    def elapsed(self) -> float | None:
        created = self.deployment.get("createTime")
        if created is None:
            return None
        end = self.deployment.get("completeTime") if self.finished else None
        return max(0.0, ((end or self.observed_at) - created).total_seconds())

    @property
    def failed_rows(self) -> tuple[Target, ...]:
        return tuple(row for row in self.rows if row.status == "Failed")


def overview_of(deployment: Mapping[str, Any]) -> dict[str, int]:
    counts = deployment.get("deploymentOverview") or {}
    return {status: int(counts.get(status, 0)) for status in OVERVIEW_STATUSES}


def natural_key(target_id: str) -> tuple[tuple[int, int | str], ...]:
    """Sorts ``host-9`` before ``host-10``."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", target_id))


def choose_rows(statuses: Mapping[str, str], finished_order: Mapping[str, int], limit: int) -> list[str]:
    """The ``limit`` target ids most worth showing: failures, then running targets, then the most
    recently finished, then those still waiting; returned in name order so rows keep their places."""
    if len(statuses) <= limit:
        return sorted(statuses, key=natural_key)

    def rank(target_id: str) -> tuple[Any, ...]:
        status = statuses[target_id]
        # Among finished targets the most recently finished first (a larger order is more recent).
        return (_ROW_PRIORITY.get(status, 3), -finished_order.get(target_id, 0), natural_key(target_id))

    return sorted(sorted(statuses, key=rank)[:limit], key=natural_key)


def batches(items: Sequence[str], size: int = BATCH_SIZE) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class DeploymentTracker:
    """Keeps track of one deployment through a boto3 ``codedeploy`` client; see the module docstring."""

    def __init__(
        self,
        client: Any,
        deployment_id: str,
        *,
        max_rows: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.deployment_id = deployment_id
        self.max_rows = max_rows
        self._clock = clock
        self._statuses: dict[str, str] = {}  # target id -> its status as last seen
        self._details: dict[str, Target] = {}  # target id -> its last fetched details
        self._finished_order: dict[str, int] = {}  # target id -> when it was seen finished (a counter)
        self._finish_counter = 0
        self._listed_at: float | None = None
        self.requests = 0  # API calls made, for the curious (and the tests)

    # --- requests --------------------------------------------------------------------------------

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        self.requests += 1
        return getattr(self._client, method)(**params)

    def _list(self, status: str) -> list[str]:
        ids: list[str] = []
        params: dict[str, Any] = {
            "deploymentId": self.deployment_id,
            "targetFilters": {"TargetStatus": [status]},
        }
        while True:
            page = self._call("list_deployment_targets", **params)
            ids.extend(page.get("targetIds") or ())
            if not page.get("nextToken"):
                return ids
            params["nextToken"] = page["nextToken"]

    def _fetch(self, target_ids: Sequence[str]) -> None:
        for batch in batches(list(target_ids)):
            answer = self._call(
                "batch_get_deployment_targets", deploymentId=self.deployment_id, targetIds=list(batch)
            )
            for data in answer.get("deploymentTargets") or ():
                target = Target.from_wire(data)
                self._details[target.target_id] = target
                self._set_status(target.target_id, target.status)

    # --- bookkeeping -----------------------------------------------------------------------------

    def _set_status(self, target_id: str, status: str) -> None:
        if status in COMPLETED_TARGET_STATUSES and self._statuses.get(target_id) != status:
            self._finish_counter += 1
            self._finished_order[target_id] = self._finish_counter
        self._statuses[target_id] = status

    def _tally(self) -> dict[str, int]:
        counts = Counter(self._statuses.values())
        return {status: counts.get(status, 0) for status in OVERVIEW_STATUSES}

    def _relist(self, overview: Mapping[str, int], everything: bool) -> None:
        tally = self._tally()
        if everything:
            statuses = [s for s in LISTING_ORDER if overview.get(s, 0) or s == "Unknown" or tally.get(s)]
        else:
            statuses = [
                s
                for s in LISTING_ORDER
                if overview.get(s, 0) != tally.get(s, 0) or (s in CHANGING_STATUSES and overview.get(s, 0))
            ]
        found: dict[str, str] = {}
        for status in statuses:
            for target_id in self._list(status):
                found[target_id] = status  # later lists win: the target moved on between the calls
        listed = set(statuses)
        for target_id, status in list(self._statuses.items()):
            if target_id not in found and status in listed:
                # It left a listed status for one that was not listed: find it on the next refresh.
                self._statuses[target_id] = "Unknown"
        for target_id, status in found.items():
            self._set_status(target_id, status)

    def _needs_fetch(self, target_id: str) -> bool:
        details = self._details.get(target_id)
        status = self._statuses[target_id]
        if details is None or details.status != status:
            return True
        return status not in COMPLETED_TARGET_STATUSES and status != "Pending"

    # --- the refresh -----------------------------------------------------------------------------

    def refresh(self) -> Snapshot:
        """Ask the server what changed; the rows to show now."""
        deployment = self._call("get_deployment", deploymentId=self.deployment_id)["deploymentInfo"]
        overview = overview_of(deployment)
        now = self._clock()
        periodic = self._listed_at is None or now - self._listed_at >= RELIST_INTERVAL
        if periodic or self._tally() != overview:
            self._relist(overview, everything=periodic)
            if periodic:
                self._listed_at = now
        rows = choose_rows(self._statuses, self._finished_order, self.max_rows)
        self._fetch([target_id for target_id in rows if self._needs_fetch(target_id)])
        shown = set(rows)
        hidden = Counter(status for target_id, status in self._statuses.items() if target_id not in shown)
        return Snapshot(
            deployment=deployment,
            overview=overview,
            rows=tuple(
                self._details.get(target_id) or Target(target_id, self._statuses[target_id])
                for target_id in rows
            ),
            hidden=dict(hidden),
            target_count=len(self._statuses),
            observed_at=datetime.now(UTC),
        )

    def settle(self) -> Snapshot:
        """A final refresh of a finished deployment whose rows agree with its counts (one more
        complete listing if a target moved while the last refresh was under way)."""
        self._listed_at = None
        return self.refresh()

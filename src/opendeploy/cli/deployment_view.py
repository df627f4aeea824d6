"""How ``opendeploy watch`` and ``opendeploy deploy --follow`` show a deployment: a live rich view on a
terminal, one plain line per change otherwise, and a summary at the end.

The live view has the deployment's status, configuration and elapsed time, its overview counts, what the
server says of it (``deploymentStatusMessages``: e.g. how long BlockTraffic and AllowTraffic should take
behind its load balancers, said when it starts), and one row per instance on show (``DeploymentTracker``
picks at most ``max_rows``) with its status, an event strip (one mark per lifecycle event, in order:
done, running, failed, skipped, pending), the event it is at and its elapsed time; the instances not on
show are counted by status under the table.

The plain lines name the deployment's status and counts when they change, each status message once and,
for fleets no larger than the row limit, each instance's lifecycle events as they finish and its status
when it changes; larger fleets get lines for failed instances only, so a log stays readable. The summary
repeats the final counts, the rows, the deployment's errorInformation and, for each failed instance on
show, the failed event's diagnostics: error code, script, message and the tail of the script's log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from opendeploy.cli.deployment_progress import (
    COMPLETED_TARGET_STATUSES,
    OVERVIEW_STATUSES,
    LifecycleEvent,
    Snapshot,
    Target,
)


@dataclass(frozen=True)
class Mark:
    """How one lifecycle event status is drawn in an event strip."""

    glyph: str  # on a terminal
    plain: str  # in plain output (ASCII)
    style: str
    meaning: str


EVENT_MARKS: dict[str, Mark] = {
    "Succeeded": Mark("■", "+", "green", "done"),
    "InProgress": Mark("▶", ">", "yellow bold", "running"),
    "Failed": Mark("✗", "x", "red bold", "failed"),
    "Skipped": Mark("○", "-", "dim", "skipped"),
    "Pending": Mark("·", ".", "dim", "pending"),
}
UNKNOWN_MARK = Mark("?", "?", "magenta", "unknown")
STATUS_STYLES = {
    "Succeeded": "green",
    "Failed": "red bold",
    "Stopped": "red",
    "InProgress": "yellow",
    "Baking": "yellow",
    "Ready": "cyan",
    "Skipped": "dim",
    "Pending": "dim",
    "Created": "dim",
    "Queued": "dim",
}
LOG_TAIL_LINES = 20  # the diagnostics' log tail is short already (the agent sends the last few KiB)


def format_duration(seconds: float | None) -> str:
    """``4.2s`` under a minute, ``3:07`` under an hour, then ``1:03:07``."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _mark(status: str) -> Mark:
    return EVENT_MARKS.get(status, UNKNOWN_MARK)


def event_strip(target: Target, *, plain: bool = False) -> Text:
    """One mark per lifecycle event, in the order the events run."""
    strip = Text()
    for event in target.events:
        mark = _mark(event.status)
        strip.append(mark.plain if plain else mark.glyph, style="" if plain else mark.style)
    return strip


def counts_text(counts: Mapping[str, int], *, skip_zero: bool = False) -> Text:
    text = Text()
    for status in OVERVIEW_STATUSES:
        count = counts.get(status, 0)
        if skip_zero and not count:
            continue
        if text:
            text.append(", ")
        text.append(f"{status} {count}", style=STATUS_STYLES.get(status, "") if count else "dim")
    return text


def _title(snapshot: Snapshot) -> str:
    deployment = snapshot.deployment
    where = f"{deployment.get('applicationName', '?')}/{deployment.get('deploymentGroupName', '?')}"
    parts = [where]
    if deployment.get("deploymentConfigName"):
        parts.append(deployment["deploymentConfigName"])
    creator = deployment.get("creator")
    if creator and creator != "user":
        parts.append(f"created by {creator}")
    return ", ".join(parts)


def _heading(snapshot: Snapshot) -> Text:
    text = Text("Deployment ", style="bold")
    text.append(snapshot.deployment_id, style="bold")
    text.append("  ")
    text.append(snapshot.status, style=STATUS_STYLES.get(snapshot.status, ""))
    text.append(f"  {format_duration(snapshot.elapsed)}  ", style="bold")
    text.append(_title(snapshot), style="dim")
    return text


def _waiting_note(snapshot: Snapshot) -> Text | None:
    if snapshot.target_count or snapshot.finished:
        return None
    if snapshot.status in ("Created", "Queued"):
        return Text("Waiting for the deployment to start ...", style="dim")
    return Text("No instances yet.", style="dim")


def _hidden_text(snapshot: Snapshot) -> Text | None:
    hidden = sum(snapshot.hidden.values())
    if not hidden:
        return None
    text = Text(f"… and {hidden} more instance{'s' if hidden != 1 else ''}: ", style="dim")
    text.append_text(counts_text(snapshot.hidden, skip_zero=True))
    return text


def _legend() -> Text:
    text = Text()
    for mark in EVENT_MARKS.values():
        if text:
            text.append("  ")
        text.append(mark.glyph, style=mark.style)
        text.append(f" {mark.meaning}", style="dim")
    return text


def rows_table(snapshot: Snapshot) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("Instance", no_wrap=True)
    table.add_column("Status", no_wrap=True, min_width=10)
    table.add_column("Events", no_wrap=True)
    table.add_column("Event", no_wrap=True, min_width=16)  # most event names fit: columns stay put
    table.add_column("Elapsed", justify="right", no_wrap=True)
    for row in snapshot.rows:
        current = row.current_event
        name = Text(row.target_id)
        if row.label:
            name.append(f" ({row.label})", style="dim")
        table.add_row(
            name,
            Text(row.status, style=STATUS_STYLES.get(row.status, "")),
            event_strip(row),
            Text(current.name if current else "", style=_mark(current.status).style if current else ""),
            format_duration(row.elapsed(snapshot.observed_at)),
        )
    return table


def status_messages(snapshot: Snapshot) -> tuple[str, ...]:
    """What the server says of the deployment as it runs (e.g. how long its traffic steps should take)."""
    return tuple(snapshot.deployment.get("deploymentStatusMessages") or ())


def live_view(snapshot: Snapshot) -> RenderableType:
    """The live view of one snapshot (for a terminal)."""
    parts: list[RenderableType] = [_heading(snapshot), counts_text(snapshot.overview)]
    parts.extend(Text(message, style="dim") for message in status_messages(snapshot))
    note = _waiting_note(snapshot)
    if note is not None:
        parts.append(note)
    if snapshot.rows:
        parts.append(rows_table(snapshot))
    hidden = _hidden_text(snapshot)
    if hidden is not None:
        parts.append(hidden)
    if snapshot.rows:
        parts.append(_legend())
    return Group(*parts)


# --- plain output: one line per change --------------------------------------------------------------


def _event_line(target: Target, event: LifecycleEvent) -> str:
    line = f"{target.target_id}: {event.name} {event.status}"
    if event.status in COMPLETED_TARGET_STATUSES and event.start and event.end:
        line += f" ({format_duration((event.end - event.start).total_seconds())})"
    return line


class PlainReporter:
    """Writes a line for each change between snapshots (see the module docstring)."""

    def __init__(self, echo: Callable[[str], None], *, max_rows: int) -> None:
        self._echo = echo
        self._max_rows = max_rows
        self._status: str | None = None
        self._overview: Mapping[str, int] | None = None
        self._targets: dict[str, Target] = {}
        self._messages: set[str] = set()

    def update(self, snapshot: Snapshot) -> None:
        # The end (status and counts) is left to the summary, which follows.
        if snapshot.status != self._status and not snapshot.finished:
            self._status = snapshot.status
            self._echo(f"{snapshot.deployment_id}: {snapshot.status} ({_title(snapshot)})")
        if not snapshot.finished:  # the summary repeats them at the end
            for message in status_messages(snapshot):
                if message not in self._messages:
                    self._messages.add(message)
                    self._echo(f"{snapshot.deployment_id}: {message}")
        every_event = snapshot.target_count <= self._max_rows
        for target in snapshot.rows:
            if target.detailed:
                self._target_changes(self._targets.get(target.target_id), target, snapshot, every_event)
                self._targets[target.target_id] = target
        if snapshot.target_count and snapshot.overview != self._overview and not snapshot.finished:
            self._overview = snapshot.overview
            self._echo(f"{snapshot.deployment_id}: {counts_text(snapshot.overview).plain}")

    def _target_changes(
        self, before: Target | None, target: Target, snapshot: Snapshot, every_event: bool
    ) -> None:
        status_changed = (before is None or before.status != target.status) and (
            target.status == "Failed" or (every_event and target.status != "Pending")
        )
        finished = target.status in COMPLETED_TARGET_STATUSES
        if status_changed and not finished:  # it started: say so before its events
            self._echo(f"{target.target_id}: {target.status}")
        if every_event:
            self._event_changes(before, target)
        if status_changed and finished:  # it ended: say so after its events
            elapsed = target.elapsed(snapshot.observed_at)
            self._echo(
                f"{target.target_id}: {target.status}"
                + (f" ({format_duration(elapsed)})" if elapsed is not None else "")
            )

    def _event_changes(self, before: Target | None, target: Target) -> None:
        seen = {event.name: event.status for event in before.events} if before else {}
        for event in target.events:
            if event.status != "Pending" and seen.get(event.name) != event.status:
                self._echo(_event_line(target, event))


# --- the summary --------------------------------------------------------------------------------------


def _diagnostics_lines(target: Target) -> list[Text]:
    event = target.failed_event
    if event is None:
        return [Text(f"{target.target_id} failed (no lifecycle event failed; see the deployment's error)")]
    diagnostics = event.diagnostics
    heading = Text(f"{target.target_id} failed at ", style="bold")
    heading.append(event.name, style="red bold")
    if diagnostics.get("errorCode"):
        heading.append(f": {diagnostics['errorCode']}")
    lines = [heading]
    if diagnostics.get("scriptName"):
        lines.append(Text(f"  script: {diagnostics['scriptName']}"))
    if diagnostics.get("message"):
        lines.append(Text(f"  message: {diagnostics['message']}"))
    tail = (diagnostics.get("logTail") or "").rstrip("\n").splitlines()
    if tail:
        lines.append(Text("  log tail:"))
        lines.extend(Text(f"    {line}", style="dim") for line in tail[-LOG_TAIL_LINES:])
    return lines


def summary(snapshot: Snapshot, *, plain: bool) -> list[RenderableType]:
    """The end of the story: what happened, to which instances, and why it failed if it did."""
    deployment = snapshot.deployment
    heading = Text(f"Deployment {snapshot.deployment_id} ", style="bold")
    heading.append(snapshot.status, style=STATUS_STYLES.get(snapshot.status, "") + " bold")
    heading.append(f" after {format_duration(snapshot.elapsed)} ({_title(snapshot)})")
    parts: list[RenderableType] = [heading]
    error = deployment.get("errorInformation")
    if error:
        parts.append(Text(f"Error {error.get('code', '')}: {error.get('message', '')}", style="red"))
    parts.extend(Text(message) for message in deployment.get("deploymentStatusMessages") or ())
    count = snapshot.target_count
    instances = Text(f"{count} instance{'s' if count != 1 else ''}: ")
    instances.append_text(counts_text(snapshot.overview, skip_zero=True) if count else Text("none"))
    parts.append(instances)
    if snapshot.rows:
        if plain:
            names = next((row.events for row in snapshot.rows if row.events), ())
            if names:
                parts.append(Text("events: " + ", ".join(event.name for event in names)))
            width = max(len(row.target_id) for row in snapshot.rows)
            for row in snapshot.rows:
                line = (
                    f"{row.target_id.ljust(width)}  {row.status:<10}  [{event_strip(row, plain=True).plain}]"
                )
                elapsed = row.elapsed(snapshot.observed_at)
                parts.append(Text(line + (f"  {format_duration(elapsed)}" if elapsed is not None else "")))
        else:
            parts.append(rows_table(snapshot))
    hidden = _hidden_text(snapshot)
    if hidden is not None:
        parts.append(hidden)
    for target in snapshot.failed_rows:
        parts.extend(_diagnostics_lines(target))
    rollback = deployment.get("rollbackInfo") or {}
    if rollback.get("rollbackDeploymentId"):
        parts.append(
            Text(
                f"Rolled back by deployment {rollback['rollbackDeploymentId']}: "
                f"opendeploy watch {rollback['rollbackDeploymentId']}"
            )
        )
    if rollback.get("rollbackTriggeringDeploymentId"):
        parts.append(Text(f"This deployment rolls back {rollback['rollbackTriggeringDeploymentId']}."))
    return parts

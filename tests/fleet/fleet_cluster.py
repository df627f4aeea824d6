"""A fleet of simulated machines running real agents against one real server, for the fleet tests.

``Cluster`` holds the server and ten hosts (``e2e_hosts.Host``: a mount namespace with a private tmpfs
over ``/tmp/CodeDeployExample`` and a real ``opendeploy agent``), registered with the tag
``Name=<cluster tag>``. A test picks its instances by giving them the tag ``fleet-test=<unique value>``
(``select``) and makes a deployment group for that value, so the tests share the hosts without seeing
each other's groups (a tag key is re-used, not added, so the instances stay within the 10-tag limit).

Every revision made by ``revision`` runs one hook script for all five scriptable in-place events. The
script reads marker files on its own host (``mark``) so a test can make chosen instances fail or wait:

- ``fail-<group>-<event>``: the event fails on that host (exit 1); ``fail-<group>-<label>-<event>``:
  only the script of the revision labelled ``label`` fails there (ApplicationStop runs the previous
  revision's script);
- ``hold-<group>-<event>``: the script writes ``held-<deployment id>`` and waits for
  ``release-<group>`` (``release``) before it goes on;
- each event appends ``<event> <deployment id> <label>`` to ``<app dir>/hooks.log`` (``hook_log``);
  BeforeInstall sleeps a moment so instances deployed together visibly overlap.

The timings the tests assert on (order of instances, how many ran at once) come from the lifecycle
events' start and end times the server recorded.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploying import SERVICE_ROLE, bundle_bytes, register_host, upload, write_revision
from e2e_hosts import SAMPLE_DESTINATION, Host

from support.names import unique
from support.server import ServerProcess

MARKERS = f"{SAMPLE_DESTINATION}/markers"
SELECTOR = "fleet-test"
TERMINAL = {"Succeeded", "Failed", "Stopped"}
IN_PLACE_EVENTS = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]
SCRIPTED_EVENTS = ["ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]

HOOK = """#!/bin/sh
markers=/tmp/CodeDeployExample/markers
mkdir -p "{app_dir}"
echo "$LIFECYCLE_EVENT $DEPLOYMENT_ID {label}" >> "{app_dir}/hooks.log"
if [ -e "$markers/fail-$DEPLOYMENT_GROUP_NAME-$LIFECYCLE_EVENT" ] \\
  || [ -e "$markers/fail-$DEPLOYMENT_GROUP_NAME-{label}-$LIFECYCLE_EVENT" ]; then
  echo "told to fail at $LIFECYCLE_EVENT" >&2
  exit 1
fi
if [ -e "$markers/hold-$DEPLOYMENT_GROUP_NAME-$LIFECYCLE_EVENT" ]; then
  touch "$markers/held-$DEPLOYMENT_ID"
  while [ ! -e "$markers/release-$DEPLOYMENT_GROUP_NAME" ]; do sleep 0.05; done
fi
if [ "$LIFECYCLE_EVENT" = BeforeInstall ]; then sleep {pause}; fi
exit 0
"""


EVENT_START_TIMEOUT = 8.0
FLEET_ENGINE = [
    "--engine-sweep-interval",
    "0.5",
    "--event-start-timeout",
    str(EVENT_START_TIMEOUT),
    "--poll-hold",
    "10",
]


def instance_key(server: ServerProcess, user_arn: str, instance_name: str | None = None) -> tuple[str, str]:
    """An access key for ``user_arn`` (identifying ``instance_name``), made in the server's store."""
    return server.store_access_key(user_arn, instance_name, "instance key made by a fleet test")


def boot_host(server: ServerProcess, workdir: Path, name: str, tag: str) -> Host:
    """A booted, registered host whose agent is running."""
    host = Host(server, name, workdir / name).boot()
    register_host(host, instance_key, tag)
    host.configure(wait_after_error=1)
    host.start_agent()
    return host


@dataclass
class Cluster:
    server: ServerProcess
    hosts: list[Host]
    workdir: Path
    bucket: str = field(default_factory=lambda: unique("fleet-bundles").lower())

    @property
    def codedeploy(self) -> Any:
        return self.server.client("codedeploy")

    # --- choosing instances ---------------------------------------------------------------------------

    def select(self, hosts: Sequence[Host] | Sequence[str], value: str | None = None, **tags: str) -> str:
        """Tag ``hosts`` (or instance names) ``fleet-test=<value>`` (a new one by default) plus ``tags``;
        the value."""
        value = value or unique("sel")
        names = [h.name if isinstance(h, Host) else h for h in hosts]
        self.codedeploy.add_tags_to_on_premises_instances(
            instanceNames=names,
            tags=[{"Key": SELECTOR, "Value": value}, *({"Key": k, "Value": v} for k, v in tags.items())],
        )
        return value

    def group(
        self, selection: str, config: str = "CodeDeployDefault.OneAtATime", **extra: Any
    ) -> tuple[str, str]:
        """A new application and deployment group selecting the instances tagged ``selection``."""
        application, group = unique("fleet-app"), unique("fleet-group")
        self.codedeploy.create_application(applicationName=application)
        self.codedeploy.create_deployment_group(
            applicationName=application,
            deploymentGroupName=group,
            deploymentConfigName=config,
            serviceRoleArn=SERVICE_ROLE,
            onPremisesInstanceTagFilters=[{"Key": SELECTOR, "Value": selection, "Type": "KEY_AND_VALUE"}],
            **extra,
        )
        return application, group

    # --- revisions and deployments -------------------------------------------------------------------

    def revision(
        self, label: str, app_dir: str, *, pause: float = 0.3, extra_files: Iterable[str] = ()
    ) -> dict[str, Any]:
        """A revision installing ``content/`` (``version.txt`` = label, ``only-<label>.txt`` and
        ``extra_files``) into ``app_dir`` on each host, with the marker-driven hook for every event."""
        source = self.workdir / unique("revision")
        files = {
            "content/version.txt": f"{label}\n",
            f"content/only-{label}.txt": f"{label}\n",
            "scripts/hook.sh": HOOK.format(app_dir=app_dir, pause=pause, label=label),
        }
        files.update({f"content/{name}": f"{label}\n" for name in extra_files})
        hooks = "".join(
            f"  {event}:\n    - location: scripts/hook.sh\n      timeout: 60\n" for event in SCRIPTED_EVENTS
        )
        appspec = (
            "version: 0.0\nos: linux\n"
            f"files:\n  - source: content\n    destination: {app_dir}\nhooks:\n{hooks}"
        )
        write_revision(source, appspec, files, executable=["scripts/hook.sh"])
        location = upload(self.server, bundle_bytes(source, "tgz"), f"{label}-{source.name}.tgz", self.bucket)
        return {"revisionType": "S3", "s3Location": location}

    def deploy(self, application: str, group: str, revision: dict[str, Any], **params: Any) -> str:
        return self.codedeploy.create_deployment(
            applicationName=application, deploymentGroupName=group, revision=revision, **params
        )["deploymentId"]

    def wait(
        self, deployment_id: str, timeout: float = 120.0, statuses: set[str] = TERMINAL
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = self.codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            if info["status"] in statuses:
                return info
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{deployment_id} is {info['status']} after {timeout}s: {self.summary(deployment_id)}"
                )
            time.sleep(0.1)

    def targets(self, deployment_id: str, **filters: list[str]) -> dict[str, dict[str, Any]]:
        """The deployment's instance targets by name (``filters``: ListDeploymentTargets' targetFilters)."""
        ids: list[str] = []
        request: dict[str, Any] = {"deploymentId": deployment_id}
        if filters:
            request["targetFilters"] = filters
        for page in self.codedeploy.get_paginator("list_deployment_targets").paginate(**request):
            ids += page["targetIds"]
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 25):
            batch = self.codedeploy.batch_get_deployment_targets(
                deploymentId=deployment_id, targetIds=ids[start : start + 25]
            )["deploymentTargets"]
            found.update({t["instanceTarget"]["targetId"]: t["instanceTarget"] for t in batch})
        return found

    def summary(self, deployment_id: str) -> dict[str, Any]:
        return {
            name: (
                target["status"],
                {e["lifecycleEventName"]: e["status"] for e in target["lifecycleEvents"]},
            )
            for name, target in self.targets(deployment_id).items()
        }

    def deployments_of(self, application: str, group: str) -> list[dict[str, Any]]:
        """The group's deployments, oldest first."""
        ids = self.codedeploy.list_deployments(applicationName=application, deploymentGroupName=group)[
            "deployments"
        ]
        if not ids:
            return []
        infos = self.codedeploy.batch_get_deployments(deploymentIds=ids)["deploymentsInfo"]
        return sorted(infos, key=lambda info: info["createTime"])

    # --- markers on hosts ------------------------------------------------------------------------------

    def mark(self, host: Host, name: str) -> None:
        path = host.path(f"{MARKERS}/{name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def unmark(self, host: Host, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            host.path(f"{MARKERS}/{name}").unlink()

    def marked(self, host: Host, name: str) -> bool:
        return host.path(f"{MARKERS}/{name}").exists()

    def release(self, hosts: Iterable[Host], group: str) -> None:
        for host in hosts:
            self.mark(host, f"release-{group}")

    def hook_log(self, host: Host, app_dir: str) -> list[tuple[str, str, str]]:
        """(event, deployment id, revision label) of each hook that ran on ``host`` for ``app_dir``."""
        path = host.path(f"{app_dir}/hooks.log")
        if not path.exists():
            return []
        return [tuple(line.split()) for line in path.read_text().splitlines()]  # type: ignore[misc]

    def read(self, host: Host, path: str) -> str | None:
        """A file's text as ``host`` sees it, or None if it is not there."""
        found = host.path(path)
        return found.read_text() if found.exists() else None


# --- what the recorded times say ----------------------------------------------------------------------


def run_intervals(targets: dict[str, dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Per instance that ran any event: (first event's start, last event's end), server times."""
    intervals: dict[str, tuple[float, float]] = {}
    for name, target in targets.items():
        starts = [_seconds(e["startTime"]) for e in target["lifecycleEvents"] if "startTime" in e]
        ends = [_seconds(e["endTime"]) for e in target["lifecycleEvents"] if "endTime" in e]
        if starts:
            intervals[name] = (min(starts), max(ends) if ends else float("inf"))
    return intervals


def _seconds(value: Any) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def start_order(targets: dict[str, dict[str, Any]]) -> list[str]:
    """The instances that ran, in the order their first event started."""
    intervals = run_intervals(targets)
    return sorted(intervals, key=lambda name: intervals[name][0])


def most_at_once(targets: dict[str, dict[str, Any]]) -> int:
    """The most instances being deployed to at the same moment."""
    points = []
    for start, end in run_intervals(targets).values():
        points += [(start, 1), (end, -1)]
    points.sort(key=lambda point: (point[0], point[1]))  # an end before a start at the same instant
    running = most = 0
    for _, step in points:
        running += step
        most = max(most, running)
    return most


def statuses(targets: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: target["status"] for name, target in targets.items()}


def event_statuses(target: dict[str, Any]) -> list[str]:
    return [event["status"] for event in target["lifecycleEvents"]]

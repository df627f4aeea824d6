"""Benchmark: how long BlockTraffic and AllowTraffic take per instance behind a real HAProxy, and how long
a blue/green swap takes, next to what the same steps cost on AWS by default, with no request failed.

Starts what tests/e2e/test_zero_downtime.py starts (tests/e2e/traffic_fleet.py): Debian's HAProxy with
one backend server per host, an ``opendeploy server`` driving it through its runtime API
(``--haproxy-socket``), and ``--hosts`` simulated hosts (mount namespaces, so this needs root) running
real agents and the revision in tests/e2e/revisions/http_service, whose ApplicationStart serves HTTP on
the host's own port and whose ApplicationStop stops gracefully. A first deployment without traffic
control starts the service everywhere; then, for each scenario, an in-place deployment of a new version
with traffic control (``--config``) runs while clients send requests through HAProxy:

- ``idle``: four keep-alive connections, each sending a request every second: connections open, almost
  never a request in flight, so BlockTraffic finds nothing to drain;
- ``busy``: a steady stream (one keep-alive connection and one connection per request, without pause)
  and ``--slow-clients`` keep-alive connections each always holding a ``--slow-ms`` request in flight,
  so every server has requests in flight when BlockTraffic drains it;
- ``bluegreen`` (not run unless named): the hosts split in two environments tagged ``env=blue`` (the
  first half) and ``env=green``, one serving, the other in HAProxy maintenance, as in
  tests/e2e/test_blue_green.py; under the ``busy`` load (its slow clients started ``--slow-ms`` /
  ``--slow-clients`` apart, so one of them has always just sent a long request), a blue/green
  deployment (``BLUE_GREEN`` / ``WITH_TRAFFIC_CONTROL``, KEEP_ALIVE, ``targetInstances`` by tag,
  ``--config`` pacing the replacements) installs the new version on the idle environment, lets it in
  and takes the other out; green first, then each round the other way.

By default HAProxy checks every 2 s with rise 2 and fall 3 (HAProxy's own defaults) and the server runs
with its own defaults (300 s deregistration delay, 1 s poll of the load balancer); the flags change them.

Prints, per scenario and instance, the time spent in BlockTraffic and AllowTraffic (from the lifecycle
events' start and end times the API reports) next to AWS's defaults for the same step:

- BlockTraffic: an ELB target group's deregistration delay, 300 s by default, which is what CodeDeploy's
  BlockTraffic is known to cost (the ALB guide says a target with no in-flight request and no active
  connection completes at once; CodeDeploy still reports the delay in practice — AWS Knowledge Center,
  "codedeploy-elb-deployments");
- AllowTraffic: (healthy threshold × interval) + one interval (AWS Knowledge Center): 5 × 30 s + 30 s =
  180 s with an ALB target group's default health check, and the same formula with the checks this
  HAProxy runs (rise × inter + inter), which is the expected time the server shows before the step;

then per scenario the deployment's duration, the requests sent and failed (must be 0) and HAProxy's
backend error counters during it (connection errors, response errors, retries, redispatches, 5xx: all 0
when no request ever reached a stopped server).

For ``bluegreen`` it also prints, per round and as medians, the swap measured from the first replacement's
AllowTraffic start (T0): the first answer from the new version; 100 % of the traffic on the replacement,
from the events (the last original's BlockTraffic start: from then on no original gets a new request)
and from the clients (the start of the last request the old version answered); the last answer from
the old version (the end of the longest request it was still serving); the original environment
drained (the last BlockTraffic end). Next to them, AWS's documented cost of the same steps with
defaults: each wave of replacements (instances let in together, as the configuration paces them:
OneAtATime lets in one at a time) costs AllowTraffic's 5 × 30 s + 30 s = 180 s, then the originals'
BlockTraffic the 300 s deregistration delay; and the same AllowTraffic formula with this HAProxy's
checks (waves × (rise × inter + inter)). Requests and failures are counted within the swap (T0 to
drained), HAProxy's error counters between the samples (every 0.25 s) around it.

    .venv/bin/python bench/traffic.py                      # idle and busy, 4 hosts, OneAtATime
    .venv/bin/python bench/traffic.py --check-inter-ms 100 --rise 2 --poll-interval 0.1 --repeat 3
    .venv/bin/python bench/traffic.py --scenario busy --config CodeDeployDefault.HalfAtATime
    .venv/bin/python bench/traffic.py --scenario bluegreen --repeat 3      # 2 + 2 hosts, blue <-> green

Target (issue 10): BlockTraffic ends as soon as the server is drained, AllowTraffic as soon as HAProxy
reports it healthy — seconds instead of AWS's minutes — and 0 failed requests; (issue 11) the same for a
blue/green swap.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / d) for d in ("tests", "tests/e2e")]

from deploying import create_group, upload, wait_for_deployment  # noqa: E402  (after the path above)
from traffic_fleet import (  # noqa: E402
    BACKEND,
    IN_PLACE_EVENTS,
    TRAFFIC_CONTROL_EVENTS,
    Event,
    Fleet,
    Traffic,
    TrafficClient,
    counters_since,
    error_counters,
    in_maintenance,
    lifecycle_events,
    server_stats,
    servers_state,
    service_bundle,
)

from support.haproxy import runtime_command, unavailable_reason  # noqa: E402
from support.names import unique  # noqa: E402
from support.server import wait_for  # noqa: E402

AWS_DEREGISTRATION_DELAY = 300.0  # ELBv2 target group default (deregistration_delay.timeout_seconds)
ALB_HEALTHY_THRESHOLD = 5  # ALB target group health check defaults (HTTP/HTTPS)
ALB_INTERVAL = 30.0
SCENARIOS = ("idle", "busy", "bluegreen")
DEFAULT_SCENARIOS = ("idle", "busy")
ENV_TAG = "env"
REPLACEMENT_EVENTS = (*IN_PLACE_EVENTS, "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic")
ORIGINAL_EVENTS = ("BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic")
KEEP_ALIVE = {"terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"}}
SAMPLE_INTERVAL = 0.25  # seconds between two readings of HAProxy's error counters (bluegreen)


def allow_expected(threshold: int, interval: float) -> float:
    """AWS Knowledge Center: (healthy threshold × health check interval) + one extra interval."""
    return threshold * interval + interval


@dataclass
class Run:
    scenario: str
    run: int
    status: str
    seconds: float
    block: dict[str, float]  # instance -> seconds in BlockTraffic
    allow: dict[str, float]
    requests: int
    failed: int
    slowest: float
    haproxy_errors: dict[str, int]
    event_order_ok: bool
    plan: str  # what the server said the traffic steps would cost (deploymentStatusMessages)
    swap: Swap | None = None  # bluegreen only


@dataclass
class Swap:
    """A blue/green swap, in seconds from T0, the first replacement's AllowTraffic start."""

    replacement: str  # the environment deployed to
    replacement_hosts: list[str]
    waves: int  # replacements let in one after another (AllowTraffic events that do not overlap)
    first_new: float | None  # the start of the first request the new version answered
    last_block_start: float  # the last original's BlockTraffic start: no original gets a new request
    last_old_start: float | None  # the start of the last request the old version answered
    last_old_end: float | None  # the end of the last answer from the old version (the longest drained)
    drained: float  # the last original's BlockTraffic end
    requests: int  # requests started from T0 to drained
    failed: int
    haproxy_errors: dict[str, int]  # between the counter samples around T0 … drained
    serving_after: list[str]  # the servers HAProxy has out of maintenance after the deployment


@dataclass
class CounterSampler:
    """Reads HAProxy's backend error counters every ``SAMPLE_INTERVAL`` until stopped."""

    fleet: Fleet
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)  # (time.time(), counters)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> CounterSampler:
        self.samples.append((time.time(), error_counters(self.fleet.haproxy)))
        self._thread = threading.Thread(target=self._run, name="haproxy counters", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self.samples.append((time.time(), error_counters(self.fleet.haproxy)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.samples.append((time.time(), error_counters(self.fleet.haproxy)))

    def between(self, start: float, end: float) -> dict[str, int]:
        """The counters' growth from the last sample at or before ``start`` to the first at or after
        ``end``."""
        before = [c for t, c in self.samples if t <= start] or [self.samples[0][1]]
        after = [c for t, c in self.samples if t >= end] or [self.samples[-1][1]]
        return counters_since(before[-1], after[0])


def start_clients(
    fleet: Fleet, scenario: str, slow_ms: int, slow_clients: int, *, stagger: bool = False
) -> Traffic:
    """The clients of ``scenario`` (``busy`` for ``bluegreen``); with ``stagger`` the slow clients start
    ``slow_ms / slow_clients`` apart, so their long requests end at different times rather than together
    (whenever a drain begins, one of them has just started)."""
    if scenario == "idle":
        before = error_counters(fleet.haproxy)
        clients = [TrafficClient(fleet.haproxy.url, pace=1.0).start() for _ in range(4)]
        return Traffic(fleet.haproxy, clients, before)
    traffic = Traffic.start(fleet.haproxy, slow_ms=slow_ms)
    for _ in range(slow_clients - 1):
        if stagger:
            time.sleep(slow_ms / 1000 / slow_clients)
        traffic.clients.append(TrafficClient(fleet.haproxy.url, path=f"/slow?ms={slow_ms}", pace=0).start())
    # Every slow client has answered once: each now keeps a long request in flight without a gap.
    slow = [c for c in traffic.clients if c.path.startswith("/slow")]
    wait_for(lambda: all(c.outcomes for c in slow), timeout=slow_ms / 1000 + 30, message="the slow clients")
    return traffic


def run_scenario(fleet: Fleet, scenario: str, run: int, version: str, args: argparse.Namespace) -> Run:
    fleet.all_in_service(timeout=60)
    traffic = start_clients(fleet, scenario, args.slow_ms, args.slow_clients)
    try:
        started = time.monotonic()
        deployment_id, info = fleet.deploy(version, config=args.config, timeout=args.timeout)
        seconds = time.monotonic() - started
    finally:
        traffic.stop()
    events = lifecycle_events(fleet.server, deployment_id)
    block, allow = {}, {}
    order_ok = True
    for instance, instance_events in sorted(events.items()):
        named = {e.name: e for e in instance_events}
        order_ok &= [e.name for e in instance_events] == list(TRAFFIC_CONTROL_EVENTS)
        for step, into in (("BlockTraffic", block), ("AllowTraffic", allow)):
            duration = named[step].duration if step in named else None
            if duration is not None:
                into[instance] = duration
    outcomes = traffic.outcomes()
    return Run(
        scenario,
        run,
        info["status"],
        seconds,
        block,
        allow,
        len(outcomes),
        len(traffic.failures()),
        max((o.ended - o.started for o in outcomes), default=0.0),
        traffic.haproxy_errors(),
        order_ok,
        " ".join(info.get("deploymentStatusMessages") or []),
    )


def environments(fleet: Fleet) -> dict[str, list[str]]:
    """The two environments: ``blue`` the first half of the hosts, ``green`` the rest."""
    names = [host.name for host in fleet.hosts]
    half = len(names) // 2
    return {"blue": names[:half], "green": names[half:]}


def tag_environments(fleet: Fleet) -> None:
    codedeploy = fleet.server.client("codedeploy")
    for env, names in environments(fleet).items():
        codedeploy.add_tags_to_on_premises_instances(
            tags=[{"Key": ENV_TAG, "Value": env}], instanceNames=names
        )


def set_state(fleet: Fleet, names: Iterable[str], state: str) -> None:
    for name in names:
        runtime_command(fleet.haproxy.stats_address, f"set server {BACKEND}/{name} state {state}")


def prepare_environments(fleet: Fleet, idle: str) -> str:
    """The serving environment: the other than ``idle``, whose servers go into maintenance (they already
    are after the previous round; an in-place scenario puts every server back); waits until HAProxy
    reports the serving one's servers UP."""
    envs = environments(fleet)
    live = "blue" if idle == "green" else "green"
    set_state(fleet, envs[live], "ready")
    set_state(fleet, envs[idle], "maint")

    def live_up() -> bool:
        stats = server_stats(fleet.haproxy)
        return all(stats[name]["status"] == "UP" for name in envs[live])

    wait_for(live_up, timeout=60, interval=0.05, message=f"the {live} environment UP in HAProxy")
    return live


def blue_green_group(fleet: Fleet, groups: dict[str, str]) -> str:
    if "bluegreen" not in groups:
        groups["bluegreen"] = create_group(
            fleet.server,
            fleet.application,
            fleet.tag,
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            loadBalancerInfo={"targetGroupInfoList": [{"name": f"haproxy:{BACKEND}"}]},
            blueGreenDeploymentConfiguration=KEEP_ALIVE,
        )
    return groups["bluegreen"]


def waves(events: Iterable[Event]) -> int:
    """How many rounds the events ran in: a round begins with an event starting after every event of the
    previous round has ended."""
    count, round_end = 0, float("-inf")
    for event in sorted((e for e in events if e.start is not None), key=lambda e: e.start or 0.0):
        assert event.start is not None
        if event.start >= round_end:
            count += 1
            round_end = event.end if event.end is not None else float("inf")
        else:
            round_end = max(round_end, event.end if event.end is not None else float("inf"))
    return count


def run_blue_green(
    fleet: Fleet, run: int, version: str, args: argparse.Namespace, groups: dict[str, str]
) -> Run:
    group = blue_green_group(fleet, groups)
    idle = ("green", "blue")[run % 2]
    live = prepare_environments(fleet, idle)
    envs = environments(fleet)
    data = service_bundle(fleet.workdir, version)
    location = upload(fleet.server, data, f"http-service/{unique(version)}.tgz", fleet.bucket)
    # The clients' outcomes are on the monotonic clock, the events the API reports on time.time().
    clock = time.time() - time.monotonic()
    traffic = start_clients(fleet, "busy", args.slow_ms, args.slow_clients, stagger=True)
    sampler = CounterSampler(fleet).start()
    try:
        started = time.monotonic()
        deployment_id = fleet.server.client("codedeploy").create_deployment(
            applicationName=fleet.application,
            deploymentGroupName=group,
            deploymentConfigName=args.config,
            revision={"revisionType": "S3", "s3Location": location},
            targetInstances={"tagFilters": [{"Key": ENV_TAG, "Value": idle, "Type": "KEY_AND_VALUE"}]},
        )["deploymentId"]
        info = wait_for_deployment(fleet.server, deployment_id, timeout=args.timeout)
        seconds = time.monotonic() - started
    finally:
        traffic.stop()
        sampler.stop()
    states = servers_state(fleet.haproxy)
    serving_after = sorted(name for name, state in states.items() if not in_maintenance(state))
    events = lifecycle_events(fleet.server, deployment_id)
    named = {instance: {e.name: e for e in instance_events} for instance, instance_events in events.items()}
    order_ok = all(
        [e.name for e in events.get(name, [])] == list(expected)
        for names, expected in ((envs[idle], REPLACEMENT_EVENTS), (envs[live], ORIGINAL_EVENTS))
        for name in names
    )
    allow_events = [named[n]["AllowTraffic"] for n in envs[idle] if "AllowTraffic" in named.get(n, {})]
    block_events = [named[n]["BlockTraffic"] for n in envs[live] if "BlockTraffic" in named.get(n, {})]
    allow = _durations(named, envs[idle], "AllowTraffic")
    block = _durations(named, envs[live], "BlockTraffic")
    swap = None
    outcomes = traffic.outcomes()
    starts = [e.start for e in allow_events if e.start is not None]
    block_starts = [e.start for e in block_events if e.start is not None]
    block_ends = [e.end for e in block_events if e.end is not None]
    if starts and block_starts and block_ends and len(block_ends) == len(envs[live]):
        t0 = min(starts)
        drained = max(block_ends)
        new = [o for o in outcomes if not o.failed and o.body.endswith(f" {version}")]
        old = [o for o in outcomes if not o.failed and not o.body.endswith(f" {version}")]
        old_after = [o for o in old if o.started + clock >= t0]
        last_old = max(old_after, key=lambda o: o.started, default=None)
        in_swap = [o for o in outcomes if t0 <= o.started + clock <= drained]
        swap = Swap(
            idle,
            sorted(envs[idle]),
            waves(allow_events),
            min(o.started for o in new) + clock - t0 if new else None,
            max(block_starts) - t0,
            last_old.started + clock - t0 if last_old else None,
            max(o.ended for o in old) + clock - t0 if old_after else None,
            drained - t0,
            len(in_swap),
            sum(1 for o in in_swap if o.failed),
            sampler.between(t0, drained),
            serving_after,
        )
    return Run(
        "bluegreen",
        run,
        info["status"],
        seconds,
        block,
        allow,
        len(outcomes),
        len(traffic.failures()),
        max((o.ended - o.started for o in outcomes), default=0.0),
        traffic.haproxy_errors(),
        order_ok,
        " ".join(info.get("deploymentStatusMessages") or []),
        swap,
    )


def _durations(named: dict[str, dict[str, Event]], instances: Iterable[str], step: str) -> dict[str, float]:
    """Each instance's seconds in ``step``, for those where it ended."""
    found = {name: named.get(name, {}).get(step) for name in instances}
    return {name: e.duration for name, e in found.items() if e is not None and e.duration is not None}


def print_instances(runs: list[Run], args: argparse.Namespace) -> None:
    inter = args.check_inter_ms / 1000
    same_checks = allow_expected(args.rise, inter)
    alb = allow_expected(ALB_HEALTHY_THRESHOLD, ALB_INTERVAL)
    print()
    print("seconds per instance; AWS: the same step's default cost")
    header = (
        f"{'scenario':<9}{'run':>4}  {'instance':<9}{'BlockTraffic':>13}{'AWS default':>12}"
        f"{'AllowTraffic':>13}{'AWS ALB default':>16}{'rise×inter+inter':>18}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        for instance in sorted(set(r.block) | set(r.allow)):
            block = r.block.get(instance)
            allow = r.allow.get(instance)
            print(
                f"{r.scenario:<9}{r.run:>4}  {instance:<9}{_cell(block, 13)}{AWS_DEREGISTRATION_DELAY:>12.0f}"
                f"{_cell(allow, 13)}{alb:>16.0f}{same_checks:>18.2f}"
            )
    print(
        f"(AWS default: ELB deregistration delay; AWS ALB default: {ALB_HEALTHY_THRESHOLD} × "
        f"{ALB_INTERVAL:.0f} s + {ALB_INTERVAL:.0f} s; rise×inter+inter: {args.rise} × {inter:g} s + "
        f"{inter:g} s, this HAProxy's checks)"
    )


def print_summary(runs: list[Run]) -> None:
    plans = sorted({r.plan for r in runs if r.plan})
    for plan in plans:
        print(f"\nthe server's plan: {plan}")
    print()
    header = (
        f"{'scenario':<9}{'run':>4}  {'status':<10}{'deploy s':>9}{'block med':>10}{'block max':>10}"
        f"{'allow med':>10}{'allow max':>10}{'requests':>9}{'failed':>7}{'slowest s':>10}  HAProxy errors"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        errors = ", ".join(f"{k} {v}" for k, v in r.haproxy_errors.items() if v) or "none"
        order = "" if r.event_order_ok else "  (event order differs from the guide's!)"
        print(
            f"{r.scenario:<9}{r.run:>4}  {r.status:<10}{r.seconds:>9.2f}"
            f"{_stat(r.block, statistics.median)}{_stat(r.block, max)}"
            f"{_stat(r.allow, statistics.median)}{_stat(r.allow, max)}"
            f"{r.requests:>9}{r.failed:>7}{r.slowest:>10.3f}  {errors}{order}"
        )


SWAP_COLUMNS: tuple[tuple[str, Callable[[Swap], float | None]], ...] = (
    ("1st new", lambda w: w.first_new),
    ("100% ev", lambda w: w.last_block_start),
    ("100% cl", lambda w: w.last_old_start),
    ("last old", lambda w: w.last_old_end),
    ("drained", lambda w: w.drained),
)


def print_swaps(runs: list[Run], args: argparse.Namespace) -> None:
    swaps = [(r, r.swap) for r in runs if r.swap is not None]
    if not any(r.scenario == "bluegreen" for r in runs):
        return
    inter = args.check_inter_ms / 1000
    alb = allow_expected(ALB_HEALTHY_THRESHOLD, ALB_INTERVAL)
    checks = allow_expected(args.rise, inter)
    print()
    print("blue/green swap, seconds from the first replacement's AllowTraffic start (T0)")
    header = (
        f"{'run':>4}  {'to':<6}{'waves':>6}"
        + "".join(f"{name:>10}" for name, _ in SWAP_COLUMNS)
        + f"{'AWS 100%':>10}{'AWS drain':>10}{'checks':>8}{'requests':>9}{'failed':>7}  HAProxy errors"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        if r.scenario == "bluegreen" and r.swap is None:
            print(f"{r.run:>4}  {r.status}: no complete swap in the events")
    for r, w in swaps:
        errors = ", ".join(f"{k} {v}" for k, v in w.haproxy_errors.items() if v) or "none"
        if w.serving_after != w.replacement_hosts:
            errors += f"  (serving afterwards: {', '.join(w.serving_after)}!)"
        print(
            f"{r.run:>4}  {w.replacement:<6}{w.waves:>6}"
            + "".join(_cell(get(w), 10) for _, get in SWAP_COLUMNS)
            + _expected(w.waves, alb, checks)
            + f"{w.requests:>9}{w.failed:>7}  {errors}"
        )
    if not swaps:
        return
    medians: dict[str, float | None] = {}
    for name, get in SWAP_COLUMNS:
        values = [v for _, w in swaps if (v := get(w)) is not None]
        medians[name] = statistics.median(values) if values else None
    wave = statistics.median(w.waves for _, w in swaps)
    print(
        f"{'med':>4}  {'':<6}{wave:>6g}"
        + "".join(_cell(medians[name], 10) for name, _ in SWAP_COLUMNS)
        + _expected(wave, alb, checks)
        + f"{sum(w.requests for _, w in swaps):>9}{sum(w.failed for _, w in swaps):>7}  (sums)"
    )
    to_all, drained = medians["100% ev"], medians["drained"]
    if to_all and drained:
        print(
            f"AWS default ÷ this run (medians): 100 % on the replacement {wave * alb / to_all:.0f}× "
            f"({wave * alb:.0f} s / {to_all:.2f} s), original drained "
            f"{(wave * alb + AWS_DEREGISTRATION_DELAY) / drained:.0f}× "
            f"({wave * alb + AWS_DEREGISTRATION_DELAY:.0f} s / {drained:.2f} s)"
        )
    print(
        "(1st new: first answer from the new version; 100% ev: last original's BlockTraffic start;\n"
        " 100% cl: start of the last request the old version answered; last old: end of the last answer\n"
        " from the old version; drained: last BlockTraffic end; AWS 100%: waves × "
        f"({ALB_HEALTHY_THRESHOLD} × {ALB_INTERVAL:.0f} s + {ALB_INTERVAL:.0f} s);\n"
        f" AWS drain: + {AWS_DEREGISTRATION_DELAY:.0f} s deregistration delay; checks: waves × "
        f"({args.rise} × {inter:g} s + {inter:g} s), this HAProxy's checks;\n"
        " requests, failed and HAProxy errors: from T0 to drained)"
    )


def _expected(waves: float, alb: float, checks: float) -> str:
    return f"{waves * alb:>10.0f}{waves * alb + AWS_DEREGISTRATION_DELAY:>10.0f}{waves * checks:>8.2f}"


def _cell(value: float | None, width: int) -> str:
    return f"{value:>{width}.3f}" if value is not None else f"{'-':>{width}}"


def _stat(values: dict[str, float], how: object) -> str:
    return _cell(how(values.values()), 10) if values else f"{'-':>10}"  # type: ignore[operator]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--config", default="CodeDeployDefault.OneAtATime", help="deployment configuration")
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="repeatable (default: idle and busy)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="deployments per scenario")
    parser.add_argument("--check-inter-ms", type=int, default=2000, help="HAProxy's check interval (inter)")
    parser.add_argument("--rise", type=int, default=2, help="HAProxy's rise")
    parser.add_argument("--fall", type=int, default=3, help="HAProxy's fall")
    parser.add_argument(
        "--deregistration-delay", type=float, default=300.0, help="server's --haproxy-deregistration-delay"
    )
    parser.add_argument("--poll-interval", type=float, default=1.0, help="server's --traffic-poll-interval")
    parser.add_argument("--slow-ms", type=int, default=2000, help="busy: length of the long requests")
    parser.add_argument("--slow-clients", type=int, default=8, help="busy: connections holding long requests")
    parser.add_argument("--timeout", type=float, default=600.0, help="longest a deployment may take")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root: each simulated host is a mount namespace with its own tmpfs")
    reason = unavailable_reason()
    if reason:
        sys.exit(reason)
    scenarios = args.scenario or list(DEFAULT_SCENARIOS)
    if "bluegreen" in scenarios and args.hosts < 2:
        sys.exit("bluegreen needs at least 2 hosts (two environments)")
    workdir = Path(tempfile.mkdtemp(prefix="opendeploy-traffic-"))
    print(
        f"{args.hosts} hosts, {args.config}; HAProxy inter {args.check_inter_ms} ms rise {args.rise} "
        f"fall {args.fall}; deregistration delay {args.deregistration_delay:g} s, poll "
        f"{args.poll_interval:g} s; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; in {workdir}",
        flush=True,
    )
    fleet = Fleet.start(
        workdir,
        count=args.hosts,
        check_inter_ms=args.check_inter_ms,
        rise=args.rise,
        fall=args.fall,
        deregistration_delay=args.deregistration_delay,
        health_wait=3600.0,
        poll_interval=args.poll_interval,
        server_args=["--log-level", "warning"],
    )
    runs: list[Run] = []
    try:
        _, info = fleet.deploy("v0", traffic_control=False, config="CodeDeployDefault.AllAtOnce")
        if info["status"] != "Succeeded":
            sys.exit(f"the first deployment (no traffic control) did not succeed: {info}")
        if "bluegreen" in scenarios:
            tag_environments(fleet)
        groups: dict[str, str] = {}
        version = 0
        for run in range(args.repeat):
            for scenario in scenarios:
                version += 1
                if scenario == "bluegreen":
                    result = run_blue_green(fleet, run, f"v{version}", args, groups)
                else:
                    result = run_scenario(fleet, scenario, run, f"v{version}", args)
                print(
                    f"{scenario} #{run}: {result.status} in {result.seconds:.2f} s, "
                    f"{result.requests} requests, {result.failed} failed",
                    flush=True,
                )
                runs.append(result)
                if result.status != "Succeeded":
                    break
    finally:
        if runs and all(r.status == "Succeeded" and not r.failed for r in runs):
            with contextlib.redirect_stdout(io.StringIO()):  # the end of each agent's log: only on trouble
                fleet.stop()
        else:
            fleet.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_instances(runs, args)
    print_summary(runs)
    print_swaps(runs, args)
    if any(r.failed or r.status != "Succeeded" or (r.swap and r.swap.failed) for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()

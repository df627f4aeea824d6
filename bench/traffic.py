"""Benchmark: how long BlockTraffic and AllowTraffic take per instance behind a real HAProxy, next to what
the same two steps cost on AWS by default, with no request failed.

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
  so every server has requests in flight when BlockTraffic drains it.

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

    .venv/bin/python bench/traffic.py                      # idle and busy, 4 hosts, OneAtATime
    .venv/bin/python bench/traffic.py --check-inter-ms 100 --rise 2 --poll-interval 0.1 --repeat 3
    .venv/bin/python bench/traffic.py --scenario busy --config CodeDeployDefault.HalfAtATime

Target (issue 10): BlockTraffic ends as soon as the server is drained, AllowTraffic as soon as HAProxy
reports it healthy — seconds instead of AWS's minutes — and 0 failed requests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / d) for d in ("tests", "tests/e2e")]

from traffic_fleet import (  # noqa: E402  (after the path above)
    TRAFFIC_CONTROL_EVENTS,
    Fleet,
    Traffic,
    TrafficClient,
    error_counters,
    lifecycle_events,
)

from support.haproxy import unavailable_reason  # noqa: E402
from support.server import wait_for  # noqa: E402

AWS_DEREGISTRATION_DELAY = 300.0  # ELBv2 target group default (deregistration_delay.timeout_seconds)
ALB_HEALTHY_THRESHOLD = 5  # ALB target group health check defaults (HTTP/HTTPS)
ALB_INTERVAL = 30.0
SCENARIOS = ("idle", "busy")


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


def start_clients(fleet: Fleet, scenario: str, slow_ms: int, slow_clients: int) -> Traffic:
    if scenario == "idle":
        before = error_counters(fleet.haproxy)
        clients = [TrafficClient(fleet.haproxy.url, pace=1.0).start() for _ in range(4)]
        return Traffic(fleet.haproxy, clients, before)
    traffic = Traffic.start(fleet.haproxy, slow_ms=slow_ms)
    for _ in range(slow_clients - 1):
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
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable (default: both)")
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
    scenarios = args.scenario or list(SCENARIOS)
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
        version = 0
        for run in range(args.repeat):
            for scenario in scenarios:
                version += 1
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
        fleet.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_instances(runs, args)
    print_summary(runs)
    if any(r.failed or r.status != "Succeeded" for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()

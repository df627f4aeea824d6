"""Benchmark (issue 12): notifications of a 1,000-host deployment with a trigger on every event.

Starts moto's server (the SNS stand-in), a receiver of its own (an HTTP server in a separate process
that records when each request arrives), and an ``opendeploy server`` whose AWS SDK reaches moto
(``AWS_ENDPOINT_URL_SNS``); registers ``--hosts`` on-premises instances and runs, in each of
``--repeat`` rounds, one AllAtOnce deployment to all of them with ``bench/fleet.py``'s simulated agents
(the real command protocol, no-op hooks) in each mode:

- ``baseline``: nobody listens (no trigger, no webhook) — what the deployment costs without
  notifications;
- ``webhook``: the server runs with ``--webhook`` to the receiver (every deployment and instance
  state change, signed);
- ``sns``: the deployment group has a trigger on every deployment and instance event whose target is
  an SNS topic on moto, and the topic's HTTP subscription is the receiver (moto POSTs during Publish).

A notification's latency is from its change (``created_at`` of its row in the server's outbox, written
in the transaction of the change; matched by ``X-Opendeploy-Delivery`` for webhooks and by the message
text for SNS) to its arrival at the receiver. For each mode it prints the notifications delivered, their
latency (median / p95 / max), the rate they arrived at (first to last arrival) next to the rate the
deployment produced them, the time from the deployment's completeTime to the last arrival, and the
deployment's duration (CreateDeployment to Succeeded read by GetDeployment) and server CPU next to the
baseline's in the same round.

    .venv/bin/python bench/notifications.py                       # 1,000 hosts, all three modes
    .venv/bin/python bench/notifications.py --hosts 100 --repeat 3 --mode baseline --mode webhook
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import select

from aws_stand_in import moto_environment
from fleet import (
    ROLE,
    Counters,
    Instance,
    Signer,
    SimulatedAgent,
    check_against_botocore,
    process_usage,
    register,
)
from opendeploy.store.db import Database
from opendeploy.store.models.notifications import OutboxNotification
from support.moto import MotoServer
from support.server import ServerProcess

MODES = ("baseline", "webhook", "sns")
ALL_EVENTS = [
    "DeploymentStart",
    "DeploymentSuccess",
    "DeploymentFailure",
    "DeploymentStop",
    "DeploymentRollback",
    "DeploymentReady",
    "InstanceStart",
    "InstanceSuccess",
    "InstanceFailure",
    "InstanceReady",
]
DEPLOYMENT_TIMEOUT = 600.0
DELIVERY_TIMEOUT = 600.0  # after the deployment's end, for the last notification to arrive
FINISHED = ("Succeeded", "Failed", "Stopped")


# --- the receiver ------------------------------------------------------------------------------------


def _receiver_main(pipe: Pipe) -> None:
    """The receiver process: POSTs are recorded as ``[arrival, path, delivery id, body or None]`` (the
    body only for SNS, whose messages are matched by their text); ``GET /records?since=N`` returns the
    records from the N-th on. HTTP/1.1 keep-alive, as the webhook sender's pooled client uses it."""
    records: list[list[Any]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                arrived = time.time()
                if method == "POST":
                    kept = body.decode() if path.startswith("/sns") else None
                    records.append([arrived, path, headers.get("x-opendeploy-delivery"), kept])
                    answer = b""
                else:
                    since = int(path.partition("since=")[2] or "0")
                    answer = json.dumps(records[since:]).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(answer), answer)
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
        pipe.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


class Receiver:
    """The receiver process and this side's view of what arrived (``Receiver.records``)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self.process = context.Process(target=_receiver_main, args=(theirs,), daemon=True)
        self.process.start()
        self.port: int = ours.recv()
        self.http = httpx.Client(base_url=self.url, timeout=30.0)
        self.records: list[list[Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fetch(self) -> None:
        """Add what arrived since the last fetch to ``records``."""
        answer = self.http.get(f"/records?since={len(self.records)}")
        answer.raise_for_status()
        self.records += answer.json()

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.join(10)


# --- one deployment ----------------------------------------------------------------------------------


@dataclass
class Result:
    mode: str
    hosts: int
    status: str
    seconds: float  # CreateDeployment → Succeeded read
    server_cpu: float  # during the deployment
    after_cpu: float = 0.0  # server CPU from the deployment's end to the last arrival
    count: int = 0  # notifications of the deployment (outbox rows) …
    arrived: int = 0  # … of which arrived
    latencies: list[float] = field(default_factory=list)
    by_event: dict[str, list[float]] = field(default_factory=dict)  # latencies by event type
    arrival_span: float = 0.0  # first to last arrival
    production_span: float = 0.0  # first to last outbox row written
    tail: float = 0.0  # completeTime → last arrival
    errors: list[str] = field(default_factory=list)

    def line(self, baseline: Result | None) -> str:
        text = (
            f"{self.mode:8} hosts={self.hosts}  {self.status:9} {self.seconds:6.2f} s, "
            f"server CPU {self.server_cpu:5.1f} s"
        )
        if baseline is not None and self is not baseline:
            text += (
                f" (x{self.seconds / baseline.seconds:.2f} and x{self.server_cpu / baseline.server_cpu:.2f} "
                "the baseline)"
            )
        if self.mode == "baseline":
            return text
        ordered = sorted(self.latencies)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else float("nan")
        median = statistics.median(ordered) if ordered else float("nan")
        return (
            text + f"\n           {self.arrived}/{self.count} notifications; "
            f"latency median {median * 1000:6.0f} ms, "
            f"p95 {p95 * 1000:6.0f} ms, max {(ordered[-1] if ordered else float('nan')) * 1000:6.0f} ms; "
            f"arrived at {rate(self.arrived, self.arrival_span):5.0f}/s (produced at "
            f"{rate(self.count, self.production_span):5.0f}/s); last one {self.tail:5.2f} s after the "
            f"deployment's end (server CPU meanwhile {self.after_cpu:4.1f} s)\n           by event: "
            + ", ".join(
                f"{event} {statistics.median(values) * 1000:.0f} ms (n={len(values)})"
                for event, values in sorted(self.by_event.items())
            )
        )


def rate(count: int, span: float) -> float:
    return count / span if span > 0 else float("nan")


async def blocking(call: Any, /, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: call(**kwargs))


async def deploy(
    server: ServerProcess, instances: list[Instance], application: str, triggers: list[dict[str, Any]]
) -> tuple[str, dict[str, Any], float, float, list[str]]:
    """One AllAtOnce deployment to ``instances`` by simulated agents: (id, final GetDeployment, seconds,
    server CPU seconds, errors)."""
    codedeploy = server.client("codedeploy")
    hosts = len(instances)
    codedeploy.create_application(applicationName=application)
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=application,
        deploymentConfigName="CodeDeployDefault.AllAtOnce",
        serviceRoleArn=ROLE,
        onPremisesInstanceTagFilters=[{"Key": f"fleet-{hosts}", "Type": "KEY_ONLY"}],
        triggerConfigurations=triggers,
    )
    counters = Counters()
    agents = [
        SimulatedAgent(instance, "127.0.0.1", server.port, server.region, counters, True)
        for instance in instances
    ]
    tasks = [asyncio.create_task(agent.run()) for agent in agents]
    deadline = time.monotonic() + 60
    while counters.requests < hosts and not counters.errors and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # every agent waits in a long poll before the deployment is created
    await asyncio.sleep(0.5)
    assert server.process is not None
    cpu_before, _ = process_usage(server.process.pid)
    started = time.monotonic()
    deployment_id = (
        await blocking(
            codedeploy.create_deployment,
            applicationName=application,
            deploymentGroupName=application,
            revision={
                "revisionType": "S3",
                "s3Location": {"bucket": "b", "key": "app.zip", "bundleType": "zip"},
            },
        )
    )["deploymentId"]
    while True:
        info = (await blocking(codedeploy.get_deployment, deploymentId=deployment_id))["deploymentInfo"]
        if info["status"] in FINISHED or counters.errors or time.monotonic() - started > DEPLOYMENT_TIMEOUT:
            break
        await asyncio.sleep(0.05)
    seconds = time.monotonic() - started
    cpu_after, _ = process_usage(server.process.pid)
    for agent in agents:
        for task in list(agent.tasks):
            task.cancel()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for agent in agents:
        agent.close()
    return deployment_id, info, seconds, cpu_after - cpu_before, counters.errors[:5]


def outbox_rows(server: ServerProcess, deployment_id: str, kind: str) -> list[tuple[str, str, float, str]]:
    """(id, body, created_at, event type) of the deployment's notifications of ``kind`` in the outbox."""
    database = Database(server.database_url or f"sqlite:///{server.data_dir / 'opendeploy.db'}")
    try:
        with database.transaction(write=False) as session:
            rows = session.execute(
                select(
                    OutboxNotification.id,
                    OutboxNotification.body,
                    OutboxNotification.created_at,
                    OutboxNotification.event_type,
                ).where(OutboxNotification.deployment_id == deployment_id, OutboxNotification.kind == kind)
            ).all()
    finally:
        database.dispose()
    return [(row.id, row.body, row.created_at, row.event_type) for row in rows]


def arrivals(receiver: Receiver, start: int, kind: str) -> dict[str, float]:
    """First arrival time by key (delivery id for webhooks, message text for SNS) of records[start:]."""
    found: dict[str, float] = {}
    for arrived, path, delivery, body in receiver.records[start:]:
        if kind == "webhook" and path.startswith("/hook") and delivery:
            key = delivery
        elif kind == "sns" and path.startswith("/sns") and body:
            envelope = json.loads(body)
            if envelope.get("Type") != "Notification":
                continue
            key = envelope["Message"]
        else:
            continue
        found.setdefault(key, arrived)
    return found


async def run_mode(
    server: ServerProcess,
    instances: list[Instance],
    receiver: Receiver,
    mode: str,
    run: int,
    topic: str,
) -> Result:
    triggers = (
        [{"triggerName": "every-event", "triggerTargetArn": topic, "triggerEvents": ALL_EVENTS}]
        if mode == "sns"
        else []
    )
    receiver.fetch()
    start = len(receiver.records)
    deployment_id, info, seconds, cpu, errors = await deploy(
        server, instances, f"notify-{mode}-{run}", triggers
    )
    result = Result(
        mode, len(instances), info["status"] if not errors else "Error", seconds, cpu, errors=errors
    )
    if mode == "baseline" or errors:
        return result
    assert server.process is not None
    cpu_before, _ = process_usage(server.process.pid)
    rows = outbox_rows(server, deployment_id, mode)
    key_of = {row_id: (row_id if mode == "webhook" else body) for row_id, body, _, _ in rows}
    created = {key_of[row_id]: created_at for row_id, _, created_at, _ in rows}
    event_of = {key_of[row_id]: event for row_id, _, _, event in rows}
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        await blocking(receiver.fetch)
        found = arrivals(receiver, start, mode)
        if all(key in found for key in created) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    cpu_after, _ = process_usage(server.process.pid)
    matched = {key: found[key] for key in created if key in found}
    result.count = len(created)
    result.arrived = len(matched)
    result.after_cpu = cpu_after - cpu_before
    if matched:
        result.latencies = [matched[key] - created[key] for key in matched]
        for key in matched:
            result.by_event.setdefault(event_of[key], []).append(matched[key] - created[key])
        result.arrival_span = max(matched.values()) - min(matched.values())
        result.production_span = max(created.values()) - min(created.values())
        result.tail = max(matched.values()) - info["completeTime"].timestamp()
    return result


async def run_all(
    server: ServerProcess,
    moto: MotoServer,
    receiver: Receiver,
    hosts: int,
    modes: list[str],
    repeat: int,
    base_args: list[str],
    webhook_args: list[str],
) -> list[Result]:
    instances = register(server, hosts, [hosts])
    check_against_botocore(Signer(instances[0].access_key_id, instances[0].secret, server.region, "h:1"))
    sns = moto.client("sns")
    topic = sns.create_topic(Name="opendeploy-bench")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"{receiver.url}/sns")
    results: list[Result] = []
    for run in range(repeat):
        baseline: Result | None = None
        for mode in modes:
            wanted = base_args + (webhook_args if mode == "webhook" else [])
            if server.extra_args != wanted:  # webhooks are the server's setting: restart with or without
                server.extra_args = wanted
                server.restart()
            result = await run_mode(server, instances, receiver, mode, run, topic)
            if mode == "baseline":
                baseline = result
            print(result.line(baseline), flush=True)
            for error in result.errors:
                print(f"    error: {error}", flush=True)
            results.append(result)
            if result.status != "Succeeded":
                return results
    return results


def summarise(results: list[Result]) -> list[str]:
    lines = []
    baseline = [r.seconds for r in results if r.mode == "baseline"]
    for mode in MODES:
        runs = [r for r in results if r.mode == mode]
        if not runs:
            continue
        seconds = statistics.median(r.seconds for r in runs)
        text = f"median of {len(runs)}: {mode:8} {seconds:6.2f} s"
        if baseline and mode != "baseline":
            base = statistics.median(baseline)
            text += f" (x{seconds / base:.2f} the baseline's {base:.2f} s)"
        if mode != "baseline":
            latencies = [statistics.median(r.latencies) for r in runs if r.latencies]
            text += (
                f"; latency median {statistics.median(latencies) * 1000:.0f} ms"
                if latencies
                else "; nothing arrived"
            )
            text += f"; {statistics.median(rate(r.arrived, r.arrival_span) for r in runs):.0f}/s"
            text += f"; last {statistics.median(r.tail for r in runs):.2f} s after the end"
        lines.append(text)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=1000, help="instances in the deployment (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the modes (medians printed)")
    parser.add_argument(
        "--mode", action="append", choices=MODES, help="repeatable (default: baseline, webhook, sns)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args()
    modes = args.mode or list(MODES)
    workdir = Path(tempfile.mkdtemp(prefix="opendeploy-notifications-"))
    print(f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}; data in {workdir}", flush=True)
    receiver = Receiver()
    moto = MotoServer(workdir / "moto")
    secret = workdir / "webhook-secret"
    secret.write_text("bench-secret\n")
    base_args = ["--log-level", "warning", "--quota", "instances_per_deployment=100000"]
    webhook_args = ["--webhook", f"{receiver.url}/hook", "--webhook-secret-file", str(secret)]
    server: ServerProcess | None = None
    try:
        moto.start()
        server = ServerProcess(
            workdir / "server",
            extra_args=base_args + (webhook_args if modes[0] == "webhook" else []),
            extra_env=moto_environment(moto, ["SNS"]),
        )
        server.start()
        results = asyncio.run(
            run_all(server, moto, receiver, args.hosts, modes, args.repeat, base_args, webhook_args)
        )
    finally:
        if server is not None:
            server.stop()
        moto.stop()
        receiver.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(["", *summarise(results)]))
    if any(r.status != "Succeeded" or r.arrived < r.count for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Benchmark (issue 12): from an alarm entering ALARM to the deployment it watches being stopped.

For each poll interval P it starts moto's server (the CloudWatch stand-in) and an ``opendeploy server``
with ``--alarm-poll-interval P`` whose AWS SDK reaches moto (``AWS_ENDPOINT_URL_CLOUDWATCH``), creates a
CloudWatch metric alarm there and a deployment group of two on-premises instances (OneAtATime) that
watches it, with two simulated agents speaking the real command protocol (``bench/fleet.py``'s). Then,
``--repeat`` times (10):

1. the alarm is set to OK and a deployment created; the first instance's agent acknowledges its first
   lifecycle event and holds it (a long-running hook), the second instance waits its turn. No event
   ends while it is held, so only the periodic poll can read the alarm: the engine's other check, within
   a second of every lifecycle event's end, has nothing to act on;
2. at a random moment, uniform over one poll period (starting 1.5 s after the hold, past any check an
   earlier event's end brought forward), the alarm is set to ALARM with CloudWatch's SetAlarmState;
3. GetDeployment is read every 20 ms: **stop in effect** is the first reading in which the stop has
   taken effect — the waiting instance is Skipped (``deploymentOverview``); a held event still runs, and
   as StopDeployment does the engine lets it finish;
4. the held event is then completed at once, and **Stopped** is the first reading with status Stopped
   (errorInformation ALARM_ACTIVE is checked).

It prints, per P, the median and the maximum of both times next to P and P/2 — the mean wait of a poll
for an alarm that goes off at a random moment, the baseline any polling design pays — and each sample.
With ten draws the median wanders a few seconds around P/2 (at P = 30 s), so it also prints each draw's
own wait for the next poll by the schedule (the first poll at the deployment's startTime, then every P)
and how long after that poll the stop was in effect: the cost of reading the alarm and stopping.

    .venv/bin/python bench/alarms.py                           # P = 30 s (the default) and 5 s
    .venv/bin/python bench/alarms.py --poll-interval 5 --poll-interval 1 --repeat 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aws_stand_in import moto_environment
from fleet import (
    NOOP,
    ROLE,
    SUCCESS,
    Counters,
    Instance,
    ServerError,
    SimulatedAgent,
    register,
)
from support.moto import MotoServer
from support.server import ServerProcess

ALARM = "bench-api-errors"
DEFAULT_INTERVALS = (30.0, 5.0)
SETTLE = 1.5  # past the alarm check an earlier event's end may have pulled forward (BOUNDARY_DELAY, 1 s)
READ_EVERY = 0.02  # GetDeployment's cadence while waiting for the stop
HOSTS = 2


@dataclass
class Hold:
    """A lifecycle event an agent has acknowledged and runs until ``release`` is set."""

    instance: str
    release: asyncio.Event
    at: float


class HoldingAgent(SimulatedAgent):
    """A simulated agent whose every lifecycle event is a long-running hook: acknowledged, then held
    until the bench releases it, then completed Succeeded."""

    def __init__(self, *args: Any, holds: asyncio.Queue[Hold], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.holds = holds

    async def process(self, command: dict[str, Any]) -> None:
        identifier = command["HostCommandIdentifier"]
        try:
            await self.call(
                self.calls,
                "GetDeploymentSpecification",
                {
                    "DeploymentExecutionId": command["DeploymentExecutionId"],
                    "HostIdentifier": self.instance.user_arn,
                },
            )
            ack = await self.call(
                self.calls,
                "PutHostCommandAcknowledgement",
                {"HostCommandIdentifier": identifier, "Diagnostics": {"Format": "JSON", "Payload": NOOP}},
            )
            if ack.get("CommandStatus") in ("Succeeded", "Failed"):
                return
            hold = Hold(self.instance.name, asyncio.Event(), time.time())
            await self.holds.put(hold)
            await hold.release.wait()
            # The server closes keep-alive connections idle for seconds: the completion opens a new one.
            self.calls.close()
            await self.call(
                self.calls,
                "PutHostCommandComplete",
                {
                    "HostCommandIdentifier": identifier,
                    "CommandStatus": "Succeeded",
                    "Diagnostics": {"Format": "JSON", "Payload": json.dumps(SUCCESS)},
                },
            )
        except ServerError as error:
            self.counters.errors.append(str(error))


@dataclass
class Sample:
    flipped_after: float  # seconds from the hold to the alarm's flip (SETTLE + the random part)
    to_stop: float  # alarm in ALARM → the stop seen in GetDeployment
    to_stopped: float  # alarm in ALARM → GetDeployment reads Stopped (the held event completed meanwhile)
    # The wait for the poll itself: from the flip to the next poll the schedule implies (the first at the
    # deployment's startTime, then every P); to_stop minus it is what the read and the stop cost.
    to_tick: float


async def blocking(call: Callable[..., Any], /, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: call(**kwargs))


async def read_until(
    codedeploy: Any, deployment_id: str, done: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """GetDeployment every READ_EVERY seconds (on a fixed cadence) until ``done`` says so."""
    started = time.monotonic()
    tick = 0
    while True:
        info: dict[str, Any] = (await blocking(codedeploy.get_deployment, deploymentId=deployment_id))[
            "deploymentInfo"
        ]
        if done(info):
            return info
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{deployment_id}: still {info['status']} after {timeout:.0f} s: {info}")
        tick += 1
        await asyncio.sleep(max(0.0, started + tick * READ_EVERY - time.monotonic()))


async def measure(
    codedeploy: Any,
    cloudwatch: Any,
    application: str,
    holds: asyncio.Queue[Hold],
    counters: Counters,
    poll: float,
    rng: random.Random,
) -> Sample:
    await blocking(cloudwatch.set_alarm_state, AlarmName=ALARM, StateValue="OK", StateReason="bench: reset")
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
    hold = await asyncio.wait_for(holds.get(), 60)
    flip_after = SETTLE + rng.uniform(0.0, poll)
    await asyncio.sleep(max(0.0, hold.at + flip_after - time.time()))
    await blocking(
        cloudwatch.set_alarm_state,
        AlarmName=ALARM,
        StateValue="ALARM",
        StateReason="bench: threshold crossed",
    )
    flipped = time.time()  # SetAlarmState has returned: the alarm is in ALARM from here on at the latest

    def stop_seen(info: dict[str, Any]) -> bool:
        if counters.errors:
            raise SystemExit(f"agent error: {counters.errors[0]}")
        return info["deploymentOverview"]["Skipped"] >= 1 or info["status"] in (
            "Stopped",
            "Failed",
            "Succeeded",
        )

    info = await read_until(codedeploy, deployment_id, stop_seen, poll + 60)
    to_stop = time.time() - flipped
    if info["status"] != "InProgress":
        raise SystemExit(f"{deployment_id} ended {info['status']} before its held event did: {info}")
    hold.release.set()
    info = await read_until(codedeploy, deployment_id, lambda i: i["status"] != "InProgress", 60)
    to_stopped = time.time() - flipped
    started = info["startTime"].timestamp()
    to_tick = started + math.ceil((flipped - started) / poll) * poll - flipped
    error = info.get("errorInformation", {})
    if info["status"] != "Stopped" or error.get("code") != "ALARM_ACTIVE":
        raise SystemExit(f"{deployment_id}: expected Stopped with ALARM_ACTIVE, got {info['status']} {error}")
    return Sample(flip_after, to_stop, to_stopped, to_tick)


async def run_interval(
    server: ServerProcess, moto: MotoServer, poll: float, repeat: int, seed: int
) -> list[Sample]:
    instances: list[Instance] = register(server, HOSTS, [HOSTS])
    codedeploy = server.client("codedeploy")
    cloudwatch = moto.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        Namespace="Bench",
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    application = "alarms"
    codedeploy.create_application(applicationName=application)
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=application,
        deploymentConfigName="CodeDeployDefault.OneAtATime",
        serviceRoleArn=ROLE,
        onPremisesInstanceTagFilters=[{"Key": f"fleet-{HOSTS}", "Type": "KEY_ONLY"}],
        alarmConfiguration={"enabled": True, "alarms": [{"name": ALARM}]},
    )
    counters = Counters()
    holds: asyncio.Queue[Hold] = asyncio.Queue()
    agents = [
        HoldingAgent(instance, "127.0.0.1", server.port, server.region, counters, True, holds=holds)
        for instance in instances
    ]
    tasks = [asyncio.create_task(agent.run()) for agent in agents]
    rng = random.Random(seed)
    samples: list[Sample] = []
    try:
        for run in range(repeat):
            sample = await measure(codedeploy, cloudwatch, application, holds, counters, poll, rng)
            samples.append(sample)
            print(
                f"  P={poll:g} s run {run + 1:2}: ALARM {sample.flipped_after:6.2f} s after the hold; "
                f"stop in effect after {sample.to_stop:6.3f} s, "
                f"Stopped after {sample.to_stopped:6.3f} s; next poll by the schedule after "
                f"{sample.to_tick:6.3f} s (stop in effect {sample.to_stop - sample.to_tick:+.3f} s after it)",
                flush=True,
            )
    finally:
        for agent in agents:
            for task in list(agent.tasks):
                task.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for agent in agents:
            agent.close()
    return samples


def summary(poll: float, samples: list[Sample]) -> str:
    stop = [s.to_stop for s in samples]
    stopped = [s.to_stopped for s in samples]
    ticks = [s.to_tick for s in samples]
    beyond = [s.to_stop - s.to_tick for s in samples]
    return (
        f"P={poll:g} s (n={len(samples)}): ALARM→stop in effect median {statistics.median(stop):6.3f} s, "
        f"max {max(stop):6.3f} s; ALARM→Stopped median {statistics.median(stopped):6.3f} s, "
        f"max {max(stopped):6.3f} s\n"
        f"    baseline: P/2 = {poll / 2:.2f} s (mean wait of a poll), P = {poll:.2f} s (longest); these "
        f"draws' own waits for the next poll: median {statistics.median(ticks):6.3f} s, "
        f"max {max(ticks):6.3f} s; "
        f"stop in effect after that poll: median {statistics.median(beyond) * 1000:+.0f} ms, "
        f"max {max(beyond) * 1000:+.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--poll-interval",
        action="append",
        type=float,
        help="the server's --alarm-poll-interval in seconds, repeatable (default: 30 and 5)",
    )
    parser.add_argument(
        "--repeat", type=int, default=10, help="alarms per poll interval (median and max printed)"
    )
    parser.add_argument("--seed", type=int, default=12, help="seed of the random moments")
    parser.add_argument("--keep", action="store_true", help="keep the servers' data directories")
    args = parser.parse_args()
    intervals = args.poll_interval or list(DEFAULT_INTERVALS)
    print(
        f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}. The deployment is held in a long-running "
        "lifecycle event: no event ends, so only the periodic alarm poll can stop it (the engine also "
        "checks within 1 s of every event's end). Alarm: CloudWatch on moto's server (SetAlarmState). "
        f"GetDeployment read every {READ_EVERY * 1000:.0f} ms.",
        flush=True,
    )
    summaries = []
    for poll in intervals:
        workdir = Path(tempfile.mkdtemp(prefix="opendeploy-alarms-"))
        moto = MotoServer(workdir / "moto")
        server = ServerProcess(
            workdir / "server",
            extra_args=["--log-level", "warning", "--alarm-poll-interval", f"{poll:g}"],
        )
        try:
            moto.start()
            server.extra_env = moto_environment(moto, ["CLOUDWATCH"])  # moto's port is known once started
            server.start()
            samples = asyncio.run(run_interval(server, moto, poll, args.repeat, args.seed))
            summaries.append(summary(poll, samples))
            print(summaries[-1], flush=True)
        finally:
            server.stop()
            moto.stop()
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(["", *summaries]))


if __name__ == "__main__":
    main()

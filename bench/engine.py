"""Benchmark: the engine and the agent command service with many simulated agents.

Starts ``opendeploy server`` as a subprocess (the test harness's ``ServerProcess``), registers N
on-premises instances (each with its own access key, as ``aws deploy register`` would), and runs N
simulated agents in this process: asyncio tasks that speak the real command protocol over HTTP —
PollHostCommand (long poll), GetDeploymentSpecification, PutHostCommandAcknowledgement,
PutHostCommandComplete, each SigV4-signed with botocore's signer — and complete every lifecycle event
at once (no-op hooks). Measures CreateDeployment -> Succeeded, requests per second, the server's CPU
time and peak memory.

    .venv/bin/python bench/engine.py --hosts 100 --config AllAtOnce
    .venv/bin/python bench/engine.py --hosts 20 --config OneAtATime        # per-host overhead
    .venv/bin/python bench/engine.py --hosts 100 --backend postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from opendeploy.store.access_keys import create_access_key
from opendeploy.store.db import Database
from opendeploy.store.secrets import SecretBox
from support.postgres import Databases, unreachable_reason
from support.server import ServerProcess

TARGET = "CodeDeployCommandService_v20141006"
ROLE = "arn:aws:iam::111122223333:role/CodeDeployServiceRole"
SUCCESS = json.dumps({"error_code": 0, "script_name": "", "message": "Succeeded: ", "log": ""})
NOOP = json.dumps({"IsCommandNoop": True})


@dataclass
class SimulatedAgent:
    name: str
    user_arn: str
    credentials: Credentials
    events: int = 0


class Protocol:
    """Signed awsJson calls to the command service over one shared async HTTP client."""

    def __init__(self, endpoint: str, region: str, connections: int) -> None:
        self.endpoint = endpoint
        self.region = region
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120.0))
        self.requests = 0

    async def call(self, agent: SimulatedAgent, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        request = AWSRequest(
            method="POST",
            url=f"{self.endpoint}/",
            data=json.dumps(params).encode(),
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"{TARGET}.{operation}",
            },
        )
        SigV4Auth(agent.credentials, "codedeploy-commands", self.region).add_auth(request)
        response = await self.http.post(request.url, content=request.body, headers=dict(request.headers))
        self.requests += 1
        body = response.json() if response.content else {}
        if response.status_code != 200:
            raise RuntimeError(f"{agent.name} {operation}: {response.status_code} {body}")
        return body


async def run_agent(protocol: Protocol, agent: SimulatedAgent) -> None:
    while True:
        out = await protocol.call(agent, "PollHostCommand", {"HostIdentifier": agent.user_arn})
        command = out.get("HostCommand")
        if not command:
            continue
        identifier = command["HostCommandIdentifier"]
        await protocol.call(
            agent,
            "GetDeploymentSpecification",
            {"DeploymentExecutionId": command["DeploymentExecutionId"], "HostIdentifier": agent.user_arn},
        )
        await protocol.call(
            agent,
            "PutHostCommandAcknowledgement",
            {"HostCommandIdentifier": identifier, "Diagnostics": {"Format": "JSON", "Payload": NOOP}},
        )
        await protocol.call(
            agent,
            "PutHostCommandComplete",
            {
                "HostCommandIdentifier": identifier,
                "CommandStatus": "Succeeded",
                "Diagnostics": {"Format": "JSON", "Payload": SUCCESS},
            },
        )
        agent.events += 1


def register(server: ServerProcess, hosts: int, tag: str) -> list[SimulatedAgent]:
    """Instances with their own keys (straight into the store), registered and tagged through the API."""
    names = [f"bench-{tag}-{i:05d}" for i in range(hosts)]
    arns = {name: f"arn:aws:iam::{server.account_id}:user/{name}" for name in names}
    database = Database(server.database_url or f"sqlite:///{server.data_dir / 'opendeploy.db'}")
    box = SecretBox.load_or_create(server.data_dir)
    with database.transaction() as session:
        keys = {
            name: create_access_key(session, box, principal_arn=arns[name], now=time.time()) for name in names
        }
    database.dispose()
    codedeploy = server.client("codedeploy")
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda name: codedeploy.register_on_premises_instance(
                    instanceName=name, iamUserArn=arns[name]
                ),
                names,
            )
        )
    for start in range(0, hosts, 100):
        codedeploy.add_tags_to_on_premises_instances(
            instanceNames=names[start : start + 100], tags=[{"Key": "bench", "Value": tag}]
        )
    return [
        SimulatedAgent(name, arns[name], Credentials(keys[name].access_key_id, keys[name].secret_access_key))
        for name in names
    ]


def server_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds used, peak resident memory in KiB) of a process and its children's threads."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    return cpu, peak


async def measure(
    server: ServerProcess, agents: list[SimulatedAgent], config: str, tag: str
) -> dict[str, Any]:
    codedeploy = server.client("codedeploy")
    application, group = f"bench-{tag}", f"bench-{tag}"
    codedeploy.create_application(applicationName=application)
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=group,
        deploymentConfigName=f"CodeDeployDefault.{config}",
        serviceRoleArn=ROLE,
        onPremisesInstanceTagFilters=[{"Key": "bench", "Value": tag, "Type": "KEY_AND_VALUE"}],
    )
    protocol = Protocol(server.endpoint, server.region, connections=len(agents) + 16)
    tasks = [asyncio.create_task(run_agent(protocol, agent)) for agent in agents]
    await asyncio.sleep(1.0)  # every agent is waiting in a long poll
    assert server.process is not None
    cpu_before, _ = server_usage(server.process.pid)
    requests_before = protocol.requests
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    deployment_id = (
        await loop.run_in_executor(
            None,
            lambda: codedeploy.create_deployment(
                applicationName=application,
                deploymentGroupName=group,
                revision={
                    "revisionType": "S3",
                    "s3Location": {"bucket": "bench", "key": "app.zip", "bundleType": "zip"},
                },
            ),
        )
    )["deploymentId"]
    while True:
        info = await loop.run_in_executor(
            None, lambda: codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        )
        if info["status"] in ("Succeeded", "Failed", "Stopped"):
            break
        await asyncio.sleep(0.02)
    elapsed = time.monotonic() - started
    cpu_after, peak = server_usage(server.process.pid)
    requests = protocol.requests - requests_before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await protocol.http.aclose()
    return {
        "status": info["status"],
        "seconds": elapsed,
        "requests": requests,
        "server_cpu": cpu_after - cpu_before,
        "peak_kib": peak,
        "events": sum(agent.events for agent in agents),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--config", choices=["AllAtOnce", "HalfAtATime", "OneAtATime"], default="AllAtOnce")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    databases = None
    database_url = None
    if args.backend == "postgresql":
        reason = unreachable_reason()
        if reason:
            sys.exit(reason)
        databases = Databases()
        database_url = databases.create("opendeploy_bench")
    with tempfile.TemporaryDirectory(prefix="opendeploy-bench-") as workdir:
        server = ServerProcess(
            Path(workdir),
            database_url,
            extra_args=[
                "--poll-hold",
                "20",
                "--log-level",
                "warning",
                "--quota",
                "instances_per_deployment=100000",
            ],
        )
        server.start()
        try:
            tag = f"{os.getpid()}"
            agents = register(server, args.hosts, tag)
            result = asyncio.run(measure(server, agents, args.config, tag))
        finally:
            server.stop()
            if databases is not None:
                databases.drop_all()
    seconds = result["seconds"]
    print(
        f"{args.backend:10} {args.config:11} hosts={args.hosts:5}  {result['status']}  "
        f"{seconds:7.2f} s  ({seconds / args.hosts * 1000:6.1f} ms/host)  "
        f"{result['requests']} requests ({result['requests'] / seconds:6.0f}/s)  "
        f"server CPU {result['server_cpu']:.1f} s  peak RSS {result['peak_kib'] / 1024:.0f} MiB  "
        f"events {result['events']}"
    )


if __name__ == "__main__":
    main()

"""Benchmark: one deployment to a fleet of simulated agents, from CreateDeployment to Succeeded.

Starts ``opendeploy server`` as a subprocess (the test harness's ``ServerProcess``; SQLite, or
PostgreSQL with ``--backend postgresql``), registers the largest fleet asked for through the API (each
instance with its own access key, as ``aws deploy register`` creates it), and runs each scenario with
that many simulated agents in this one process. A simulated agent speaks the real command protocol over
HTTP, every request SigV4-signed (the server verifies each with its real signature check): a long
poll always waiting (PollHostCommand), and for each command GetDeploymentSpecification,
PutHostCommandAcknowledgement and PutHostCommandComplete(Succeeded) at once — no-op hooks. With
``--cached-specification`` it fetches the specification once per deployment, as opendeploy's own agent
does; by default once per command, as AWS's agent does.

For each scenario it prints the time from CreateDeployment to Succeeded (and per host), the command
requests and their rate, the server's CPU time (and per request), its peak memory, this process's CPU
and the load average — next to a baseline measured just before in the same run: the same number of
requests, from as many connections, to the server's unauthenticated ``GET /health`` (the HTTP stack and
this simulator alone). With ``--repeat`` each scenario runs several times and medians are printed.

    .venv/bin/python bench/fleet.py                                   # the issue's three scenarios
    .venv/bin/python bench/fleet.py --scenario AllAtOnce:1000 --repeat 3
    .venv/bin/python bench/fleet.py --scenario OneAtATime:100 --backend postgresql

Targets (issue 5, this 2-core machine): 1,000 hosts AllAtOnce within 20 s; OneAtATime under 100 ms of
overhead per host.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
SERVICE = "codedeploy-commands"
CONTENT_TYPE = "application/x-amz-json-1.1"
ROLE = "arn:aws:iam::111122223333:role/CodeDeployServiceRole"
SUCCESS = {"error_code": 0, "script_name": "", "message": "Succeeded: ", "log": ""}
NOOP = json.dumps({"IsCommandNoop": False})
DEFAULT_SCENARIOS = ("AllAtOnce:100", "AllAtOnce:1000", "OneAtATime:100")
SCENARIO_TIMEOUT = 600.0
FINISHED = ("Succeeded", "Failed", "Stopped")


# --- signing ---------------------------------------------------------------------------------------


class Signer:
    """SigV4 for the simulator's fixed request shape (POST / with four signed headers), with the day's
    signing key cached: botocore's signer, run for every request, would cost this process more CPU than
    the server spends answering. ``check_against_botocore`` proves both sign alike."""

    def __init__(self, access_key_id: str, secret: str, region: str, host: str) -> None:
        self.access_key_id = access_key_id
        self.secret = secret
        self.region = region
        self.host = host
        self._day = ""
        self._key = b""

    def _signing_key(self, day: str) -> bytes:
        if day != self._day:
            key = f"AWS4{self.secret}".encode()
            for part in (day, self.region, SERVICE, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._day, self._key = day, key
        return self._key

    def headers(self, target: str, body: bytes, amz_date: str) -> list[tuple[str, str]]:
        day = amz_date[:8]
        canonical = (
            f"POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{self.host}\nx-amz-date:{amz_date}\n"
            f"x-amz-target:{target}\n\ncontent-type;host;x-amz-date;x-amz-target\n"
            f"{hashlib.sha256(body).hexdigest()}"
        )
        scope = f"{day}/{self.region}/{SERVICE}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return [
            ("Content-Type", CONTENT_TYPE),
            ("X-Amz-Date", amz_date),
            ("X-Amz-Target", target),
            (
                "Authorization",
                f"AWS4-HMAC-SHA256 Credential={self.access_key_id}/{scope}, "
                f"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}",
            ),
        ]


def check_against_botocore(signer: Signer) -> None:
    """The fast signer's signature must equal botocore's for the same request."""
    body = b'{"HostIdentifier":"x"}'
    target = f"{TARGET}.PollHostCommand"
    request = AWSRequest(
        method="POST",
        url=f"http://{signer.host}/",
        data=body,
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": target},
    )
    SigV4Auth(Credentials(signer.access_key_id, signer.secret), SERVICE, signer.region).add_auth(request)
    ours = dict(signer.headers(target, body, request.headers["X-Amz-Date"]))["Authorization"]
    if request.headers["Authorization"] != ours:
        raise SystemExit(f"the simulator's signer disagrees with botocore:\n{ours}\n{request.headers}")


# --- HTTP ------------------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time: the simulator's own minimal client,
    because a general-purpose one costs several times the CPU per request and shares the machine's two
    cores with the server being measured."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def request(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> tuple[int, bytes]:
        async with self._lock:
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None
            head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
            head += [f"{name}: {value}" for name, value in headers]
            head.append(f"Content-Length: {len(body)}")
            self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            status_and_headers = await self._reader.readuntil(b"\r\n\r\n")
            lines = status_and_headers.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            return status, await self._reader.readexactly(length)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ServerError(Exception):
    """The server refused or failed a request: the scenario stops with this message."""


@dataclass
class Counters:
    requests: int = 0
    errors: list[str] = field(default_factory=list)


# --- simulated agents ------------------------------------------------------------------------------


@dataclass
class Instance:
    name: str
    user_arn: str
    access_key_id: str
    secret: str


class SimulatedAgent:
    """One host's agent: a long poll always waiting, and each command it hands out run at once."""

    def __init__(
        self, instance: Instance, host: str, port: int, region: str, counters: Counters, spec_each: bool
    ) -> None:
        self.instance = instance
        self.signer = Signer(instance.access_key_id, instance.secret, region, f"{host}:{port}")
        self.polls = Connection(host, port)
        self.calls = Connection(host, port)  # the agent's worker threads' connection
        self.counters = counters
        self.spec_each = spec_each
        self.specifications: set[str] = set()
        self.events = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def call(self, connection: Connection, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(params, separators=(",", ":")).encode()
        amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = self.signer.headers(f"{TARGET}.{operation}", body, amz_date)
        status, answer = await connection.request("POST", "/", headers, body)
        self.counters.requests += 1
        if status != 200:
            raise ServerError(f"{self.instance.name} {operation}: HTTP {status} {answer[:300]!r}")
        return json.loads(answer) if answer else {}

    async def run(self) -> None:
        try:
            while True:
                out = await self.call(
                    self.polls, "PollHostCommand", {"HostIdentifier": self.instance.user_arn}
                )
                command = out.get("HostCommand")
                if command:
                    task = asyncio.create_task(self.process(command))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
        except ServerError as error:
            self.counters.errors.append(str(error))

    async def process(self, command: dict[str, Any]) -> None:
        identifier = command["HostCommandIdentifier"]
        execution = command["DeploymentExecutionId"]
        try:
            if self.spec_each or execution not in self.specifications:
                await self.call(
                    self.calls,
                    "GetDeploymentSpecification",
                    {"DeploymentExecutionId": execution, "HostIdentifier": self.instance.user_arn},
                )
                self.specifications.add(execution)
            ack = await self.call(
                self.calls,
                "PutHostCommandAcknowledgement",
                {"HostCommandIdentifier": identifier, "Diagnostics": {"Format": "JSON", "Payload": NOOP}},
            )
            if ack.get("CommandStatus") in ("Succeeded", "Failed"):
                return
            await self.call(
                self.calls,
                "PutHostCommandComplete",
                {
                    "HostCommandIdentifier": identifier,
                    "CommandStatus": "Succeeded",
                    "Diagnostics": {"Format": "JSON", "Payload": json.dumps(SUCCESS)},
                },
            )
            self.events += 1
        except ServerError as error:
            self.counters.errors.append(str(error))

    def close(self) -> None:
        self.polls.close()
        self.calls.close()


# --- fleet setup -----------------------------------------------------------------------------------


def register(server: ServerProcess, hosts: int, sizes: list[int]) -> list[Instance]:
    """``hosts`` instances with their own keys (created in the store), registered through the API and
    tagged ``fleet-<n>`` for every scenario size ``n`` they belong to."""
    names = [f"fleet-{i:05d}" for i in range(hosts)]
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
    for size in sorted(set(sizes)):
        for start in range(0, size, 100):
            codedeploy.add_tags_to_on_premises_instances(
                instanceNames=names[start : min(start + 100, size)],
                tags=[{"Key": f"fleet-{size}", "Value": ""}],
            )
    return [
        Instance(name, arns[name], keys[name].access_key_id, keys[name].secret_access_key) for name in names
    ]


# --- measuring -------------------------------------------------------------------------------------


def process_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds used so far, peak resident memory in KiB) of a process, all its threads."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    peak = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    return cpu, peak


class Profiler:
    """py-spy (``pip install py-spy``; not a dependency) sampling the server during one deployment:
    the thread holding the interpreter lock (where Python code spends CPU), as collapsed stacks;
    ``top`` sums them."""

    def __init__(self, pid: int, output: Path) -> None:
        import shutil
        import subprocess

        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.output = output
        self.process = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--gil",
                "--nonblocking",
                "--rate",
                "200",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        import signal

        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        if not self.output.exists():
            raise SystemExit(
                f"py-spy wrote no profile to {self.output} (exit status {self.process.returncode})"
            )

    def top(self, count: int = 25) -> str:
        own: dict[str, int] = {}
        inclusive: dict[str, int] = {}
        total = 0
        for line in self.output.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            if not stack or not samples.isdigit():
                continue
            n = int(samples)
            total += n
            frames = [frame.rsplit(":", 1)[0] for frame in stack.split(";")]
            own[frames[-1]] = own.get(frames[-1], 0) + n
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + n
        lines = [f"profile: {total} samples holding the GIL ({self.output})", "  self:"]
        lines += [f"    {n / total:6.1%} {f}" for f, n in sorted(own.items(), key=lambda i: -i[1])[:count]]
        lines.append("  inclusive:")
        lines += [
            f"    {n / total:6.1%} {f}"
            for f, n in sorted(inclusive.items(), key=lambda i: -i[1])[: count * 2]
        ]
        return "\n".join(lines) if total else "profile: no samples"


async def baseline(server: ServerProcess, connections: int, requests: int) -> float:
    """Seconds this process needs to issue ``requests`` requests over ``connections`` connections to the
    server's trivial ``GET /health``: the HTTP stack and the simulator, without the command service."""
    pool = [Connection("127.0.0.1", server.port) for _ in range(connections)]
    per_connection = [
        requests // connections + (1 if i < requests % connections else 0) for i in range(connections)
    ]

    async def run(connection: Connection, count: int) -> None:
        for _ in range(count):
            status, _ = await connection.request("GET", "/health", [])
            if status != 200:
                raise ServerError(f"GET /health: HTTP {status}")

    started = time.monotonic()
    await asyncio.gather(*(run(c, n) for c, n in zip(pool, per_connection, strict=True)))
    elapsed = time.monotonic() - started
    for connection in pool:
        connection.close()
    return elapsed


@dataclass
class Result:
    config: str
    hosts: int
    status: str
    seconds: float
    requests: int
    server_cpu: float
    peak_kib: int
    simulator_cpu: float
    baseline_seconds: float
    load_before: float
    load_after: float
    events: int
    errors: list[str]

    def line(self) -> str:
        per_request = self.server_cpu / self.requests * 1000 if self.requests else 0.0
        return (
            f"{self.config:10} hosts={self.hosts:5}  {self.status:9} {self.seconds:7.2f} s "
            f"({self.seconds / self.hosts * 1000:6.1f} ms/host)  "
            f"{self.requests} requests {self.requests / self.seconds:6.0f}/s  "
            f"server CPU {self.server_cpu:5.1f} s ({per_request:4.2f} ms/request)  "
            f"peak RSS {self.peak_kib / 1024:4.0f} MiB  simulator CPU {self.simulator_cpu:5.1f} s  "
            f"baseline {self.baseline_seconds:5.2f} s ({self.requests / self.baseline_seconds:6.0f}/s, "
            f"x{self.seconds / self.baseline_seconds:.1f})  "
            f"load {self.load_before:.2f}->{self.load_after:.2f}"
        )


async def run_scenario(
    server: ServerProcess,
    instances: list[Instance],
    config: str,
    hosts: int,
    run: int,
    *,
    spec_each: bool,
    profile: Path | None = None,
) -> Result:
    codedeploy = server.client("codedeploy")
    application = f"fleet-{config}-{hosts}-{run}"
    codedeploy.create_application(applicationName=application)
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=application,
        deploymentConfigName=f"CodeDeployDefault.{config}",
        serviceRoleArn=ROLE,
        onPremisesInstanceTagFilters=[{"Key": f"fleet-{hosts}", "Type": "KEY_ONLY"}],
    )
    counters = Counters()
    agents = [
        SimulatedAgent(instance, "127.0.0.1", server.port, server.region, counters, spec_each)
        for instance in instances[:hosts]
    ]
    tasks = [asyncio.create_task(agent.run()) for agent in agents]
    # Every agent waits in a long poll before the deployment is created.
    assert server.process is not None
    deadline = time.monotonic() + 60
    while counters.requests < hosts and not counters.errors and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    load_before = os.getloadavg()[0]
    cpu_before, _ = process_usage(server.process.pid)
    own_before = time.process_time()
    requests_before = counters.requests
    profiler = Profiler(server.process.pid, profile) if profile else None
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    deployment_id = (
        await loop.run_in_executor(
            None,
            lambda: codedeploy.create_deployment(
                applicationName=application,
                deploymentGroupName=application,
                revision={
                    "revisionType": "S3",
                    "s3Location": {"bucket": "fleet", "key": "app.zip", "bundleType": "zip"},
                },
            ),
        )
    )["deploymentId"]
    while True:
        info = await loop.run_in_executor(
            None, lambda: codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        )
        if info["status"] in FINISHED or counters.errors or time.monotonic() - started > SCENARIO_TIMEOUT:
            break
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - started
    cpu_after, peak = process_usage(server.process.pid)
    if profiler is not None:
        profiler.stop()
        print(profiler.top(), flush=True)
    own_cpu = time.process_time() - own_before
    load_after = os.getloadavg()[0]
    requests = counters.requests - requests_before
    for agent in agents:
        for task in list(agent.tasks):
            task.cancel()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for agent in agents:
        agent.close()
    base = await baseline(server, min(2 * hosts, 1000), max(requests, 1))
    return Result(
        config=config,
        hosts=hosts,
        status=info["status"] if not counters.errors else "Error",
        seconds=elapsed,
        requests=requests,
        server_cpu=cpu_after - cpu_before,
        peak_kib=peak,
        simulator_cpu=own_cpu,
        baseline_seconds=base,
        load_before=load_before,
        load_after=load_after,
        events=sum(agent.events for agent in agents),
        errors=counters.errors[:5],
    )


def parse_scenario(text: str) -> tuple[str, int]:
    config, _, hosts = text.partition(":")
    if config not in ("AllAtOnce", "HalfAtATime", "OneAtATime") or not hosts.isdigit() or int(hosts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected CONFIG:HOSTS, e.g. AllAtOnce:1000")
    return config, int(hosts)


def summarise(results: list[Result]) -> str:
    first = results[0]
    seconds = statistics.median(r.seconds for r in results)
    base = statistics.median(r.baseline_seconds for r in results)
    cpu = statistics.median(r.server_cpu / max(r.requests, 1) * 1000 for r in results)
    return (
        f"median of {len(results)}: {first.config} {first.hosts} hosts  {seconds:.2f} s "
        f"({seconds / first.hosts * 1000:.1f} ms/host), server CPU {cpu:.2f} ms/request, "
        f"x{seconds / base:.1f} the baseline"
    )


async def run_all(
    server: ServerProcess,
    scenarios: list[tuple[str, int]],
    repeat: int,
    spec_each: bool,
    profile: Path | None,
) -> list[Result]:
    instances = register(server, max(hosts for _, hosts in scenarios), [hosts for _, hosts in scenarios])
    check_against_botocore(Signer(instances[0].access_key_id, instances[0].secret, server.region, "h:1"))
    results: list[Result] = []
    for config, hosts in scenarios:
        runs = []
        for run in range(repeat):
            where = profile.with_name(f"{profile.stem}-{config}-{hosts}-{run}.txt") if profile else None
            result = await run_scenario(
                server,
                instances,
                config,
                hosts,
                run,
                spec_each=spec_each,
                profile=where,
            )
            print(result.line(), flush=True)
            for error in result.errors:
                print(f"    error: {error}", flush=True)
            runs.append(result)
            if result.errors or result.status != "Succeeded":
                return results + runs
        if repeat > 1:
            print("  " + summarise(runs), flush=True)
        results += runs
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenario",
        action="append",
        type=parse_scenario,
        help="CONFIG:HOSTS, repeatable (default: " + ", ".join(DEFAULT_SCENARIOS) + ")",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scenario (medians printed)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--cached-specification",
        action="store_true",
        help="fetch a deployment's specification once per host, as opendeploy's agent does",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="PATH",
        help="sample the server with py-spy during each deployment; PATH-<scenario>.txt and the top costs",
    )
    parser.add_argument("--keep", action="store_true", help="keep the server's data directory")
    args = parser.parse_args()
    scenarios = args.scenario or [parse_scenario(s) for s in DEFAULT_SCENARIOS]
    databases = None
    database_url = None
    if args.backend == "postgresql":
        reason = unreachable_reason()
        if reason:
            sys.exit(reason)
        databases = Databases()
        database_url = databases.create("opendeploy_bench")
    workdir = tempfile.mkdtemp(prefix="opendeploy-fleet-")
    server = ServerProcess(
        Path(workdir),
        database_url,
        extra_args=["--log-level", "warning", "--quota", "instances_per_deployment=100000"],
    )
    print(
        f"{args.backend}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}; data in {workdir}", flush=True
    )
    try:
        server.start()
        results = asyncio.run(
            run_all(
                server,
                scenarios,
                args.repeat,
                not args.cached_specification,
                args.profile,
            )
        )
    finally:
        server.stop()
        if databases is not None:
            databases.drop_all()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    if any(result.status != "Succeeded" for result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()

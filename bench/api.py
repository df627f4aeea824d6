"""Benchmark: GetDeployment and CreateDeployment through boto3 against a real ``opendeploy server``,
as the administrator and as an IAM user with a realistic policy set, side by side in the same run.

Every caller below has a server of its own, started as a subprocess (the test harness's
``ServerProcess``: ``opendeploy init`` into a temporary AWS profile, then ``opendeploy server``), on
SQLite and on PostgreSQL (a throw-away database each). The bench measures with 1, 8 and 32 concurrent
boto3 clients — each its own process, so the clients do not share an interpreter lock — started
together once every client is ready. Every client calls every caller's server in turn, call by call
(the first taking turns), so whatever else the machine does at a moment hits all callers alike; a
caller's throughput is its calls per second of their latencies, as if it had the clients alone:

- CreateDeployment: every call deploys to its own deployment group (a group runs one deployment at a
  time), created beforehand. The servers' engines are held back meanwhile (``bench/server_hooks``), so
  the figures are the API call's own; how many of the engine's rounds would fall inside a measurement
  of a few seconds varies from turn to turn, and that spread is larger than the checks' cost. Then the
  engines are let go together and run the new deployments (the groups have no instances, so they fail
  each one: NO_INSTANCES); each server's CPU until its engine is done is measured too, and printed as
  the whole cost of a deployment (call and engine run);
- GetDeployment: the deployments just created, round-robin, once the engines have finished them (so it
  measures GetDeployment, not the engines' backlog).

Every measurement is made for every caller (``--as``, default ``admin,user``) at once, for each client
count and repetition (``--repeat``: a turn), each on an application of its own (fresh deployment groups):

- ``admin``: the administrator key ``opendeploy init`` wrote into the profile (AWS's
  AdministratorAccess);
- ``user``: an IAM user made through the server's IAM API, signing with its own access key, whose
  policies hold 20 statements — an inline user policy, an inline policy of a group it belongs to and
  an attached customer managed policy — with Allow on the bench applications' resources (Get*,
  List*, BatchGet*, CreateDeployment, GetDeploymentConfig, Get/RegisterApplicationRevision),
  Deny on other applications and on deletes, NotAction, and conditions (``IpAddress``,
  ``NotIpAddress``, ``StringEquals aws:username``, ``Null``, ``DateLessThan``, ``Bool``) that
  match or are evaluated without matching, so no decision is trivially short-circuited.

Every request of both callers is authorized and writes an audit event; the user's extra cost is
loading and evaluating its policies. What authorization and audit cost together shows next to a server
without either, measured in the same turns on the same backend:

- ``--unchecked`` adds the caller ``unchecked``: a server from this same checkout with its
  authorization and audit trail switched off by ``bench/server_hooks/sitecustomize.py`` (checked: a
  user without policies gets in), so the ratios user / unchecked and admin / unchecked are exactly what
  the checks cost;
- ``--baseline REF`` adds the caller ``before``, the administrator of a server run from a git worktree
  of ``REF`` (``668551c`` is the last commit before issue 9 added them; everything since then is in
  that difference too).

Prints each measurement's requests per second and p50 / p99 latency (milliseconds), then per backend,
operation and client count the median throughput of each caller and the ratios user / admin and, with a
baseline, admin / and user / the baseline — each the median of the ratios within one turn, since a
shared machine's load drifts between turns far more than within one; then the same for the servers'
CPU time per request (read from /proc), whose ratios say the same as capacity but are far less
disturbed by other work on a shared machine; then, for CreateDeployment, the servers' CPU per
deployment with their engines' run of it. Target (issue 9): authorization and audit together cost
under 10 % of throughput — ratios of at least 0.90.

Quick run: ``--requests 200 --clients 1,8``. Run with the project's venv:
``.venv/bin/python bench/api.py --unchecked``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.postgres import Databases, unreachable_reason
from support.server import ServerProcess

ROLE = "arn:aws:iam::111122223333:role/CodeDeployServiceRole"
REVISION = {"revisionType": "S3", "s3Location": {"bucket": "bench", "key": "app.zip", "bundleType": "zip"}}
CONCURRENCY = (1, 8, 32)
CALLERS = ("admin", "user")
REPOSITORY = Path(__file__).resolve().parents[1]
USER = "bench-deployer"


@dataclass
class Result:
    backend: str
    caller: str
    operation: str
    clients: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_seconds: float  # user + system CPU the server process spent during the measurement
    round_: int = 0  # which turn: the callers' measurements of one turn are compared with each other
    engine_cpu_seconds: float = 0.0  # CreateDeployment: the server's CPU while the engine ran them after

    @property
    def cpu_ms_per_deployment(self) -> float:
        """CreateDeployment: the server's CPU per call and the engine's run of what it created."""
        return (self.server_cpu_seconds + self.engine_cpu_seconds) * 1000 / self.requests

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_seconds * 1000 / self.requests

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(frozen=True)
class Target:
    """Where one caller's calls go: its server's profile, the key that signs, its application."""

    config_file: str
    credentials_file: str
    key: tuple[str, str] | None  # an IAM user's access key id and secret; None: the profile's
    application: str


@dataclass(frozen=True)
class Job:
    """One client's share: for each of its items, one call to every target (``items[t]`` are target
    ``t``'s: group names or deployment ids)."""

    operation: str  # create_deployment | get_deployment
    targets: tuple[Target, ...]
    items: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Caller:
    """Who signs the measured calls, on which server: ``key`` None is the profile's administrator key.
    Every caller has a server of its own, so each server's CPU is its caller's."""

    name: str
    key: tuple[str, str] | None
    server: ServerProcess


def _client(target: Target) -> Any:
    import boto3
    import botocore.config
    import botocore.session

    core = botocore.session.Session()
    core.set_config_variable("config_file", target.config_file)
    core.set_config_variable("credentials_file", target.credentials_file)
    session = boto3.Session(botocore_session=core, profile_name="opendeploy")
    if target.key is not None:  # the profile still gives endpoint and region; the user's key signs
        session = boto3.Session(
            botocore_session=core,
            profile_name="opendeploy",
            aws_access_key_id=target.key[0],
            aws_secret_access_key=target.key[1],
        )
    config = botocore.config.Config(retries={"max_attempts": 1}, max_pool_connections=1, read_timeout=120)
    return session.client("codedeploy", config=config)


def _client_process(job: Job, ready: Any, start: Any, results: Any) -> None:
    """A client: get ready, wait for the start signal, make its calls — item by item, one to each
    target, the first target taking turns — and report per target (ids created, latencies)."""
    clients = [_client(target) for target in job.targets]
    for client in clients:
        client.list_deployment_configs()  # interpreter warm, credentials read, connection open
    ready.put(True)
    start.wait()
    created: list[list[str]] = [[] for _ in clients]
    latencies: list[list[float]] = [[] for _ in clients]
    for index in range(len(job.items[0])):
        for turn in range(len(clients)):
            t = (index + turn) % len(clients)
            target, item = job.targets[t], job.items[t][index]
            began = time.perf_counter()
            if job.operation == "create_deployment":
                answer = clients[t].create_deployment(
                    applicationName=target.application, deploymentGroupName=item, revision=REVISION
                )
                created[t].append(answer["deploymentId"])
            else:
                clients[t].get_deployment(deploymentId=item)
            latencies[t].append((time.perf_counter() - began) * 1000)
    results.put((created, latencies))


def _measure(
    backend: str,
    callers: Sequence[Caller],
    operation: str,
    applications: Sequence[str],
    clients: int,
    items: Sequence[Sequence[str]],
) -> list[tuple[Result, list[str]]]:
    """Every caller's calls at once, paired call by call (``items[c]`` and ``applications[c]`` are
    caller ``c``'s): a result per caller, with the ids it created."""
    targets = tuple(
        Target(str(c.server.config_file), str(c.server.credentials_file), c.key, application)
        for c, application in zip(callers, applications, strict=True)
    )
    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    processes = []
    for index in range(clients):
        share = tuple(tuple(mine[index::clients]) for mine in items)
        process = context.Process(
            target=_client_process, args=(Job(operation, targets, share), ready, start, results)
        )
        process.start()
        processes.append(process)
    for _ in processes:
        ready.get(timeout=120)  # every client is ready before the clock starts
    cpu_before = [_cpu_seconds(c.server) for c in callers]
    start.set()
    created: list[list[str]] = [[] for _ in callers]
    latencies: list[list[float]] = [[] for _ in callers]
    for _ in processes:
        ids, times = results.get()
        for c in range(len(callers)):
            created[c] += ids[c]
            latencies[c] += times[c]
    cpu = [_cpu_seconds(c.server) - before for c, before in zip(callers, cpu_before, strict=True)]
    for process in processes:
        process.join()
    name = "CreateDeployment" if operation == "create_deployment" else "GetDeployment"
    measured = []
    for c, caller in enumerate(callers):
        if len(latencies[c]) != len(items[c]):
            raise RuntimeError(f"{caller.name} {name}: {len(latencies[c])} of {len(items[c])} calls answered")
        # The time its calls took, spread over the clients: its throughput as if it had them alone.
        seconds = sum(latencies[c]) / 1000 / clients
        result = Result(backend, caller.name, name, clients, len(items[c]), seconds, latencies[c], cpu[c])
        measured.append((result, created[c]))
    return measured


def _cpu_seconds(server: ServerProcess) -> float:
    """User + system CPU time of the server process so far (all its threads), from /proc."""
    assert server.process is not None
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _create_then_run(
    backend: str, callers: Sequence[Caller], applications: Sequence[str], clients: int, groups: Sequence[str]
) -> list[tuple[Result, list[str]]]:
    """Measure CreateDeployment with the engines held back, then let them all go at once and measure
    each one's run of what its caller created."""
    gates = [c.server.workdir / "engine-held" for c in callers]  # OPENDEPLOY_BENCH_ENGINE_GATE
    for gate in gates:
        gate.touch()
    try:
        measured = _measure(
            backend, callers, "create_deployment", applications, clients, [groups] * len(callers)
        )
    finally:
        before = [_cpu_seconds(c.server) for c in callers]
        for gate in gates:
            gate.unlink()
    with ThreadPoolExecutor(len(callers)) as pool:
        after = list(pool.map(_cpu_seconds_once_idle, [c.server for c in callers]))
    return [
        (dataclasses.replace(result, engine_cpu_seconds=done - began), ids)
        for (result, ids), began, done in zip(measured, before, after, strict=True)
    ]


def _cpu_seconds_once_idle(server: ServerProcess) -> float:
    """The server's CPU seconds (``_cpu_seconds``) once its engine is idle."""
    _wait_until_engine_idle(server)
    return _cpu_seconds(server)


def _wait_until_engine_idle(server: ServerProcess, timeout: float = 300.0) -> None:
    """Wait until no deployment is still to be started or running (the engine has caught up)."""
    client = server.client("codedeploy")
    deadline = time.monotonic() + timeout
    while client.list_deployments(includeOnlyStatuses=["Created", "Queued", "InProgress"])["deployments"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the engine did not finish the created deployments in time")
        time.sleep(0.2)


def _create_groups(server: ServerProcess, application: str, names: Sequence[str]) -> None:
    client = server.client("codedeploy", max_pool_connections=8)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda name: client.create_deployment_group(
                    applicationName=application, deploymentGroupName=name, serviceRoleArn=ROLE
                ),
                names,
            )
        )


def _statement(
    effect: str, actions: Any, resources: Any, condition: Any = None, *, negate: bool = False
) -> dict:
    statement: dict[str, Any] = {
        "Effect": effect,
        "NotAction" if negate else "Action": actions,
        "Resource": resources,
    }
    if condition:
        statement["Condition"] = condition
    return statement


def user_policies(region: str, account: str, prefix: str) -> tuple[list[dict], list[dict], list[dict]]:
    """The bench user's statements: (inline user policy, group inline policy, attached managed policy),
    20 in all, for applications named ``<prefix>*``."""
    cd = f"arn:aws:codedeploy:{region}:{account}"
    app, groups = f"{cd}:application:{prefix}*", f"{cd}:deploymentgroup:{prefix}*/*"
    local = {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}
    me = {"StringEquals": {"aws:username": USER}}
    inline = [
        _statement(
            "Allow", ["codedeploy:Get*", "codedeploy:List*", "codedeploy:BatchGet*"], [app, groups], local
        ),
        _statement("Allow", "codedeploy:CreateDeployment", groups, me),
        _statement("Allow", "codedeploy:GetDeploymentConfig", f"{cd}:deploymentconfig:*"),
        _statement(
            "Allow", ["codedeploy:GetApplicationRevision", "codedeploy:RegisterApplicationRevision"], app
        ),
        _statement("Allow", ["codedeploy:ListApplications", "codedeploy:ListDeploymentConfigs"], "*"),
        _statement("Allow", ["iam:GetUser", "iam:ListAccessKeys"], f"arn:aws:iam::{account}:user/{USER}"),
    ]
    group = [
        _statement("Deny", "codedeploy:*", [f"{cd}:application:prod-*", f"{cd}:deploymentgroup:prod-*/*"]),
        _statement("Deny", "codedeploy:*", [f"{cd}:application:billing", f"{cd}:deploymentgroup:billing/*"]),
        _statement(
            "Deny", "codedeploy:*", [f"{cd}:application:payments-*", f"{cd}:deploymentgroup:payments-*/*"]
        ),
        _statement("Deny", "codedeploy:Delete*", "*"),
        _statement("Deny", ["codedeploy:CreateDeploymentConfig", "codedeploy:DeleteDeploymentConfig"], "*"),
        _statement(
            "Deny",
            "codedeploy:*",
            "*",
            {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128", "10.0.0.0/8"]}},
        ),
        _statement("Deny", ["codedeploy:*", "iam:*", "cloudtrail:*"], "*", negate=True),
    ]
    managed = [
        _statement("Allow", "cloudtrail:LookupEvents", "*", me),
        _statement("Deny", "codedeploy:*", "*", {"Null": {"aws:SourceIp": "true"}}),
        _statement(
            "Deny", "codedeploy:*", "*", {"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}
        ),
        _statement("Deny", ["codedeploy:UpdateDeploymentGroup", "codedeploy:CreateDeploymentGroup"], "*"),
        _statement(
            "Deny", ["iam:*AccessKey*", "iam:*Policy*"], "*", {"StringNotEquals": {"aws:username": "admin"}}
        ),
        _statement("Deny", "codedeploy:*OnPremises*", "*", {"Bool": {"aws:MultiFactorAuthPresent": "false"}}),
        _statement("Allow", ["codedeploy:GetDeployment", "codedeploy:GetDeploymentInstance"], groups, local),
    ]
    return inline, group, managed


def create_user(server: ServerProcess, prefix: str) -> tuple[tuple[str, str], int]:
    """The bench IAM user with its group, policies and an access key: (key id, secret), statements."""
    iam = server.client("iam")
    inline, group, managed = user_policies(server.region, server.account_id, prefix)
    document = lambda statements: json.dumps({"Version": "2012-10-17", "Statement": statements})  # noqa: E731
    iam.create_user(UserName=USER)
    iam.put_user_policy(UserName=USER, PolicyName="bench-deploy", PolicyDocument=document(inline))
    iam.create_group(GroupName="bench-deployers")
    iam.put_group_policy(GroupName="bench-deployers", PolicyName="guardrails", PolicyDocument=document(group))
    iam.add_user_to_group(GroupName="bench-deployers", UserName=USER)
    arn = iam.create_policy(PolicyName="bench-boundaries", PolicyDocument=document(managed))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=USER, PolicyArn=arn)
    key = iam.create_access_key(UserName=USER)["AccessKey"]
    return (key["AccessKeyId"], key["SecretAccessKey"]), len(inline) + len(group) + len(managed)


def run_backend(
    backend: str, requests: int, callers: Sequence[Caller], repeat: int, concurrency: Sequence[int]
) -> list[Result]:
    results: list[Result] = []
    stamp = int(time.time())
    for clients in concurrency:
        for round_ in range(repeat):
            # An application per caller and turn: one holds at most 1,000 deployment groups.
            applications = [f"bench-{backend}-{c.name}-{clients}-{round_}-{stamp}" for c in callers]
            groups = [f"g{clients}-{n}" for n in range(requests)]
            for caller, application in zip(callers, applications, strict=True):
                caller.server.client("codedeploy").create_application(applicationName=application)
                _create_groups(caller.server, application, groups)
            # Every engine is idle after this, so GetDeployment is measured without their backlog.
            created = _create_then_run(backend, callers, applications, clients, groups)
            gets = [[ids[n % len(ids)] for n in range(requests)] for _, ids in created]
            fetched = _measure(backend, callers, "get_deployment", applications, clients, gets)
            results += [dataclasses.replace(r, round_=round_) for r, _ in (*created, *fetched)]
    return results


def print_table(results: Sequence[Result]) -> None:
    columns = f"{'backend':<11}{'caller':<7}{'operation':<18}{'clients':>8}{'requests':>10}"
    header = f"{columns}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms/req':>12}"
    print(header)
    print("-" * len(header))
    for r in sorted(results, key=lambda r: (r.backend, r.operation, r.clients, r.caller)):
        print(
            f"{r.backend:<11}{r.caller:<7}{r.operation:<18}{r.clients:>8}{r.requests:>10}{r.throughput:>10.1f}"
            f"{r.percentile(0.50):>9.1f}{r.percentile(0.99):>9.1f}{r.cpu_ms_per_request:>12.2f}"
        )


BASELINES = ("unchecked", "before")
RATIOS = (("user", "admin"), *((caller, base) for base in BASELINES for caller in CALLERS))
HOOKS = Path(__file__).resolve().parent / "server_hooks"  # its sitecustomize: checks off, engine gate


def print_ratios(results: Sequence[Result], target: float = 0.90) -> None:
    """Per backend, operation and clients: each caller's median throughput and the ratios between
    callers; then the same for the server's CPU time per request, as capacity (b's CPU / a's CPU), which
    a machine shared with other work disturbs far less than throughput."""
    _ratio_table(results, target, "throughput (req/s)", lambda r: r.throughput, higher_is_better=True)
    _ratio_table(results, target, "server CPU (ms/request)", lambda r: r.cpu_ms_per_request, False)
    creations = [r for r in results if r.operation == "CreateDeployment"]
    title = "server CPU with the engine's run (ms/deployment)"
    _ratio_table(creations, target, title, lambda r: r.cpu_ms_per_deployment, False)
    print("(* below target)")


def _ratio_table(
    results: Sequence[Result],
    target: float,
    title: str,
    metric: Callable[[Result], float],
    higher_is_better: bool,
) -> None:
    cells: dict[tuple[str, str, int], dict[str, dict[int, float]]] = {}
    for r in results:
        by_turn = cells.setdefault((r.backend, r.operation, r.clients), {}).setdefault(r.caller, {})
        by_turn[r.round_] = metric(r)
    callers = [name for name in (*CALLERS, *BASELINES) if any(name in by for by in cells.values())]
    ratios = [(a, b) for a, b in RATIOS if a in callers and b in callers]
    header = f"{'backend':<11}{'operation':<18}{'clients':>8}{'runs':>6}"
    header += "".join(f"{name:>10}" for name in callers)
    header += "".join(f"{a + '/' + b:>17}" for a, b in ratios)
    print()
    print(f"median {title}; ratios as capacity (median of each turn's ratio), target >= {target:.2f}")
    print(header)
    print("-" * len(header))
    for (backend, operation, clients), by_caller in sorted(cells.items()):
        medians = {name: statistics.median(values.values()) for name, values in by_caller.items()}
        runs = max(len(v) for v in by_caller.values())
        line = f"{backend:<11}{operation:<18}{clients:>8}{runs:>6}"
        line += "".join(f"{medians[name]:>10.2f}" if name in medians else f"{'-':>10}" for name in callers)
        for a, b in ratios:
            # Paired by turn: a machine whose load drifts slows both measurements of a turn alike.
            turns = sorted(set(by_caller.get(a, {})) & set(by_caller.get(b, {})))
            each = [
                by_caller[a][t] / by_caller[b][t] if higher_is_better else by_caller[b][t] / by_caller[a][t]
                for t in turns
                if by_caller[a][t] and by_caller[b][t]
            ]
            if each:
                value = statistics.median(each)
                line += f"{value:>15.3f}{'  ' if value >= target else ' *'}"
            else:
                line += f"{'-':>17}"
        print(line)


def _check_unchecked(server: ServerProcess) -> None:
    """Make sure the ``unchecked`` server does not authorize: a user without any policy gets in."""
    iam = server.client("iam")
    iam.create_user(UserName="bench-nobody")
    key = iam.create_access_key(UserName="bench-nobody")["AccessKey"]
    client = server.session().client(
        "codedeploy", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    try:
        client.list_applications()
    except Exception as error:
        raise RuntimeError(f"the unchecked server still authorizes ({error}): see bench/unchecked") from None


@contextlib.contextmanager
def baseline_source(ref: str) -> Iterator[Path]:
    """A git worktree of ``ref`` (removed afterwards): the source a ``before`` server runs from."""
    with tempfile.TemporaryDirectory(prefix="bench-api-baseline-") as parent:
        tree = Path(parent) / "tree"
        git = ["git", "-C", str(REPOSITORY)]
        subprocess.run([*git, "worktree", "add", "--detach", str(tree), ref], check=True, capture_output=True)
        try:
            yield tree / "src"
        finally:
            subprocess.run(
                [*git, "worktree", "remove", "--force", str(tree)], check=False, capture_output=True
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000, help="calls per operation and client count")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument(
        "--as",
        dest="callers",
        default=",".join(CALLERS),
        help="comma-separated callers measured in turn: admin (the profile's key), user (an IAM user)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also measure the administrator of a server run from this git commit (caller 'before')",
    )
    parser.add_argument(
        "--unchecked",
        action="store_true",
        help="also measure this code with authorization and audit switched off (caller 'unchecked')",
    )
    parser.add_argument("--clients", default="1,8,32", help="comma-separated concurrent client counts")
    parser.add_argument(
        "--repeat", type=int, default=1, help="measurements per caller, operation and client count"
    )
    args = parser.parse_args()
    names = [name.strip() for name in args.callers.split(",") if name.strip()]
    unknown = sorted(set(names) - set(CALLERS))
    if unknown or not names:
        parser.error(f"--as: expected admin and/or user, got {args.callers!r}")
    concurrency = [int(n) for n in args.clients.split(",") if n.strip()]
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        before_source = stack.enter_context(baseline_source(args.baseline)) if args.baseline else None
        for backend in args.backends.split(","):
            with contextlib.ExitStack() as servers:  # stopped before their databases are dropped
                databases = None
                if backend == "postgresql":
                    reason = unreachable_reason()
                    if reason:
                        print(f"skipping PostgreSQL: {reason}", file=sys.stderr)
                        continue
                    databases = Databases()
                    servers.callback(databases.drop_all)
                callers = _callers(backend, names, databases, before_source, args.unchecked, servers)
                results += run_backend(backend, args.requests, callers, args.repeat, concurrency)
    print_table(results)
    print_ratios(results)


def _start_server(
    backend: str,
    databases: Databases | None,
    name: str,
    source: Path | None,
    stack: contextlib.ExitStack,
    *,
    unchecked: bool = False,
) -> ServerProcess:
    """A server running the opendeploy package found in ``source`` (None: this checkout's), with the
    bench's hooks: its engine gate, and with ``unchecked`` no authorization nor audit."""
    url = databases.create(f"opendeploy_bench_{name}") if databases is not None else None
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-api-{backend}-{name}-")))
    env = {"OPENDEPLOY_BENCH_ENGINE_GATE": str(workdir / "engine-held")}
    if unchecked:
        env["OPENDEPLOY_BENCH_UNCHECKED"] = "1"
    server = ServerProcess(workdir, url, extra_env=env)
    stack.callback(server.stop)
    # In this process's environment, so ``opendeploy init`` (its migrations) runs that code too.
    path = [str(HOOKS), *([str(source)] if source is not None else [])]
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(path)
    try:
        server.start()
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = before
    return server


def _callers(
    backend: str,
    names: Sequence[str],
    databases: Databases | None,
    before_source: Path | None,
    unchecked: bool,
    stack: contextlib.ExitStack,
) -> list[Caller]:
    callers = []
    for name in names:
        server = _start_server(backend, databases, name, None, stack)
        if name == "user":
            key, statements = create_user(server, "bench-")
            print(f"{backend}: IAM user {USER}, {statements} policy statements", file=sys.stderr)
            callers.append(Caller("user", key, server))
        else:
            callers.append(Caller("admin", None, server))
    if unchecked:
        server = _start_server(backend, databases, "unchecked", None, stack, unchecked=True)
        _check_unchecked(server)
        callers.append(Caller("unchecked", None, server))
    if before_source is not None:
        callers.append(
            Caller("before", None, _start_server(backend, databases, "before", before_source, stack))
        )
    return callers


if __name__ == "__main__":
    main()

"""Benchmark: GetDeployment and CreateDeployment through boto3 against a real ``opendeploy server``.

Starts a server as a subprocess (the test harness's ``ServerProcess``: ``opendeploy init`` into a
temporary AWS profile, then ``opendeploy server``), on SQLite and on PostgreSQL (a throw-away database),
and measures with 1, 8 and 32 concurrent boto3 clients — each its own process, so the clients do not
share an interpreter lock — started together once every client is ready:

- CreateDeployment: every call deploys to its own deployment group (a group runs one deployment at a
  time), created beforehand; those groups have no instances, so the server's engine fails each
  deployment at once (NO_INSTANCES) — its work is part of the load, as it would be in production;
- GetDeployment: the deployments just created, round-robin.

Prints requests per second and p50 / p99 latency (milliseconds) per backend, operation and number of
clients. Quick run: ``--requests 200``. Run with the project's venv: ``.venv/bin/python bench/api.py``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Sequence
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


@dataclass
class Result:
    backend: str
    operation: str
    clients: int
    requests: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(frozen=True)
class Job:
    """One client's share: the operation and its arguments, one call per item."""

    config_file: str
    credentials_file: str
    operation: str  # create_deployment | get_deployment
    application: str
    items: tuple[str, ...]  # group names or deployment ids


def _client(job: Job) -> Any:
    import boto3
    import botocore.config
    import botocore.session

    core = botocore.session.Session()
    core.set_config_variable("config_file", job.config_file)
    core.set_config_variable("credentials_file", job.credentials_file)
    session = boto3.Session(botocore_session=core, profile_name="opendeploy")
    config = botocore.config.Config(retries={"max_attempts": 1}, max_pool_connections=1, read_timeout=120)
    return session.client("codedeploy", config=config)


def _client_process(job: Job, ready: Any, start: Any, results: Any) -> None:
    """A client: get ready, wait for the start signal, make its calls; report (ids, latencies)."""
    client = _client(job)
    client.list_deployment_configs()  # interpreter warm, credentials read, connection open
    ready.put(True)
    start.wait()
    created: list[str] = []
    latencies: list[float] = []
    for item in job.items:
        began = time.perf_counter()
        if job.operation == "create_deployment":
            answer = client.create_deployment(
                applicationName=job.application, deploymentGroupName=item, revision=REVISION
            )
            created.append(answer["deploymentId"])
        else:
            client.get_deployment(deploymentId=item)
        latencies.append((time.perf_counter() - began) * 1000)
    results.put((created, latencies))


def _measure(
    server: ServerProcess, backend: str, operation: str, application: str, clients: int, items: Sequence[str]
) -> tuple[Result, list[str]]:
    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    processes = []
    for index in range(clients):
        job = Job(
            str(server.config_file),
            str(server.credentials_file),
            operation,
            application,
            tuple(items[index::clients]),
        )
        process = context.Process(target=_client_process, args=(job, ready, start, results))
        process.start()
        processes.append(process)
    for _ in processes:
        ready.get(timeout=120)  # every client is ready before the clock starts
    began = time.perf_counter()
    start.set()
    created: list[str] = []
    latencies: list[float] = []
    for _ in processes:
        ids, times = results.get()
        created += ids
        latencies += times
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join()
    name = "CreateDeployment" if operation == "create_deployment" else "GetDeployment"
    return Result(backend, name, clients, len(items), elapsed, latencies), created


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


def run_backend(backend: str, server: ServerProcess, requests: int) -> list[Result]:
    results: list[Result] = []
    for clients in CONCURRENCY:
        # An application per client count: an application holds at most 1,000 deployment groups.
        application = f"bench-{backend}-{clients}-{int(time.time())}"
        server.client("codedeploy").create_application(applicationName=application)
        groups = [f"g{clients}-{n}" for n in range(requests)]
        _create_groups(server, application, groups)
        created, ids = _measure(server, backend, "create_deployment", application, clients, groups)
        gets = [ids[n % len(ids)] for n in range(requests)]
        fetched, _ = _measure(server, backend, "get_deployment", application, clients, gets)
        results += [created, fetched]
    return results


def print_table(results: Sequence[Result]) -> None:
    columns = f"{'backend':<11}{'operation':<18}{'clients':>8}{'requests':>10}"
    header = f"{columns}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.backend:<11}{r.operation:<18}{r.clients:>8}{r.requests:>10}{r.throughput:>10.1f}"
            f"{r.percentile(0.50):>9.1f}{r.percentile(0.99):>9.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000, help="calls per operation and client count")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    args = parser.parse_args()
    results: list[Result] = []
    for backend in args.backends.split(","):
        databases, url = None, None
        if backend == "postgresql":
            reason = unreachable_reason()
            if reason:
                print(f"skipping PostgreSQL: {reason}", file=sys.stderr)
                continue
            databases = Databases()
            url = databases.create("opendeploy_bench")
        with tempfile.TemporaryDirectory(prefix=f"bench-api-{backend}-") as workdir:
            server = ServerProcess(Path(workdir), url)
            try:
                server.start()
                results += run_backend(backend, server, args.requests)
            finally:
                server.stop()
                if databases is not None:
                    databases.drop_all()
    print_table(results)


if __name__ == "__main__":
    main()

"""Benchmark: a whole deployment, from CreateDeployment to Succeeded, to one host whose hooks are trivial.

Starts a real ``opendeploy server`` (the test harness's ``ServerProcess``, SQLite, or PostgreSQL with
``--postgres``), registers this machine with ``opendeploy register`` and runs a real ``opendeploy
agent`` process, uploads a small zip revision whose hooks (ApplicationStop, BeforeInstall,
AfterInstall, ApplicationStart, ValidateService) only ``exit 0``, then deploys it ``--runs`` times
(after ``--warmup`` unmeasured runs) and prints the median, the fastest and the slowest time from the
CreateDeployment call to the moment GetDeployment says Succeeded — next to the median time the same
five hook scripts take when run one after another on their own, which no deployment can beat.

Run with the project's venv: ``.venv/bin/python bench/e2e.py`` (target: median under 1 s).
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.postgres import Databases, unreachable_reason
from support.server import ServerProcess, clean_environment

HOOKS = ("ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")
TRIVIAL_HOOK = "#!/bin/sh\nexit 0\n"
ROLE = "arn:aws:iam::111122223333:role/CodeDeployServiceRole"


def revision_zip(destination: Path) -> bytes:
    lines = [
        "version: 0.0",
        "os: linux",
        "files:",
        "  - source: index.html",
        f"    destination: {destination}",
    ]
    lines.append("hooks:")
    for hook in HOOKS:
        lines += [f"  {hook}:", f"    - location: scripts/{hook}.sh", "      timeout: 60"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", "\n".join(lines) + "\n")
        archive.writestr("index.html", "<h1>bench</h1>\n")
        for hook in HOOKS:
            info = zipfile.ZipInfo(f"scripts/{hook}.sh")
            info.external_attr = 0o100755 << 16
            archive.writestr(info, TRIVIAL_HOOK)
    return buffer.getvalue()


def hooks_alone(workdir: Path, runs: int) -> float:
    """Median seconds to run the five trivial hook scripts one after another, nothing else."""
    script = workdir / "hook.sh"
    script.write_text(TRIVIAL_HOOK)
    script.chmod(0o755)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for _hook in HOOKS:
            subprocess.run([str(script)], check=True, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def start_agent(server: ServerProcess, workdir: Path) -> subprocess.Popen[bytes]:
    name = "bench-host"
    user_arn = f"arn:aws:iam::{server.account_id}:user/{name}"
    key_id, secret = server.store_access_key(user_arn, name)
    conf = workdir / "conf"
    register = subprocess.run(
        [
            sys.executable, "-m", "opendeploy", "register", "--instance-name", name,
            "--iam-user-arn", user_arn, "--access-key-id", key_id, "--secret-access-key", secret,
            "--tags", "Key=Name,Value=bench", "--config-dir", str(conf),
            "--root-dir", str(workdir / "deployment-root"), "--log-dir", str(workdir / "log"),
            "--pid-dir", str(workdir / "pid"), "--wait-between-runs", "0",
        ],
        env=server.env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if register.returncode != 0:
        raise SystemExit(f"opendeploy register failed: {register.stderr}")
    agent = subprocess.Popen(
        [sys.executable, "-m", "opendeploy", "agent", "--config", str(conf / "codedeployagent.yml")],
        env=clean_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = workdir / "log" / "codedeploy-agent.log"
    deadline = time.monotonic() + 30
    while "opendeploy agent started" not in (log.read_text() if log.exists() else ""):
        if agent.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the agent did not start; see {log}")
        time.sleep(0.05)
    return agent


def deploy_once(codedeploy: Any, revision: dict[str, Any]) -> float:
    started = time.perf_counter()
    deployment_id = codedeploy.create_deployment(
        applicationName="bench", deploymentGroupName="bench-group", revision=revision
    )["deploymentId"]
    while True:
        status = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"]
        if status == "Succeeded":
            return time.perf_counter() - started
        if status in ("Failed", "Stopped"):
            info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            raise SystemExit(f"deployment {deployment_id} {status}: {info}")
        if time.perf_counter() - started > 120:
            raise SystemExit(f"deployment {deployment_id} still {status} after 120 s")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--postgres", action="store_true", help="use a throw-away PostgreSQL database")
    args = parser.parse_args()

    databases = None
    with tempfile.TemporaryDirectory(prefix="opendeploy-bench-") as temporary:
        workdir = Path(temporary)
        database_url = None
        if args.postgres:
            reason = unreachable_reason()
            if reason:
                raise SystemExit(reason)
            databases = Databases()
            database_url = databases.create("opendeploy_bench")
        server = ServerProcess(workdir / "server", database_url)
        server.start()
        agent = None
        try:
            agent = start_agent(server, workdir / "host")
            codedeploy = server.client("codedeploy")
            s3 = server.client("s3")
            s3.create_bucket(Bucket="bench")
            etag = s3.put_object(Bucket="bench", Key="app.zip", Body=revision_zip(workdir / "www"))["ETag"]
            revision = {
                "revisionType": "S3",
                "s3Location": {
                    "bucket": "bench",
                    "key": "app.zip",
                    "bundleType": "zip",
                    "eTag": etag.strip('"'),
                },
            }
            codedeploy.create_application(applicationName="bench")
            codedeploy.create_deployment_group(
                applicationName="bench",
                deploymentGroupName="bench-group",
                serviceRoleArn=ROLE,
                onPremisesInstanceTagFilters=[{"Key": "Name", "Value": "bench", "Type": "KEY_AND_VALUE"}],
            )
            for _ in range(args.warmup):
                deploy_once(codedeploy, revision)
            times = [deploy_once(codedeploy, revision) for _ in range(args.runs)]
            hooks = hooks_alone(workdir, args.runs)
        finally:
            if agent is not None:
                agent.terminate()
                agent.wait(30)
            server.stop()
            if databases is not None:
                databases.drop_all()

    backend = "postgresql" if args.postgres else "sqlite"
    print(
        f"CreateDeployment -> Succeeded, one host, {len(HOOKS)} trivial hooks, {backend}, {args.runs} runs:"
    )
    print(f"  median {statistics.median(times) * 1000:7.1f} ms")
    print(f"  min    {min(times) * 1000:7.1f} ms")
    print(f"  max    {max(times) * 1000:7.1f} ms")
    print(f"  the {len(HOOKS)} hook scripts alone: median {hooks * 1000:7.1f} ms")


if __name__ == "__main__":
    main()

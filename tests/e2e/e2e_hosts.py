"""Simulated machines for end-to-end tests: each ``Host`` is one on-premises instance.

A host is a mount namespace of its own (``unshare --mount --propagation private``, held open by a small
holder process) with a private tmpfs over each of its "machine-local" directories — such as the
sample's ``/tmp/CodeDeployExample`` — so two hosts installing to the same absolute path behave like
two machines. Each host has its own agent files (``conf/``), ``root_dir``, ``log_dir`` and pid
directory, registers itself with ``opendeploy register`` and runs a real ``opendeploy agent`` process
inside its namespace, which tests can stop, ``kill -9`` and start again while the "machine" (the
namespace and its tmpfs) stays up. ``host.path("/tmp/CodeDeployExample/x")`` reads a file as that
host sees it (through ``/proc/<holder>/root``).

Needs root (mount namespaces); ``require_hosts()`` skips a test with the reason otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from support.server import ServerProcess, clean_environment, wait_for

SAMPLE_DESTINATION = "/tmp/CodeDeployExample"
AGENT_START_TIMEOUT = 30.0


def require_hosts() -> None:
    """Skip unless this process can make mount namespaces (root, with unshare and nsenter)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: each simulated host is a mount namespace with its own tmpfs")
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (util-linux) to simulate hosts")


class Host:
    """One simulated machine running ``opendeploy agent``."""

    def __init__(
        self,
        server: ServerProcess,
        name: str,
        workdir: Path,
        private_dirs: Sequence[str] = (SAMPLE_DESTINATION,),
    ) -> None:
        self.server = server
        self.name = name
        self.workdir = Path(workdir)
        self.private_dirs = list(private_dirs)
        self.conf_dir = self.workdir / "conf"
        self.root_dir = self.workdir / "deployment-root"
        self.log_dir = self.workdir / "log"
        self.pid_dir = self.workdir / "pid"
        self.agent_output = self.workdir / "agent.out"
        self.holder: subprocess.Popen[bytes] | None = None
        self.agent: subprocess.Popen[bytes] | None = None
        self.iam_user_arn: str | None = None

    # --- the machine ---------------------------------------------------------------------------------

    def boot(self) -> Host:
        """Create the namespace and mount a fresh tmpfs over each private directory."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for directory in self.private_dirs:
            os.makedirs(directory, exist_ok=True)  # the mount point, in the shared namespace
        script = (
            'set -e; for d in "$@"; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done; '
            "echo ready; exec sleep infinity"
        )
        self.holder = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "host",
                *self.private_dirs,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.holder.stdout is not None
        line = self.holder.stdout.readline().decode().strip()
        if line != "ready":
            error = self.holder.stderr.read().decode() if self.holder.stderr else ""
            raise AssertionError(f"host {self.name} did not boot: {line!r} {error}")
        return self

    def path(self, path: str | Path) -> Path:
        """``path`` as this host sees it."""
        assert self.holder is not None, "the host is not booted"
        return Path(f"/proc/{self.holder.pid}/root") / str(path).lstrip("/")

    def shutdown(self) -> None:
        """Kill the agent and the namespace (its tmpfs goes with it); print the end of the agent's log,
        which pytest shows when the test failed."""
        self.kill_agent()
        print(f"--- {self.name}: end of {self.log_dir / 'codedeploy-agent.log'}")
        print("\n".join(self.log_text().splitlines()[-40:]))
        if self.holder is not None and self.holder.poll() is None:
            os.killpg(self.holder.pid, signal.SIGKILL)
            self.holder.wait(10)

    # --- registration ----------------------------------------------------------------------------------

    def register_args(self) -> list[str]:
        return [
            "--instance-name",
            self.name,
            "--config-dir",
            str(self.conf_dir),
            "--root-dir",
            str(self.root_dir),
            "--log-dir",
            str(self.log_dir),
            "--pid-dir",
            str(self.pid_dir),
            "--wait-between-runs",
            "0",
        ]

    def opendeploy(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``opendeploy <args>`` with the server's administrator profile."""
        return subprocess.run(
            [sys.executable, "-m", "opendeploy", *args],
            env=self.server.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def register(self, *extra: str, tags: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
        """``opendeploy register`` for this host; fails the test if it fails."""
        args = ["register", *self.register_args(), *extra]
        for tag in tags:
            args += ["--tags", tag]
        result = self.opendeploy(*args)
        if result.returncode != 0:
            raise AssertionError(f"opendeploy register {self.name} failed:\n{result.stdout}\n{result.stderr}")
        match = re.search(r"as (arn:\S+)\.", result.stdout)
        self.iam_user_arn = match.group(1) if match else None
        return result

    @property
    def agent_config(self) -> Path:
        return self.conf_dir / "codedeployagent.yml"

    def configure(self, **keys: Any) -> None:
        """Add or replace ``:key: value`` lines in the agent configuration (e.g. shorter waits for tests)."""
        lines = [
            line
            for line in self.agent_config.read_text().splitlines()
            if not any(line.startswith(f":{key}:") for key in keys)
        ]
        lines += [f":{key}: {value}" for key, value in keys.items()]
        self.agent_config.write_text("\n".join(lines) + "\n")

    # --- the agent -----------------------------------------------------------------------------------

    def start_agent(self, *, wait: bool = True) -> subprocess.Popen[bytes]:
        """Start ``opendeploy agent`` inside this host's namespace."""
        assert self.holder is not None, "boot the host first"
        before = self.log_text().count("opendeploy agent started")
        with open(self.agent_output, "ab") as output:
            self.agent = subprocess.Popen(
                [
                    "nsenter",
                    f"--target={self.holder.pid}",
                    "--mount",
                    "--",
                    sys.executable,
                    "-m",
                    "opendeploy",
                    "agent",
                    "--config",
                    str(self.agent_config),
                    "--no-log-to-stderr",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=clean_environment(),
                cwd="/",
            )
        if wait:
            wait_for(
                lambda: self.log_text().count("opendeploy agent started") > before or self._agent_died(),
                timeout=AGENT_START_TIMEOUT,
                message=f"agent of {self.name} to start",
            )
            if self._agent_died():
                raise AssertionError(f"agent of {self.name} exited:\n{self.agent_output.read_text()}")
        return self.agent

    def _agent_died(self) -> bool:
        return self.agent is not None and self.agent.poll() is not None

    def kill_agent(self) -> None:
        """``kill -9`` the agent (its hook scripts, in their own sessions, live on as after a crash)."""
        if self.agent is not None and self.agent.poll() is None:
            self.agent.kill()
            self.agent.wait(10)

    def stop_agent(self, timeout: float = 60) -> int:
        """SIGTERM the agent and wait for it; its exit status."""
        assert self.agent is not None
        self.agent.send_signal(signal.SIGTERM)
        return self.agent.wait(timeout)

    def restart_agent(self) -> subprocess.Popen[bytes]:
        self.kill_agent()
        return self.start_agent()

    def log_text(self) -> str:
        log = self.log_dir / "codedeploy-agent.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        regex = re.compile(pattern)
        return wait_for(
            lambda: regex.search(self.log_text()),
            timeout=timeout,
            message=f"/{pattern}/ in {self.name}'s log",
        )


def wait_until(condition: Callable[[], Any], timeout: float = 60.0, message: str = "") -> Any:
    return wait_for(condition, timeout=timeout, interval=0.1, message=message)


def elapsed(since: float) -> float:
    return time.monotonic() - since

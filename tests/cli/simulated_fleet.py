"""Simulated agents (the command service tests' ``Agent``: the real command protocol through botocore)
working through a deployment in background threads, so a test can watch it with ``opendeploy``.

``FleetRun(server, deployment_id, agents, fail={name: event}, hold={name: event})``: each agent polls
for host commands and completes them; at ``fail[name]`` it reports a failed script with diagnostics, at
``hold[name]`` it acknowledges the command and waits for ``release(name)`` before completing it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from command_agents import Agent

from support.server import ServerProcess

FINISHED = {"Succeeded", "Failed", "Stopped"}
FAILED_SCRIPT = "scripts/install.sh"
FAILED_MESSAGE = "Script at specified location: scripts/install.sh failed with exit code 4"
FAILED_LOG = "[stdout]installing the app\n[stderr]disk full on /var/app\n"


class FleetRun:
    def __init__(
        self,
        server: ServerProcess,
        deployment_id: str,
        agents: Sequence[Agent],
        *,
        fail: Mapping[str, str] | None = None,
        hold: Mapping[str, str] | None = None,
    ) -> None:
        self.server = server
        self.deployment_id = deployment_id
        self.fail = dict(fail or {})
        self.hold = dict(hold or {})
        self.holding = {name: threading.Event() for name in self.hold}  # set when the agent waits
        self._released = {name: threading.Event() for name in self.hold}
        self._stop = threading.Event()
        self.errors: list[BaseException] = []
        self._threads = [threading.Thread(target=self._work, args=(agent,), daemon=True) for agent in agents]

    def start(self) -> FleetRun:
        for thread in self._threads:
            thread.start()
        return self

    def release(self, name: str) -> None:
        self._released[name].set()

    def _finished(self) -> bool:
        info = self.server.client("codedeploy").get_deployment(deploymentId=self.deployment_id)
        return info["deploymentInfo"]["status"] in FINISHED

    def _work(self, agent: Agent) -> None:
        try:
            while not self._stop.is_set():
                command = agent.poll()
                if not command:
                    if self._finished():
                        return
                    continue
                self._run(agent, command)
        except BaseException as error:  # reported by join()
            self.errors.append(error)

    def _run(self, agent: Agent, command: dict[str, Any]) -> None:
        event = command["CommandName"]
        if self.hold.get(agent.name) == event:
            agent.specification(command)
            agent.acknowledge(command)
            self.holding[agent.name].set()
            self._released[agent.name].wait(120)
            agent.complete(command)
            return
        if self.fail.get(agent.name) == event:
            agent.run(
                command,
                "Failed",
                error_code=4,  # the agent's code for a script that failed
                script_name=FAILED_SCRIPT,
                message=FAILED_MESSAGE,
                log=FAILED_LOG,
            )
            return
        agent.run(command)

    def join(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        for name in self._released:
            self._released[name].set()
        if self.errors:
            raise self.errors[0]
        assert not any(thread.is_alive() for thread in self._threads), "agents still working"

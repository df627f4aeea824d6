"""PollHostCommand is a long poll: held until a command is ready for the host, or ``{}`` after the hold."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
from command_agents import POLL_HOLD, create_fleet, wait_for_status

from support.server import ServerProcess


def test_an_idle_poll_answers_nothing_after_the_hold(command_server: ServerProcess) -> None:
    agent = create_fleet(command_server).add_instance()
    started = time.monotonic()
    assert agent.poll() is None
    elapsed = time.monotonic() - started
    assert POLL_HOLD * 0.9 <= elapsed < POLL_HOLD + 10, elapsed


def test_a_waiting_poll_returns_as_soon_as_a_command_is_ready(tmp_path: Path, server_factory: Any) -> None:
    server = server_factory("sqlite", extra_args=["--poll-hold", "30"])
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    result: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        result["command"] = agent.poll()
        result["returned"] = time.monotonic()
        result["elapsed"] = result["returned"] - started

    waiting = threading.Thread(target=poll)
    waiting.start()
    server.wait_for_polls_waiting(1)  # held: it waits 30 s if nothing comes
    created = time.monotonic()
    deployment_id = fleet.deploy()
    waiting.join(timeout=20)
    assert not waiting.is_alive()
    assert result["command"]["CommandName"] == "ApplicationStop"
    assert result["returned"] - created < 10.0, result  # woken, not waiting out the 30 s hold
    assert wait_for_status(server, deployment_id, {"InProgress"})


def test_many_idle_polls_wait_without_tying_up_the_server(server_factory: Any) -> None:
    """Long polls wait in the event loop, not in threads: while far more agents wait than the server has
    worker threads, the API still answers at once."""
    server = server_factory("sqlite", extra_args=["--poll-hold", "30"])
    fleet = create_fleet(server)
    agents = [fleet.add_instance() for _ in range(24)]
    results: list[Any] = []
    threads = [threading.Thread(target=lambda a=a: results.append(a.poll())) for a in agents]
    for thread in threads:
        thread.start()
    server.wait_for_polls_waiting(24)
    started = time.monotonic()
    server.client("codedeploy").list_applications()
    # Answered while all 24 polls are still held (a thread per poll would have used up the workers).
    assert time.monotonic() - started < 10.0
    assert httpx.get(f"{server.endpoint}/health").json()["agentPollsWaiting"] == 24
    server.stop()  # releases the polls: each answers {}
    for thread in threads:
        thread.join(timeout=30)
    assert results == [None] * 24


def test_server_shutdown_releases_waiting_polls(server_factory: Any) -> None:
    server = server_factory("sqlite", extra_args=["--poll-hold", "60"])
    agent = create_fleet(server).add_instance()
    result: dict[str, Any] = {}

    def poll() -> None:
        try:
            result["command"] = agent.poll()
        except Exception as error:  # a dropped connection would also end the wait; record what happened
            result["error"] = error

    waiting = threading.Thread(target=poll)
    waiting.start()
    server.wait_for_polls_waiting(1)
    started = time.monotonic()
    server.stop(timeout=20)
    waiting.join(timeout=20)
    assert time.monotonic() - started < 10  # not the 60 s hold
    assert result == {"command": None}  # answered {} rather than cut off

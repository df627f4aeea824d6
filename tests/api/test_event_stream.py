"""``GET /events``, the live Server-Sent Events stream, followed with ``curl -N --aws-sigv4`` as a user would,
against a real server and a real agent on a simulated host: a deployment's start, its instance's start and
success and its success arrive in order in the guide's EventBridge shapes; ``Last-Event-ID`` resumes across a
server restart without missing or repeating an event; a user allowed GetDeployment on one deployment group
sees that group's events only; filters narrow the stream; unsigned and badly signed requests get AWS's errors.

Needs root for the host's mount namespace (skipped with the reason otherwise).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS / "commands"))
sys.path.insert(0, str(TESTS / "e2e"))

from command_agents import FAST_ENGINE  # noqa: E402
from deploying import (  # noqa: E402
    bundle_bytes,
    create_group,
    register_host,
    start_hosts,
    upload,
    wait_for_deployment,
    write_revision,
)
from e2e_hosts import Host, require_hosts  # noqa: E402

from support.names import unique  # noqa: E402
from support.server import ServerProcess, wait_for  # noqa: E402


def _e2e_fixtures():  # type: ignore[no-untyped-def]
    # The end-to-end suite's conftest, loaded under its own name so its fixtures can be used here.
    spec = importlib.util.spec_from_file_location("e2e_fixtures_for_events", TESTS / "e2e" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_e2e = _e2e_fixtures()
hosts = _e2e.hosts
instance_key = _e2e.instance_key

STREAM_ARGS = [*FAST_ENGINE, "--event-stream-heartbeat", "0.5", "--event-stream-poll-interval", "0.2"]
APPSPEC = """version: 0.0
os: linux
files:
  - source: app.txt
    destination: /tmp/CodeDeployExample
"""
DEPLOYMENT_TYPE = "CodeDeploy Deployment State-change Notification"
INSTANCE_TYPE = "CodeDeploy Instance State-change Notification"


class Follower:
    """``curl -N --aws-sigv4 … /events`` running in the background; its events parsed as they arrive.

    ``query`` lists its parameters in alphabetical order: curl before 8.x signs the query as written,
    and SigV4's canonical query is sorted."""

    def __init__(
        self,
        server: ServerProcess,
        query: str = "",
        *,
        credentials: tuple[str, str] | None = None,
        last_event_id: int | None = None,
    ) -> None:
        access_key, secret = credentials or server.credentials()
        command = [
            "curl", "-sS", "-N", "--aws-sigv4", f"aws:amz:{server.region}:codedeploy",
            "--user", f"{access_key}:{secret}", f"{server.endpoint}/events{query}",
        ]  # fmt: skip
        if last_event_id is not None:
            command[-1:-1] = ["-H", f"Last-Event-ID: {last_event_id}"]
        self.events: list[dict[str, Any]] = []
        self.comments: list[str] = []
        self.raw: list[str] = []
        self._lock = threading.Lock()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        fields: dict[str, str] = {}
        for line in self.process.stdout:
            line = line.rstrip("\n")
            with self._lock:
                self.raw.append(line)
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                elif line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
                elif "data" in fields:
                    self.events.append(
                        {
                            "id": int(fields["id"]),
                            "event": fields["event"],
                            "data": json.loads(fields["data"]),
                        }
                    )
                    fields = {}
                else:
                    fields = {}

    def connected(self) -> Follower:
        """Wait until the server has taken the follower on (its first comment): every event committed
        from now on reaches it."""
        wait_for(lambda: "opendeploy event stream" in self.comments_now(), timeout=15, message="the stream")
        return self

    def comments_now(self) -> list[str]:
        with self._lock:
            return list(self.comments)

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def of(self, deployment_id: str) -> list[dict[str, Any]]:
        return [e for e in self.received() if e["data"]["detail"]["deploymentId"] == deployment_id]

    def wait_for_end_of(self, deployment_id: str, timeout: float = 60) -> list[dict[str, Any]]:
        """The deployment's events once its SUCCESS (or FAILURE/STOP) event has arrived."""

        def ended() -> list[dict[str, Any]] | None:
            events = self.of(deployment_id)
            ends = [
                e for e in events if e["event"] == "deployment" and e["data"]["detail"]["state"] != "START"
            ]
            return events if ends else None

        return wait_for(ended, timeout=timeout, message=f"the end of {deployment_id} in the stream")

    def close(self) -> str:
        """Hang up; what curl wrote to stderr."""
        if self.process.poll() is None:
            self.process.terminate()
        _, stderr = self.process.communicate(timeout=10)
        self._reader.join(10)
        return stderr


def curl_once(server: ServerProcess, path: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """One request with curl (no streaming), with its status line: ``-w`` adds it after the body."""
    return subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *extra, f"{server.endpoint}{path}"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def states(events: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["event"], e["data"]["detail"]["state"]) for e in events]


FULL_RUN = [
    ("deployment", "START"),
    ("instance", "START"),
    ("instance", "SUCCESS"),
    ("deployment", "SUCCESS"),
]


# --- a server, a host with a real agent, a revision ---------------------------------------------------


@pytest.fixture(scope="module")
def stream_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_hosts()
    process = ServerProcess(tmp_path_factory.mktemp("events-server"), extra_args=STREAM_ARGS)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def fleet(
    stream_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Host, str]]:
    """One registered host running its agent, tagged ``Name=<tag>``: (host, tag)."""
    tag = unique("events")
    host = Host(stream_server, unique("host"), tmp_path_factory.mktemp("events-host"))
    host.boot()
    try:
        register_host(host, lambda server, arn, name=None: server.store_access_key(arn, name), tag)
        start_hosts([host])
        yield host, tag
    finally:
        host.shutdown()


def revision(server: ServerProcess, directory: Path) -> dict[str, Any]:
    source = write_revision(directory, APPSPEC, {"app.txt": "the app\n"})
    location = upload(server, bundle_bytes(source, "tgz"), f"{unique('release')}.tgz")
    return {"revisionType": "S3", "s3Location": location}


def deploy(server: ServerProcess, application: str, group: str, revision: dict[str, Any]) -> str:
    deployment_id = server.client("codedeploy").create_deployment(
        applicationName=application,
        deploymentGroupName=group,
        revision=revision,
        fileExistsBehavior="OVERWRITE",  # several groups deploy the same file to the one host
    )["deploymentId"]
    assert wait_for_deployment(server, deployment_id)["status"] == "Succeeded"
    return deployment_id


# --- the tests ---------------------------------------------------------------------------------------


def test_curl_follows_a_deployment_live_in_the_guides_eventbridge_shapes(
    stream_server: ServerProcess, fleet: tuple[Host, str], tmp_path: Path
) -> None:
    host, tag = fleet
    application = unique("app")
    group = create_group(stream_server, application, tag)
    group_id = stream_server.client("codedeploy").get_deployment_group(
        applicationName=application, deploymentGroupName=group
    )["deploymentGroupInfo"]["deploymentGroupId"]
    follower = Follower(stream_server, f"?applicationName={application}").connected()
    try:
        deployment_id = deploy(stream_server, application, group, revision(stream_server, tmp_path))
        events = follower.wait_for_end_of(deployment_id)
        wait_for(lambda: "heartbeat" in follower.comments_now(), timeout=10, message="a heartbeat")
    finally:
        follower.close()

    assert states(events) == FULL_RUN
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    region, account = stream_server.region, stream_server.account_id
    app_arn = f"arn:aws:codedeploy:{region}:{account}:application:{application}"
    group_arn = f"arn:aws:codedeploy:{region}:{account}:deploymentgroup:{application}/{group}"
    started, instance_started, instance_succeeded, succeeded = (e["data"] for e in events)
    for event in (started, succeeded):
        assert event["detail-type"] == DEPLOYMENT_TYPE
        assert event["resources"] == [app_arn, group_arn]
        assert event["detail"] == {
            "instanceGroupId": group_id,
            "region": region,
            "application": application,
            "deploymentId": deployment_id,
            "state": event["detail"]["state"],
            "deploymentGroup": group,
        }
    instance_arn = stream_server.client("codedeploy").get_on_premises_instance(instanceName=host.name)[
        "instanceInfo"
    ]["instanceArn"]
    for event in (instance_started, instance_succeeded):
        assert event["detail-type"] == INSTANCE_TYPE
        assert event["resources"] == [instance_arn, group_arn, app_arn]
        assert event["detail"]["instanceId"] == host.name
        assert event["detail"]["deploymentId"] == deployment_id
        assert event["detail"]["instanceGroupId"] == group_id
    for event in (started, instance_started, instance_succeeded, succeeded):
        assert event["source"] == "aws.codedeploy" and event["version"] == "0"
        assert event["account"] == account and event["region"] == region
        assert event["time"].endswith("Z") and event["id"]
    assert len({event["id"] for event in (started, instance_started, instance_succeeded, succeeded)}) == 4


def test_a_user_sees_only_the_groups_it_may_get_and_filters_narrow_the_stream(
    stream_server: ServerProcess, fleet: tuple[Host, str], tmp_path: Path
) -> None:
    _, tag = fleet
    application = unique("app")
    mine, theirs = (
        create_group(stream_server, application, tag),
        create_group(stream_server, application, tag),
    )
    region, account = stream_server.region, stream_server.account_id
    iam = stream_server.client("iam")
    user = unique("watcher")
    iam.create_user(UserName=user)
    allow = {
        "Effect": "Allow",
        "Action": "codedeploy:GetDeployment",
        "Resource": f"arn:aws:codedeploy:{region}:{account}:deploymentgroup:{application}/{mine}",
    }
    iam.put_user_policy(
        UserName=user,
        PolicyName="watch-one-group",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    credentials = (key["AccessKeyId"], key["SecretAccessKey"])

    watcher = Follower(stream_server, credentials=credentials).connected()
    everything = Follower(stream_server, f"?applicationName={application}").connected()
    only_theirs = Follower(
        stream_server, f"?applicationName={application}&deploymentGroupName={theirs}"
    ).connected()
    by_deployment: Follower | None = None
    try:
        bundle = revision(stream_server, tmp_path)
        first = deploy(stream_server, application, mine, bundle)
        second = deploy(stream_server, application, theirs, bundle)
        by_deployment = Follower(stream_server, f"?after=0&deploymentId={second}")
        everything.wait_for_end_of(second)
        only_theirs.wait_for_end_of(second)
        watcher.wait_for_end_of(first)
        by_deployment.wait_for_end_of(second)
        # The watcher's stream has passed the second deployment's events by now (one hub hands out
        # both): a later event of its own group arrives after them.
        third = deploy(stream_server, application, mine, bundle)
        watcher.wait_for_end_of(third)
    finally:
        for follower in (watcher, everything, only_theirs, by_deployment):
            if follower is not None:
                follower.close()
    assert by_deployment is not None

    assert {e["data"]["detail"]["deploymentId"] for e in watcher.received()} == {first, third}
    assert states(watcher.of(first)) == FULL_RUN and states(watcher.of(third)) == FULL_RUN
    assert states(everything.of(first)) == FULL_RUN and states(everything.of(second)) == FULL_RUN
    assert {e["data"]["detail"]["deploymentGroup"] for e in only_theirs.received()} == {theirs}
    assert {e["data"]["detail"]["deploymentId"] for e in by_deployment.received()} == {second}
    assert states(by_deployment.received()) == FULL_RUN

    # Asking for a group it may not see by name is refused outright, as GetDeployment would be.
    refused = curl_once(
        stream_server,
        f"/events?applicationName={application}&deploymentGroupName={theirs}",
        "--aws-sigv4", f"aws:amz:{region}:codedeploy", "--user", f"{credentials[0]}:{credentials[1]}",
    )  # fmt: skip
    body, status = refused.stdout.rsplit("\n", 1)
    assert status == "400"
    error = json.loads(body)
    assert error["__type"] == "AccessDeniedException"
    assert "codedeploy:GetDeployment" in error["message"] and f"{application}/{theirs}" in error["message"]


def test_last_event_id_resumes_across_a_server_restart_without_missing_or_repeating(
    backend: str,
    server_factory: Callable[..., ServerProcess],
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    """On SQLite and PostgreSQL (where ids are numbered in commit order under a lock)."""
    server = server_factory(backend, extra_args=STREAM_ARGS)
    host = hosts(server)
    tag = unique("resume")
    register_host(host, instance_key, tag)
    start_hosts([host])
    application = unique("app")
    group = create_group(server, application, tag)
    bundle = revision(server, tmp_path)

    follower = Follower(server, f"?applicationName={application}").connected()
    first = deploy(server, application, group, bundle)
    seen = follower.wait_for_end_of(first)
    follower.close()
    last_seen = seen[-1]["id"]

    missed = deploy(server, application, group, bundle)  # nobody follows
    lingering = Follower(server).connected()  # an open stream does not hold the server's stop up
    server.restart()
    assert lingering.process.wait(timeout=10) is not None
    assert server.log_text().count("Application shutdown complete") == 1, "stopped, not killed"
    resumed = Follower(server, f"?applicationName={application}", last_event_id=last_seen).connected()
    try:
        resumed.wait_for_end_of(missed)
        after_restart = deploy(server, application, group, bundle)
        resumed.wait_for_end_of(after_restart)
    finally:
        resumed.close()
    everything = Follower(server, f"?after=0&applicationName={application}")
    try:
        everything.wait_for_end_of(after_restart)
    finally:
        everything.close()

    assert states(seen) == FULL_RUN
    got = resumed.received()
    assert [e["data"]["detail"]["deploymentId"] for e in got] == [missed] * 4 + [after_restart] * 4
    assert states(got) == FULL_RUN * 2
    assert [e["id"] for e in got] == [e["id"] for e in everything.received() if e["id"] > last_seen]
    assert [e["id"] for e in everything.received()] == sorted({e["id"] for e in everything.received()})
    assert len(everything.received()) == 12


def test_unsigned_badly_signed_and_malformed_requests_get_awss_errors(stream_server: ServerProcess) -> None:
    access_key, secret = stream_server.credentials()
    sigv4 = ["--aws-sigv4", f"aws:amz:{stream_server.region}:codedeploy"]

    def error(path: str, *extra: str) -> tuple[str, str]:
        result = curl_once(stream_server, path, *extra)
        body, status = result.stdout.rsplit("\n", 1)
        return status, json.loads(body)["__type"]

    assert error("/events") == ("400", "MissingAuthenticationTokenException")
    assert error("/events", *sigv4, "--user", f"{access_key}:{secret}x") == (
        "400",
        "InvalidSignatureException",
    )
    assert error("/events", *sigv4, "--user", f"AKIANOTAKEYATALL1234:{secret}") == (
        "400",
        "UnrecognizedClientException",
    )
    assert error(
        "/events", "--aws-sigv4", f"aws:amz:{stream_server.region}:s3", "--user", f"{access_key}:{secret}"
    )[1] in {"InvalidSignatureException", "IncompleteSignatureException"}
    assert error("/events?after=yesterday", *sigv4, "--user", f"{access_key}:{secret}") == (
        "400",
        "ValidationException",
    )
    assert error("/events?deploymentID=d-1", *sigv4, "--user", f"{access_key}:{secret}") == (
        "400",
        "ValidationException",
    )


def test_the_log_prunes_what_is_past_retention_and_never_reuses_an_id(tmp_path: Path) -> None:
    """The event log itself (no server): pruning deletes the events older than the cut-off, oldest
    first in batches, and a log pruned empty goes on numbering after the last id it ever gave (so a
    client's Last-Event-ID never names a newer event)."""
    from opendeploy.store import event_stream
    from opendeploy.store.db import Database

    database = Database(f"sqlite:///{tmp_path / 'events.db'}")
    database.migrate()

    def append(count: int, created_at: float) -> None:
        with database.transaction() as session:
            event_stream.append(
                session,
                [
                    event_stream.NewEvent("deployment", "d-TEST", "app", "group", "{}", created_at)
                    for _ in range(count)
                ],
            )

    def ids() -> list[int]:
        with database.transaction(write=False) as session:
            return [e.id for e in event_stream.read_after(session, 0)]

    append(25, created_at=1000.0)
    append(5, created_at=2000.0)
    assert ids() == list(range(1, 31))
    assert event_stream.prune(database, before=1500.0, batch=10) == 25
    assert ids() == list(range(26, 31))
    assert event_stream.prune(database, before=3000.0) == 5
    assert ids() == []
    append(1, created_at=4000.0)
    assert ids() == [31]
    with database.transaction() as session:
        event_stream.append(session, [event_stream.NewEvent("instance", "d-X", "a", "g", "{}", 5000.0)])
        session.rollback()  # a change rolled back takes its events with it
    assert ids() == [31]
    database.dispose()


def test_a_reader_following_the_log_misses_nothing_while_writers_commit_at_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Ids follow commit order, so reading "after the last id seen" over and over while several
    transactions append at once ends with every event (PostgreSQL: the numbering lock; SQLite: one
    writer)."""
    from opendeploy.store import event_stream
    from opendeploy.store.db import Database

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.db'}"
    else:
        url = request.getfixturevalue("postgres_databases").create()
    database = Database(url)
    database.migrate()
    writers, commits = 4, 60
    done = threading.Event()

    def write(writer: int) -> None:
        for commit in range(commits):
            with database.transaction() as session:
                event_stream.append(
                    session,
                    [event_stream.NewEvent("instance", "d-TEST", "app", "group", f"{writer}/{commit}", 1.0)],
                )

    seen: list[int] = []

    def follow() -> None:
        last = 0
        while True:
            finished = done.is_set()
            with database.transaction(write=False) as session:
                rows = event_stream.read_after(session, last)
            seen.extend(row.id for row in rows)
            last = rows[-1].id if rows else last
            if finished and not rows:
                return

    reader = threading.Thread(target=follow)
    reader.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join(30)
    with database.transaction(write=False) as session:
        everything = [row.id for row in event_stream.read_after(session, 0, limit=writers * commits + 1)]
    database.dispose()
    assert len(everything) == writers * commits
    assert seen == everything


def test_a_retention_of_0_turns_the_stream_off(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory(extra_args=["--event-stream-retention", "0"])
    access_key, secret = server.credentials()
    result = curl_once(
        server,
        "/events",
        "--aws-sigv4",
        f"aws:amz:{server.region}:codedeploy",
        "--user",
        f"{access_key}:{secret}",
    )
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "404"
    assert json.loads(body)["__type"] == "ResourceNotFoundException"
    assert "--event-stream-retention" in json.loads(body)["message"]

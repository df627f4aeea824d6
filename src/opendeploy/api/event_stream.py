"""``GET /events``: the live Server-Sent Events stream of deployment and instance state changes.

Each event of the event log (``store.event_stream``) goes out as

    id: <sequence id>
    event: deployment | instance
    data: <the EventBridge "CodeDeploy Deployment/Instance State-change Notification" event, one line>

to every follower allowed ``codedeploy:GetDeployment`` on the event's deployment group (the decision
GetDeployment itself gets: ``domain.codedeploy_permissions`` and ``api.authorization``, the caller's
policies read again every few seconds). ``?applicationName=``, ``?deploymentGroupName=`` and
``?deploymentId=`` narrow it; ``Last-Event-ID`` (what an EventSource sends when it reconnects) or
``?after=<id>`` resumes after an id, sending first what is still kept of what came since. A comment line
goes out every ``--event-stream-heartbeat`` seconds while nothing else does. The request is signed with
SigV4 for ``codedeploy`` like any API call (``curl --aws-sigv4 "aws:amz:<region>:codedeploy"``); a
refusal is the API's JSON error.

One ``EventHub`` per server reads the log for all followers: one query per wake-up, woken right after a
commit on this server that appended events and every ``--event-stream-poll-interval`` seconds otherwise
(events other replicas commit), and only while someone follows. Each follower keeps what the hub hands
it until it is written; one that falls too far behind (a client not reading) is dropped from the hand-outs
and reads the log itself from where it was, so a slow client costs the server a bounded amount of
memory. A client that disconnects ends its follower at once. The hub also prunes the log past its
retention, in small batches, off the request and engine paths.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from opendeploy.api import sigv4
from opendeploy.api.authorization import Caller, Principal, Refusal, SessionLookup, principal_for, refusal
from opendeploy.api.awsjson import check_headers_soon, error_response, incoming_headers
from opendeploy.api.errors import ApiError
from opendeploy.api.server_state import ServerState
from opendeploy.domain import codedeploy_permissions
from opendeploy.domain.ids import new_request_id
from opendeploy.domain.permissions import Scope as PermissionScope
from opendeploy.settings import Settings
from opendeploy.store import event_stream
from opendeploy.store.db import Database
from opendeploy.store.event_stream import LoggedEvent

log = logging.getLogger(__name__)

SIGNING_NAME = "codedeploy"
FILTERS = {
    "applicationName": "application_name",
    "deploymentGroupName": "deployment_group_name",
    "deploymentId": "deployment_id",
}
QUERY_PARAMETERS = frozenset({*FILTERS, "after"})
MAX_PENDING = 10_000  # events a follower may have waiting before it reads the log itself instead
POLICY_REFRESH = 5.0  # seconds a follower's policies are used before they are read again
RETRY_MS = 2000  # what an EventSource waits before reconnecting
_ANY_DEPLOYMENT = "d-events"  # the deployment whose group a permission is decided for (never looked up)


class EventHub:
    """Reads new events from the log once per wake-up and hands them to every follower."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.position = 0  # the highest id handed out (current while anyone follows)
        self._followers: set[Follower] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken = asyncio.Event()
        self._active = asyncio.Event()
        self._closing = asyncio.Event()
        self._subscribing = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifetime -------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Read for followers and prune the log for as long as the server serves."""
        self._loop = asyncio.get_running_loop()
        event_stream.on_commit(self.wake)
        restore = self._close_on_signals()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="opendeploy-event-stream"),
            asyncio.create_task(self._prune_loop(), name="opendeploy-event-log-pruning"),
        ]
        try:
            yield
        finally:
            self.close()
            event_stream.on_commit(None)
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            restore()

    def close(self) -> None:
        """End every stream (the server is stopping: it waits for open responses to end)."""
        self._call(self._closing.set)

    @property
    def closing(self) -> asyncio.Event:
        return self._closing

    def _close_on_signals(self) -> Callable[[], None]:
        """On SIGTERM/SIGINT, end the streams at once so the server's graceful stop does not wait for
        clients that never hang up (then let the previous handler do its work)."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            handler = signal.getsignal(sig)
            if not callable(handler):
                continue
            previous[sig] = handler

            def close(signum: int, frame: Any, handler: Callable[..., Any] = handler) -> None:
                self.close()
                handler(signum, frame)

            signal.signal(sig, close)

        def restore() -> None:
            for sig, handler in previous.items():
                with contextlib.suppress(ValueError):
                    signal.signal(sig, handler)

        return restore

    def _call(self, callback: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(callback)

    def wake(self) -> None:
        """Events were committed on this server (any thread): read them now, if anyone follows."""
        if self._followers:
            self._call(self._woken.set)

    # --- followers ------------------------------------------------------------------------------------

    async def subscribe(self) -> Follower:
        """A new follower, handed every event committed after ``follower.start``."""
        async with self._subscribing:
            if not self._followers:  # nobody followed: the hub has not been reading
                self.position = max(self.position, await anyio.to_thread.run_sync(self._last_id))
            follower = Follower(self.position)
            self._followers.add(follower)
            self._active.set()
        return follower

    def unsubscribe(self, follower: Follower) -> None:
        self._followers.discard(follower)

    @property
    def followers(self) -> int:
        return len(self._followers)

    # --- reading --------------------------------------------------------------------------------------

    def _last_id(self) -> int:
        with self.database.transaction(write=False) as session:
            return event_stream.last_id(session)

    def read(self, after: int, up_to: int | None = None) -> list[LoggedEvent]:
        """Events after ``after`` (up to ``up_to``) from the log (blocking: call from a worker thread)."""
        with self.database.transaction(write=False) as session:
            return event_stream.read_after(session, after, up_to)

    async def _read_loop(self) -> None:
        while True:
            if not self._followers:
                self._active.clear()
                await self._active.wait()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.settings.event_stream.poll_interval)
            self._woken.clear()
            try:
                while self._followers:
                    rows = await anyio.to_thread.run_sync(self.read, self.position)
                    self._hand_out(rows)
                    if len(rows) < event_stream.READ_LIMIT:
                        break
            except Exception:
                log.exception("reading the event log failed; trying again")
                await asyncio.sleep(self.settings.event_stream.poll_interval)

    def _hand_out(self, rows: Sequence[LoggedEvent]) -> None:
        fresh = [row for row in rows if row.id > self.position]
        if not fresh:
            return
        self.position = fresh[-1].id  # with the hand-out, in one step of the loop: no follower misses one
        for follower in list(self._followers):
            follower.push(fresh)

    # --- pruning --------------------------------------------------------------------------------------

    async def _prune_loop(self) -> None:
        retention = self.settings.event_stream.retention_hours * 3600.0
        if retention <= 0:
            return
        # Often enough that the log stays near its retention, rarely enough to cost nothing.
        interval = max(1.0, min(600.0, retention / 10.0))
        await asyncio.sleep(min(interval, 5.0))
        while True:
            try:
                pruned = await anyio.to_thread.run_sync(
                    event_stream.prune, self.database, time.time() - retention
                )
                if pruned:
                    log.info("event log: pruned %d event(s) older than %g h", pruned, retention / 3600)
            except Exception:
                log.exception("pruning the event log failed; trying again later")
            await asyncio.sleep(interval)


class Follower:
    """One client's place in the stream: the events handed to it and not yet written."""

    def __init__(self, start: int) -> None:
        self.start = start  # events after this id are handed to it
        self.pending: collections.deque[LoggedEvent] = collections.deque()
        self.overflowed = False  # too far behind: it reads the log itself (``stream``)
        self.arrived = asyncio.Event()

    def push(self, rows: Sequence[LoggedEvent]) -> None:
        if not self.overflowed:
            if len(self.pending) + len(rows) > MAX_PENDING:
                self.pending.clear()
                self.overflowed = True
            else:
                self.pending.extend(rows)
        self.arrived.set()


@dataclasses.dataclass(frozen=True)
class Filters:
    """What a client asked to see: exact names, any of which may be left open (None)."""

    application_name: str | None = None
    deployment_group_name: str | None = None
    deployment_id: str | None = None

    def matches(self, row: LoggedEvent) -> bool:
        return (
            (self.application_name is None or row.application_name == self.application_name)
            and (
                self.deployment_group_name is None or row.deployment_group_name == self.deployment_group_name
            )
            and (self.deployment_id is None or row.deployment_id == self.deployment_id)
        )


class Authorizer:
    """Which deployment groups' events one caller may see: GetDeployment on the group, decided as the API
    decides it, each group once per ``POLICY_REFRESH`` seconds (policies change, and time conditions)."""

    def __init__(self, database: Database, settings: Settings, caller: Caller) -> None:
        self.database = database
        self.scope = PermissionScope(settings.region, settings.account_id)
        self.caller = caller
        self._principal: Principal | None = None
        self._read_at = 0.0
        self._refusals: dict[tuple[str, str], Refusal | None] = {}  # None: allowed

    def _stale(self) -> bool:
        return self._principal is None or time.monotonic() - self._read_at > POLICY_REFRESH

    def _decide(self, groups: Iterable[tuple[str, str]]) -> None:
        with self.database.transaction(write=False) as session:
            if self._stale():
                self._principal = principal_for(session, self.caller, time.time())
                self._read_at = time.monotonic()
                self._refusals = {}
            principal = self._principal
            assert principal is not None
            lookup = SessionLookup(session)
            for application, group in groups:
                if (application, group) in self._refusals:
                    continue
                # GetDeployment's own requirements, for a deployment of this group.
                names = codedeploy_permissions.InMemoryLookup(
                    deployments={_ANY_DEPLOYMENT: (application, group)}
                )
                required = codedeploy_permissions.required(
                    "GetDeployment", {"deploymentId": _ANY_DEPLOYMENT}, self.scope, names
                )
                self._refusals[(application, group)] = refusal(
                    principal, required, None, lookup.resource_tags
                )

    async def allowed(self, groups: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those of ``groups`` whose events the caller may see."""
        if self._stale() or any(group not in self._refusals for group in groups):
            await anyio.to_thread.run_sync(self._decide, groups)
        return {group for group in groups if group in self._refusals and self._refusals[group] is None}

    async def refusal_of(self, application: str, group: str) -> str | None:
        """AWS's AccessDenied message if the caller may not see ``group``'s events, else None."""
        if await self.allowed({(application, group)}):
            return None
        refused = self._refusals.get((application, group))
        return refused.message(self.caller.arn) if refused is not None else None


def sse(row: LoggedEvent) -> str:
    """One event as the stream writes it (the body is JSON on one line)."""
    return f"id: {row.id}\nevent: {row.kind}\ndata: {row.body}\n\n"


async def stream(
    hub: EventHub,
    follower: Follower,
    after: int | None,
    filters: Filters,
    authorizer: Authorizer,
    heartbeat: float,
) -> AsyncIterator[str]:
    """What one client is sent, until it goes away or the server stops."""
    last = follower.start if after is None else after
    catch_up = last < follower.start
    yield f"retry: {RETRY_MS}\n: opendeploy event stream\n\n"

    async def render(rows: Sequence[LoggedEvent]) -> str:
        wanted = [row for row in rows if filters.matches(row)]
        if not wanted:
            return ""
        allowed = await authorizer.allowed({(r.application_name, r.deployment_group_name) for r in wanted})
        return "".join(
            sse(row) for row in wanted if (row.application_name, row.deployment_group_name) in allowed
        )

    while not hub.closing.is_set():
        if catch_up or follower.overflowed:
            # From the log: what came since ``last`` up to what the hub has handed out; what it hands
            # out from now on waits in ``pending``.
            follower.pending.clear()
            follower.overflowed = catch_up = False
            target = hub.position
            while last < target:
                rows = await anyio.to_thread.run_sync(hub.read, last, target)
                if not rows:
                    break
                text = await render(rows)
                if text:
                    yield text
                last = rows[-1].id
            continue
        if follower.pending:
            rows = [row for row in follower.pending if row.id > last]
            follower.pending.clear()
            if rows:
                text = await render(rows)
                if text:
                    yield text
                last = rows[-1].id
            continue
        follower.arrived.clear()
        closing = asyncio.ensure_future(hub.closing.wait())
        arrived = asyncio.ensure_future(follower.arrived.wait())
        try:
            done, _ = await asyncio.wait({closing, arrived}, timeout=heartbeat, return_when="FIRST_COMPLETED")
        finally:
            closing.cancel()
            arrived.cancel()
        if not done:
            yield ": heartbeat\n\n"


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` response that ends as soon as the client disconnects (Starlette's own
    would notice only at its next write, which uvicorn drops silently), then calls ``on_end``."""

    def __init__(
        self, chunks: AsyncIterator[str], headers: dict[str, str], on_end: Callable[[], None]
    ) -> None:
        super().__init__(chunks, status_code=200, headers=headers, media_type="text/event-stream")
        self.chunks = chunks
        self.on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                async for chunk in self.chunks:
                    await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()
        except OSError:
            pass  # the client went away mid-write
        finally:
            self.on_end()
            with contextlib.suppress(Exception):
                await self.chunks.aclose()  # type: ignore[attr-defined]


def _query(request: Request) -> tuple[Filters, int | None]:
    params = request.query_params
    unknown = sorted(set(params) - QUERY_PARAMETERS)
    if unknown:
        raise ApiError(
            "ValidationException",
            f"Unknown query parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(QUERY_PARAMETERS))}",
        )
    filters = Filters(**{FILTERS[name]: params[name] for name in FILTERS if params.get(name)})
    after_text = request.headers.get("last-event-id") or params.get("after")
    after = None
    if after_text is not None and after_text.strip():
        if not after_text.strip().isdigit():
            raise ApiError(
                "ValidationException", f"Last-Event-ID or after must be an event id, not {after_text!r}"
            )
        after = int(after_text.strip())
    return filters, after


class EventStream:
    """The ``GET /events`` route and the hub behind it."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.hub = EventHub(state.database, state.settings)

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.hub.running()

    async def handle(self, request: Request) -> Response:
        state = self.state
        settings = state.settings
        request_id = new_request_id()
        try:
            incoming = dataclasses.replace(incoming_headers(request), body=b"")
            checked = await check_headers_soon(
                incoming, signing_name=SIGNING_NAME, state=state, codes=sigv4.JSON_ERRORS
            )
            verified = await anyio.to_thread.run_sync(
                lambda: sigv4.verify(
                    incoming,
                    signing_name=SIGNING_NAME,
                    lookup=state.find_key,
                    regions=[settings.region],
                    checked=checked,
                )
            )
            if not settings.event_stream.enabled:
                raise ApiError(
                    "ResourceNotFoundException",
                    "The event stream is off on this server (--event-stream-retention 0)",
                    status=404,
                )
            filters, after = _query(request)
            key = verified.key
            caller = Caller(
                key.principal_arn,
                verified.access_key_id,
                request.client.host if request.client else None,
                request.url.scheme == "https",
                instance_name=key.instance_name,
            )
            authorizer = Authorizer(state.database, settings, caller)
            if filters.application_name and filters.deployment_group_name:
                refused = await authorizer.refusal_of(filters.application_name, filters.deployment_group_name)
                if refused is not None:
                    raise ApiError("AccessDeniedException", refused)
        except ApiError as error:
            log.info("GET /events -> %s: %s", error.code, error.message)
            return error_response(error, request_id)
        follower = await self.hub.subscribe()
        chunks = stream(self.hub, follower, after, filters, authorizer, settings.event_stream.heartbeat)
        headers = {
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: pass each event on at once
            "x-amzn-RequestId": request_id,
        }
        return EventStreamResponse(chunks, headers, lambda: self.hub.unsubscribe(follower))

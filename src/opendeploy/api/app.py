"""The server's ASGI application: one port, requests routed by ``X-Amz-Target`` prefix and by path.

``POST /`` goes to the awsJson service whose target prefix the ``X-Amz-Target`` header names
(CodeDeploy's API; CloudTrail's LookupEvents over the audit trail, ``api/cloudtrail``; the agent
command service, prefix ``CodeDeployCommandService_v20141006``, has its own asynchronous adapter in
``api/commands``);
``POST /service/<prefix>/operation/<Operation>`` is the same service in Smithy RPC v2 CBOR.
A ``POST /`` without ``X-Amz-Target`` and with a form-encoded body is IAM's Query protocol (``api/iam``).
Other protocols (the S3 REST API, the console, ``/metrics``, the ``GET /events`` stream) mount their own
routes.
``GET /health`` answers without authentication so supervisors and tests can tell the server is up.
Agents' requests (most of a busy server's) skip the framework: ``AgentRequests`` hands them to the
command service as plain ASGI before Starlette routes anything.

The S3 API (the bundle store) is path-style, ``/<bucket>[/<key>]`` and ``GET /``: its route claims
every path except ``POST /`` and those whose first segment ``api/s3/reserved.py`` reserves for the
server's own routes (``health``, ``metrics``, ``console``, ``agent`` …); add new top-level routes there.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import opendeploy.api.codedeploy
from opendeploy.api import awsjson, cloudtrail, rpcv2cbor
from opendeploy.api.codedeploy.registry import OPERATIONS
from opendeploy.api.commands.service import TARGET_PREFIX as COMMANDS_TARGET_PREFIX
from opendeploy.api.commands.service import CommandService
from opendeploy.api.errors import ApiError
from opendeploy.api.event_stream import EventStream
from opendeploy.api.iam.service import IamService, is_iam_request
from opendeploy.api.s3.routing import S3Route
from opendeploy.api.server_state import ServerState
from opendeploy.domain import codedeploy_permissions
from opendeploy.domain.ids import new_request_id
from opendeploy.runtime import EngineRuntime
from opendeploy.store.audit_trail import AuditTrail
from opendeploy.store.blob_store import blob_store_for

CODEDEPLOY = awsjson.JsonService(
    target_prefix="CodeDeploy_20141006",
    signing_name="codedeploy",
    operations=OPERATIONS,
    model_service_name="codedeploy",
    required=codedeploy_permissions.required,
    request_context=codedeploy_permissions.request_context,
)

JSON_SERVICES: list[awsjson.JsonService] = [CODEDEPLOY, cloudtrail.SERVICE]


def import_handlers() -> None:
    """Import every module of ``api/codedeploy`` so each registers its operations."""
    package = opendeploy.api.codedeploy
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


class AgentRequests:
    """ASGI middleware: ``POST /`` with a command-service ``X-Amz-Target`` goes straight to the command
    service; everything else to the application."""

    def __init__(self, app: ASGIApp, commands: CommandService) -> None:
        self.app = app
        self.commands = commands

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/":
            for name, value in scope["headers"]:
                if name == b"x-amz-target":
                    prefix, _, operation = value.decode("latin-1").partition(".")
                    if prefix == COMMANDS_TARGET_PREFIX and operation:
                        await self.commands.serve(scope, receive, send, operation)
                        return
                    break
        await self.app(scope, receive, send)


def create_app(state: ServerState) -> Starlette:
    import_handlers()
    services = {service.target_prefix: service for service in JSON_SERVICES}
    # The engine runs for the server's lifetime (wake bus, group commit, listener, worker); the agent
    # command service has its own asynchronous adapter (long polls wait without a thread) on its parts.
    runtime = EngineRuntime(state.database, state.settings)
    commands = CommandService(state, runtime)
    iam = IamService(state)
    # The audit trail's writer, JSON-lines export and expiry threads run for the server's lifetime.
    audit_trail = AuditTrail(
        state.database,
        state.settings.audit_dir,
        retention_days=state.settings.audit_retention_days,
        synchronous_commits=state.settings.audit_synchronous_commits,
    )
    commands.audit_trail = audit_trail
    # GET /events: the live stream of deployment and instance events (its hub reads the event log).
    events = EventStream(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        audit_trail.start()
        try:
            async with runtime.lifespan(), events.running():
                yield
        finally:
            await run_in_threadpool(audit_trail.stop)

    async def json_rpc(request: Request) -> Response:
        if is_iam_request(request):
            return await iam.handle(request)
        target = request.headers.get("x-amz-target", "")
        # At the last dot: CloudTrail's prefix has dots of its own ("com.amazonaws.cloudtrail…").
        prefix, _, operation = target.rpartition(".")
        service = services.get(prefix)
        if service is None or not operation:
            error = ApiError("UnknownOperationException", f"Unknown operation target {target!r}")
            return awsjson.error_response(error, new_request_id())
        return await awsjson.handle(request, service, state, operation)

    async def rpc_v2_cbor(request: Request) -> Response:
        service = services.get(request.path_params["service"])
        operation = request.path_params["operation"]
        codec = rpcv2cbor.CborCodec(service.model_service_name if service else None)
        if service is None:
            error = ApiError(
                "UnknownOperationException", f"Unknown service {request.path_params['service']!r}"
            )
            return awsjson.error_response(error, new_request_id(), codec, operation)
        return await awsjson.handle(request, service, state, operation, codec)

    async def health(_request: Request) -> Response:
        # How many agents' long polls are waiting for work now: a quick view of the connected fleet.
        return JSONResponse({"status": "ok", "agentPollsWaiting": commands.bus.waiting_hosts})

    blob_store = blob_store_for(state.settings.data_dir)
    blob_store.recover()  # before serving: drop what writes interrupted by a crash left behind

    app = Starlette(
        lifespan=lifespan,
        middleware=[Middleware(AgentRequests, commands=commands)],
        routes=[
            Route("/", json_rpc, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/service/{service}/operation/{operation}", rpc_v2_cbor, methods=["POST"]),
            Route("/agent/certificate", commands.certificate, methods=["GET"]),
            Route("/events", events.handle, methods=["GET"]),
            S3Route(state, blob_store),  # claims only what reserved.py leaves to buckets
        ],
    )
    app.state.server = state
    app.state.blob_store = blob_store
    app.state.audit_trail = audit_trail
    return app

"""Loading an AppSpec for a deployment's compute platform (the API's ``computePlatform``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, overload

from opendeploy.appspec.ecs_appspec import load_ecs_appspec
from opendeploy.appspec.lambda_appspec import load_lambda_appspec
from opendeploy.appspec.model import EcsAppSpec, LambdaAppSpec, ServerAppSpec
from opendeploy.appspec.server_appspec import load_server_appspec

COMPUTE_PLATFORMS = ("Server", "Lambda", "ECS")

APPSPEC_SIZE_LIMIT = 1024 * 1024
"""The largest AppSpec file read, in bytes (1 MiB): the server does not read a bigger one from a bundle, and
the agent refuses one by default. A real AppSpec is a few kilobytes; parsing a huge one is slow."""

AppSpec = ServerAppSpec | LambdaAppSpec | EcsAppSpec


@overload
def load_appspec(
    text: str,
    compute_platform: Literal["Server"],
    source_name: str = ...,
    *,
    custom_events: Iterable[str] = ...,
) -> ServerAppSpec: ...
@overload
def load_appspec(
    text: str,
    compute_platform: Literal["Lambda"],
    source_name: str = ...,
    *,
    custom_events: Iterable[str] = ...,
) -> LambdaAppSpec: ...
@overload
def load_appspec(
    text: str, compute_platform: Literal["ECS"], source_name: str = ..., *, custom_events: Iterable[str] = ...
) -> EcsAppSpec: ...
@overload
def load_appspec(
    text: str, compute_platform: str, source_name: str = ..., *, custom_events: Iterable[str] = ...
) -> AppSpec: ...
def load_appspec(
    text: str, compute_platform: str, source_name: str = "appspec.yml", *, custom_events: Iterable[str] = ()
) -> AppSpec:
    """Parse and check ``text`` as the AppSpec of a ``compute_platform`` deployment (Server, Lambda or ECS).

    ``custom_events`` applies to Server AppSpecs only (see ``load_server_appspec``).
    """
    if compute_platform == "Server":
        return load_server_appspec(text, source_name, custom_events=custom_events)
    if compute_platform == "Lambda":
        return load_lambda_appspec(text, source_name)
    if compute_platform == "ECS":
        return load_ecs_appspec(text, source_name)
    raise ValueError(
        f"compute_platform must be one of {', '.join(COMPUTE_PLATFORMS)}, got {compute_platform!r}"
    )

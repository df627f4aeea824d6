"""Typed AppSpec objects: what a parsed and validated AppSpec file says, for each compute platform.

These are plain frozen dataclasses with no I/O; ``opendeploy.appspec`` parsers build them and the
host install engine and the deployment engine read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FileExistsBehavior(StrEnum):
    """What Install does with a file already at a destination that the last deployment did not install."""

    DISALLOW = "DISALLOW"
    OVERWRITE = "OVERWRITE"
    RETAIN = "RETAIN"


DEFAULT_SCRIPT_TIMEOUT = 3600
"""Seconds a hook script may run when its entry names no ``timeout``."""


@dataclass(frozen=True)
class FileMapping:
    """One ``files`` entry: ``source`` (bundle-relative; ``/`` is all of it) copied into ``destination``."""

    source: str
    destination: str


@dataclass(frozen=True)
class SELinuxContext:
    """A ``permissions[].context`` entry: SELinux user, type and range labels."""

    type: str
    user: str | None = None
    range: str | None = None


@dataclass(frozen=True)
class Permission:
    """One ``permissions`` entry, with the guide's defaults filled in.

    ``mode`` keeps the octal digits exactly as written (``"0644"``, ``"644"``, ``"4755"``), never an int.
    ``types`` is the ``type`` list: ``("file",)``, ``("directory",)`` or both (the default).
    """

    object: str
    pattern: str = "**"
    except_: tuple[str, ...] = ()
    owner: str | None = None
    group: str | None = None
    mode: str | None = None
    acls: tuple[str, ...] = ()
    context: SELinuxContext | None = None
    types: tuple[str, ...] = ("file", "directory")


@dataclass(frozen=True)
class HookScript:
    """One script of a lifecycle event hook: where it is in the bundle, its timeout, and whom it runs as."""

    location: str
    timeout: int = DEFAULT_SCRIPT_TIMEOUT
    runas: str | None = None
    sudo: bool = False


@dataclass(frozen=True)
class ServerAppSpec:
    """An EC2/On-Premises AppSpec (``appspec.yml``)."""

    version: str
    os: str
    files: tuple[FileMapping, ...] = ()
    permissions: tuple[Permission, ...] = ()
    hooks: dict[str, tuple[HookScript, ...]] = field(default_factory=dict)
    file_exists_behavior: FileExistsBehavior | None = None
    source_name: str = "appspec.yml"

    def scripts_for(self, lifecycle_event: str) -> tuple[HookScript, ...]:
        """The scripts this AppSpec runs at ``lifecycle_event``, in order (empty if none)."""
        return self.hooks.get(lifecycle_event, ())

    def event_timeout(self, lifecycle_event: str) -> int:
        """Seconds all of ``lifecycle_event``'s scripts together may run: their timeouts' sum, at most 3600
        (guide L24624–L24629: 3600 s is the maximum script time for each lifecycle event)."""
        return min(MAX_EVENT_SECONDS, sum(script.timeout for script in self.scripts_for(lifecycle_event)))


MAX_EVENT_SECONDS = 3600
"""Seconds the scripts of one lifecycle event may run in all (guide L24624–L24629)."""

APPSPEC_VERSION = "0.0"
"""The only AppSpec ``version`` there is (guide L23172–L23175)."""


@dataclass(frozen=True)
class LambdaFunctionResource:
    """The Lambda function a Lambda AppSpec deploys: traffic on ``alias`` moves from one version to another.

    ``logical_name`` is the key the resource entry is written under (``myLambdaFunction`` in the guide).
    """

    logical_name: str
    name: str
    alias: str
    current_version: int
    target_version: int


@dataclass(frozen=True)
class LambdaAppSpec:
    """An AWS Lambda AppSpec: the function to deploy and the Lambda hook functions that validate it."""

    version: str
    function: LambdaFunctionResource
    hooks: dict[str, str] = field(default_factory=dict)
    """Lifecycle event name -> the hook function's name or ARN, in the order the file lists them."""
    source_name: str = "appspec.yml"

    def hook_function(self, lifecycle_event: str) -> str | None:
        """The function run at ``lifecycle_event``, if the AppSpec names one."""
        return self.hooks.get(lifecycle_event)


@dataclass(frozen=True)
class AwsVpcConfiguration:
    """An ECS service's ``NetworkConfiguration.AwsvpcConfiguration``: all three settings or none."""

    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    assign_public_ip: str
    """``ENABLED`` or ``DISABLED``."""


@dataclass(frozen=True)
class CapacityProviderStrategyItem:
    """A ``CapacityProviderStrategy`` entry: at least ``base`` tasks, then a ``weight`` share of the rest."""

    capacity_provider: str
    base: int = 0
    weight: int = 0


@dataclass(frozen=True)
class EcsServiceResource:
    """The Amazon ECS service an ECS AppSpec deploys (its ``TargetService`` resource)."""

    task_definition: str
    """Task definition ARN; without a ``:revision`` suffix ECS uses the latest ACTIVE revision."""
    container_name: str
    container_port: int
    platform_version: str = "LATEST"
    """Fargate platform version; ``LATEST`` when the AppSpec names none (guide L23658–L23660)."""
    network_configuration: AwsVpcConfiguration | None = None
    """None: keep the service's current network settings (guide L23674–L23679)."""
    capacity_provider_strategy: tuple[CapacityProviderStrategyItem, ...] = ()
    logical_name: str = "TargetService"


@dataclass(frozen=True)
class EcsAppSpec:
    """An Amazon ECS AppSpec: the service to deploy and the Lambda hook functions that validate it."""

    version: str
    target_service: EcsServiceResource
    hooks: dict[str, str] = field(default_factory=dict)
    """Lifecycle event name -> the hook function's name or ARN, in the order the file lists them."""
    source_name: str = "appspec.yml"

    def hook_function(self, lifecycle_event: str) -> str | None:
        """The function run at ``lifecycle_event``, if the AppSpec names one."""
        return self.hooks.get(lifecycle_event)

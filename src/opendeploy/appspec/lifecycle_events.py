"""The lifecycle event catalogue: which events each kind of deployment runs, in what order, which of them
accept hook scripts (or Lambda hook functions) and which are reserved for CodeDeploy itself, who runs each
(an agent, the server through a load balancer or the compute platform, a hook function), and from which
revision's AppSpec each event's scripts come.

Sources: the guide's hook lists and availability table (guide L24270–L24547), its run-order notes
(L24549–L24599), the Lambda and ECS hook sections (L24010–L24041, L24146–L24169, L1214–L1250), and
"Troubleshooting a failed ApplicationStop, BeforeBlockTraffic, or AfterBlockTraffic deployment lifecycle
event" (L26916–L26921). The run-order diagrams are images missing from the guide's text; where they leave
a gap the decision is recorded in tests/appspec/test_lifecycle_events.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# EC2/On-Premises events, in the order an in-place deployment behind a load balancer runs them.
BEFORE_BLOCK_TRAFFIC = "BeforeBlockTraffic"
BLOCK_TRAFFIC = "BlockTraffic"
AFTER_BLOCK_TRAFFIC = "AfterBlockTraffic"
APPLICATION_STOP = "ApplicationStop"
DOWNLOAD_BUNDLE = "DownloadBundle"
BEFORE_INSTALL = "BeforeInstall"
INSTALL = "Install"
AFTER_INSTALL = "AfterInstall"
APPLICATION_START = "ApplicationStart"
VALIDATE_SERVICE = "ValidateService"
BEFORE_ALLOW_TRAFFIC = "BeforeAllowTraffic"
ALLOW_TRAFFIC = "AllowTraffic"
AFTER_ALLOW_TRAFFIC = "AfterAllowTraffic"
# ECS only.
ALLOW_TEST_TRAFFIC = "AllowTestTraffic"
AFTER_ALLOW_TEST_TRAFFIC = "AfterAllowTestTraffic"

IN_PLACE = "IN_PLACE"
BLUE_GREEN = "BLUE_GREEN"
DEPLOYMENT_TYPES = (IN_PLACE, BLUE_GREEN)
ROLLBACK_CREATOR = "codeDeployRollback"
"""The API's ``deploymentInfo.creator`` of a deployment CodeDeploy made to roll another back."""

ORIGINAL = "original"
REPLACEMENT = "replacement"


class AppSpecSource(StrEnum):
    """Which revision's AppSpec (and deployment archive) an event's scripts come from on an instance."""

    NEW = "New"
    """The revision being deployed now."""
    LAST_SUCCESSFUL = "LastSuccessful"
    """The revision of the deployment group's last successful deployment to this instance, if any."""
    MOST_RECENT = "MostRecent"
    """The revision of the deployment group's most recent deployment to this instance, successful or not."""


class EventRunner(StrEnum):
    """Who runs a lifecycle event. Not the same as reserved: DownloadBundle and Install are reserved for
    CodeDeploy and still run by the agent on the instance."""

    AGENT = "Agent"
    """The instance's agent, as a host command (every EC2/On-Premises event but the two below)."""
    LOAD_BALANCER = "LoadBalancer"
    """The server, moving traffic: BlockTraffic and AllowTraffic (a load balancer; Lambda: the alias
    weights), ECS AllowTestTraffic."""
    HOOK_FUNCTION = "HookFunction"
    """A Lambda function the server invokes, answered by PutLifecycleEventHookExecutionStatus (Lambda and
    ECS hooks)."""
    PLATFORM = "Platform"
    """The server through the compute platform's API: ECS Install (the replacement task set)."""


@dataclass(frozen=True)
class LifecycleEvent:
    """One lifecycle event of a deployment.

    ``scriptable``: the AppSpec may attach hook scripts (EC2/On-Premises) or hook functions (Lambda, ECS) to
    it; otherwise CodeDeploy itself does the work and the event is reserved. ``runner``: who runs it.
    """

    name: str
    scriptable: bool
    appspec_source: AppSpecSource = AppSpecSource.NEW
    runner: EventRunner = EventRunner.AGENT

    @property
    def reserved(self) -> bool:
        """True for events run by CodeDeploy itself (DownloadBundle, Install, BlockTraffic, AllowTraffic…)."""
        return not self.scriptable


SERVER_ALL_EVENTS: tuple[str, ...] = (
    BEFORE_BLOCK_TRAFFIC,
    BLOCK_TRAFFIC,
    AFTER_BLOCK_TRAFFIC,
    APPLICATION_STOP,
    DOWNLOAD_BUNDLE,
    BEFORE_INSTALL,
    INSTALL,
    AFTER_INSTALL,
    APPLICATION_START,
    VALIDATE_SERVICE,
    BEFORE_ALLOW_TRAFFIC,
    ALLOW_TRAFFIC,
    AFTER_ALLOW_TRAFFIC,
)
"""Every EC2/On-Premises event, in run order (guide L24576–L24589: in-place behind a load balancer)."""

SERVER_RESERVED_EVENTS: frozenset[str] = frozenset({DOWNLOAD_BUNDLE, INSTALL, BLOCK_TRAFFIC, ALLOW_TRAFFIC})
"""Events reserved for CodeDeploy operations; they cannot run scripts (guide L24547)."""

SERVER_SCRIPTABLE_EVENTS: frozenset[str] = frozenset(SERVER_ALL_EVENTS) - SERVER_RESERVED_EVENTS
"""The nine events an EC2/On-Premises AppSpec may hook scripts to (guide L24270–L24362)."""

SERVER_ORDERED_EVENTS: tuple[str, ...] = tuple(
    event for event in SERVER_ALL_EVENTS if event not in (BLOCK_TRAFFIC, ALLOW_TRAFFIC)
)
"""The events an instance agent runs, in order: codedeploy-local's default list (the load balancer steps
BlockTraffic and AllowTraffic are done by CodeDeploy, not on the instance)."""

LAMBDA_ALL_EVENTS: tuple[str, ...] = (BEFORE_ALLOW_TRAFFIC, ALLOW_TRAFFIC, AFTER_ALLOW_TRAFFIC)
"""AWS Lambda deployment events in run order (guide L24146–L24169)."""
LAMBDA_HOOK_EVENTS: tuple[str, ...] = (BEFORE_ALLOW_TRAFFIC, AFTER_ALLOW_TRAFFIC)
"""Lambda events that run a hook function (guide L24150–L24154)."""

ECS_ALL_EVENTS: tuple[str, ...] = (
    BEFORE_INSTALL,
    INSTALL,
    AFTER_INSTALL,
    ALLOW_TEST_TRAFFIC,
    AFTER_ALLOW_TEST_TRAFFIC,
    BEFORE_ALLOW_TRAFFIC,
    ALLOW_TRAFFIC,
    AFTER_ALLOW_TRAFFIC,
)
"""Amazon ECS deployment events in run order (guide L1214–L1250)."""
ECS_HOOK_EVENTS: tuple[str, ...] = (
    BEFORE_INSTALL,
    AFTER_INSTALL,
    AFTER_ALLOW_TEST_TRAFFIC,
    BEFORE_ALLOW_TRAFFIC,
    AFTER_ALLOW_TRAFFIC,
)
"""ECS events that run a hook function (guide L24010–L24033)."""

_TRAFFIC_EVENTS = frozenset(
    {
        BEFORE_BLOCK_TRAFFIC,
        BLOCK_TRAFFIC,
        AFTER_BLOCK_TRAFFIC,
        BEFORE_ALLOW_TRAFFIC,
        ALLOW_TRAFFIC,
        AFTER_ALLOW_TRAFFIC,
    }
)
_BLOCK_TRAFFIC_EVENTS = (BEFORE_BLOCK_TRAFFIC, BLOCK_TRAFFIC, AFTER_BLOCK_TRAFFIC)
_ALLOW_TRAFFIC_EVENTS = (BEFORE_ALLOW_TRAFFIC, ALLOW_TRAFFIC, AFTER_ALLOW_TRAFFIC)
_INSTALL_EVENTS = (
    APPLICATION_STOP,
    DOWNLOAD_BUNDLE,
    BEFORE_INSTALL,
    INSTALL,
    AFTER_INSTALL,
    APPLICATION_START,
    VALIDATE_SERVICE,
)


def appspec_source(
    event: str, *, deployment_type: str = IN_PLACE, deployment_creator: str = "user"
) -> AppSpecSource:
    """The revision whose AppSpec and scripts ``event`` runs on an instance.

    ApplicationStop, BeforeBlockTraffic and AfterBlockTraffic run from the last successful revision, every
    other event from the new one (guide L26916–L26921): they stop and unhook what is running now, before the
    new revision is there. A blue/green rollback is the exception: its replacement instances block traffic
    to the revision they most recently received (the one being rolled back), and its original instances
    allow traffic again to the revision they last ran successfully.
    """
    if deployment_type not in DEPLOYMENT_TYPES:
        raise ValueError(
            f"deployment_type must be one of {', '.join(DEPLOYMENT_TYPES)}, got {deployment_type!r}"
        )
    if deployment_type == BLUE_GREEN and deployment_creator == ROLLBACK_CREATOR:
        if event in (BEFORE_BLOCK_TRAFFIC, AFTER_BLOCK_TRAFFIC):
            return AppSpecSource.MOST_RECENT
        if event in (APPLICATION_STOP, BEFORE_ALLOW_TRAFFIC, AFTER_ALLOW_TRAFFIC):
            return AppSpecSource.LAST_SUCCESSFUL
        return AppSpecSource.NEW
    if event in (APPLICATION_STOP, BEFORE_BLOCK_TRAFFIC, AFTER_BLOCK_TRAFFIC):
        return AppSpecSource.LAST_SUCCESSFUL
    return AppSpecSource.NEW


def server_events(
    *,
    deployment_type: str = IN_PLACE,
    load_balancer: bool = False,
    role: str | None = None,
    rollback: bool = False,
    scale_in: bool = False,
    scale_out: bool = False,
) -> tuple[LifecycleEvent, ...]:
    """The events an EC2/On-Premises deployment runs on one instance, in order.

    - In-place (and its rollback, guide L24545): ApplicationStop … ValidateService, with the six traffic
      events around them only when the deployment group has a load balancer (guide L24582–L24584).
    - Blue/green (``role`` "replacement" or "original"; a blue/green deployment always has a load balancer):
      replacement instances install and allow traffic, original instances block traffic; in a rollback
      (``rollback``) original instances allow traffic again and replacement instances block it
      (availability table, guide L24370–L24547).
    - ``scale_out``: an Auto Scaling launch deployment to a new instance: install, then allow traffic.
    - ``scale_in``: an Auto Scaling termination deployment: block traffic, then ApplicationStop
      (guide L2983–L2991); nothing is installed.
    """
    if deployment_type not in DEPLOYMENT_TYPES:
        raise ValueError(
            f"deployment_type must be one of {', '.join(DEPLOYMENT_TYPES)}, got {deployment_type!r}"
        )
    if scale_in and scale_out:
        raise ValueError(
            "a deployment is an Auto Scaling launch (scale_out) or termination (scale_in), not both"
        )
    if (scale_in or scale_out) and (rollback or deployment_type != IN_PLACE or role is not None):
        raise ValueError("Auto Scaling launch and termination deployments are in-place, without a role")
    creator = ROLLBACK_CREATOR if rollback else "user"
    if deployment_type == IN_PLACE:
        if role is not None:
            raise ValueError("role applies to blue/green deployments only")
        if scale_in:
            names: tuple[str, ...] = (*_BLOCK_TRAFFIC_EVENTS, APPLICATION_STOP)
            creator = "autoscalingTermination"
        elif scale_out:
            names = (*_INSTALL_EVENTS, *_ALLOW_TRAFFIC_EVENTS)
            creator = "autoscaling"
        else:
            names = SERVER_ALL_EVENTS
        if not load_balancer:
            names = tuple(name for name in names if name not in _TRAFFIC_EVENTS)
    else:
        if role not in (ORIGINAL, REPLACEMENT):
            raise ValueError(
                f"a blue/green deployment needs role {ORIGINAL!r} or {REPLACEMENT!r}, got {role!r}"
            )
        if rollback:
            names = _ALLOW_TRAFFIC_EVENTS if role == ORIGINAL else _BLOCK_TRAFFIC_EVENTS
        else:
            names = _BLOCK_TRAFFIC_EVENTS if role == ORIGINAL else (*_INSTALL_EVENTS, *_ALLOW_TRAFFIC_EVENTS)
    return tuple(
        LifecycleEvent(
            name,
            name in SERVER_SCRIPTABLE_EVENTS,
            appspec_source(name, deployment_type=deployment_type, deployment_creator=creator),
            event_runner(SERVER, name),
        )
        for name in names
    )


def blue_green_role_order(*, rollback: bool = False) -> tuple[str, str]:
    """Which instances of a blue/green deployment go first.

    A deployment installs on the replacement instances and then blocks traffic to the original ones
    (guide L24591–L24599). The guide does not order a rollback; traffic goes back to the original instances
    before it is blocked on the replacements, so the application keeps serving throughout.
    """
    return (ORIGINAL, REPLACEMENT) if rollback else (REPLACEMENT, ORIGINAL)


def lambda_events() -> tuple[LifecycleEvent, ...]:
    """An AWS Lambda deployment's events, in order; the two around AllowTraffic run hook functions."""
    return tuple(
        LifecycleEvent(name, name in LAMBDA_HOOK_EVENTS, runner=event_runner(LAMBDA, name))
        for name in LAMBDA_ALL_EVENTS
    )


def ecs_events(*, test_listener: bool = True) -> tuple[LifecycleEvent, ...]:
    """An Amazon ECS deployment's events, in order.

    Without a test listener there is no test traffic to allow, and the AfterAllowTestTraffic hook is ignored
    (guide L24982–L24983), so both test-traffic events are left out.
    """
    names = ECS_ALL_EVENTS
    if not test_listener:
        names = tuple(name for name in names if name not in (ALLOW_TEST_TRAFFIC, AFTER_ALLOW_TEST_TRAFFIC))
    return tuple(
        LifecycleEvent(name, name in ECS_HOOK_EVENTS, runner=event_runner(ECS, name)) for name in names
    )


# Compute platforms as the API names them (``domain.deployment_config.ComputePlatform``'s values).
SERVER = "Server"
LAMBDA = "Lambda"
ECS = "ECS"
_SERVER_RUNNERS = {BLOCK_TRAFFIC: EventRunner.LOAD_BALANCER, ALLOW_TRAFFIC: EventRunner.LOAD_BALANCER}
_LAMBDA_RUNNERS = {ALLOW_TRAFFIC: EventRunner.LOAD_BALANCER}
_ECS_RUNNERS = {
    INSTALL: EventRunner.PLATFORM,
    ALLOW_TEST_TRAFFIC: EventRunner.LOAD_BALANCER,
    ALLOW_TRAFFIC: EventRunner.LOAD_BALANCER,
}


def event_runner(compute_platform: str, event: str) -> EventRunner:
    """Who runs ``event`` in a deployment on ``compute_platform`` (Server, Lambda or ECS)."""
    if compute_platform == SERVER:
        return _SERVER_RUNNERS.get(event, EventRunner.AGENT)
    if compute_platform == LAMBDA:
        return _LAMBDA_RUNNERS.get(event, EventRunner.HOOK_FUNCTION)
    if compute_platform == ECS:
        return _ECS_RUNNERS.get(event, EventRunner.HOOK_FUNCTION)
    raise ValueError(f"compute_platform must be Server, Lambda or ECS, got {compute_platform!r}")

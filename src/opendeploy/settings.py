"""Server settings: where data lives, which region and account the ARNs name, quotas and timeouts.

One frozen dataclass built by the CLI from flags and environment; every layer reads it, none writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Quotas:
    """Limits from the guide's quotas table; configurable because self-hosted fleets differ."""

    applications_per_account: int = 1000
    deployment_groups_per_application: int = 1000
    custom_deployment_configs_per_account: int = 50
    instances_per_deployment: int = 10000
    concurrent_deployments_per_account: int = 1000
    tags_per_resource: int = 50
    batch_get_items: int = 100
    github_tokens_per_account: int = 25
    tags_per_on_premises_instance: int = 10
    # Per deployment group (guide quotas table; all adjustable there).
    alarms_per_deployment_group: int = 20
    triggers_per_deployment_group: int = 10
    auto_scaling_groups_per_deployment_group: int = 10


@dataclass(frozen=True)
class EngineSettings:
    """The deployment engine's deadlines and pacing (seconds); tests shorten them.

    The defaults are the guide's: an instance's lifecycle event must be picked up by its agent within
    5 minutes and may run for up to an hour (troubleshooting, L27516–27529).
    """

    event_start_timeout: float = 300.0  # an event's host command not picked up by the agent: fail it
    event_timeout: float = 3600.0  # an event running longer than this fails (when its scripts' are unknown)
    event_timeout_grace: float = 60.0  # added to the sum of an event's script timeouts, when known
    poll_hold: float = 40.0  # how long PollHostCommand waits for a command before answering {}
    # A command handed out but never acknowledged (the poll's answer was lost: the server died, the
    # agent restarted) is handed out again at the host's next poll after this long, under a new
    # identifier: the first hand-out acknowledged runs, so a slow acknowledgement costs a few requests,
    # never a second run. Agents acknowledge within moments; waiting this long spares them the repeat.
    redelivery_after: float = 5.0
    sweep_interval: float = 5.0  # the engine looks for due work at least this often, woken or not
    # Fleet orchestration (issue 5). An instance's zone, for zonal configurations, is the value of this
    # instance tag: on-premises instances have no EC2 Availability Zone, so users tag them with one.
    zone_tag_key: str = "AvailabilityZone"
    # An instance registered or tagged into a group that has a successful revision gets it by itself
    # (creator autoscaling), as AWS does for Auto Scaling launches; off: only the next user deployment.
    deploy_to_new_instances: bool = True
    # A step of the engine that raises (advancing a deployment, firing a timer) is tried again after
    # ``step_retry_base`` seconds, doubling each time up to ``step_retry_cap``; the ``step_max_attempts``-th
    # failure in a row is final: the deployment ends Failed with INTERNAL_ERROR (``engine.reconciler``).
    # With the defaults a step is given up about 20 minutes after it first failed.
    step_retry_base: float = 5.0
    step_retry_cap: float = 300.0
    step_max_attempts: int = 10
    # A blue/green deployment that copies an Auto Scaling group (COPY_AUTO_SCALING_GROUP) waits this long
    # for every instance of the copy to be in service and registered under its EC2 instance id, looking
    # every ``provision_poll_interval`` seconds (one DescribeAutoScalingGroups each time).
    provision_wait: float = 3600.0
    provision_poll_interval: float = 10.0


@dataclass(frozen=True)
class TrafficSettings:
    """How the server drives load balancers in BlockTraffic and AllowTraffic (``engine/traffic``).

    A deployment group's ``loadBalancerInfo`` names them: a target group called ``haproxy:<backend>``
    is that backend of the HAProxy whose runtime API is ``haproxy_socket``; any other target group name
    is an ELBv2 target group and an ``elbInfoList`` name a Classic ELB, reached through the standard AWS
    SDK configuration (``integrations/aws_clients``). An instance is known to them by the value of its
    ``target_tag_key`` tag, else by its name (HAProxy's server name; ELBv2's target id, ``ip[:port]`` or
    an instance id; Classic ELB's instance id).
    """

    haproxy_socket: str | None = None  # unix:/path, /path or host:port; None: no HAProxy
    # The longest BlockTraffic waits for a server's connections to end before maintenance (HAProxy has
    # no deregistration delay of its own; ELB's is the target group's attribute).
    haproxy_deregistration_delay: float = 300.0
    haproxy_check_interval: float = 2.0  # HAProxy does not expose ``inter``: for the expected time only
    # How long AllowTraffic waits for an instance to be reported healthy (the guide's hour, L3339).
    health_wait: float = 3600.0
    poll_interval: float = 1.0  # how often the server looks at a load balancer during those steps
    # How often an instance BlockTraffic took out is checked to be still out until its AllowTraffic (an
    # HAProxy reload forgets runtime state): a reload is rare, and AWS limits API call rates.
    hold_interval: float = 10.0
    target_tag_key: str = "opendeploy:lb-target"
    # What makes a deployment's load balancers from its loadBalancerInfo; None: the real ones
    # (``integrations.load_balancers.load_balancers_for``). In-process engine tests give fakes here.
    load_balancers: Callable[[Any, TrafficSettings], dict[str, Any]] | None = field(
        default=None, compare=False
    )


@dataclass(frozen=True)
class AlarmSettings:
    """Where the server reads the alarms of deployment groups' alarm configurations, and how often.

    An alarm name is read by its prefix (``integrations/alarms``): ``prometheus:<alert>[{labels}]`` is
    an alerting rule of the Prometheus at ``prometheus_url`` (or, when ``alertmanager_url`` is set, that
    Alertmanager's alerts), ``promql:<expression>`` an instant query of that Prometheus, and any other
    name (or ``cloudwatch:<name>``) a CloudWatch alarm, read with DescribeAlarms through the standard
    AWS SDK configuration (``integrations/aws_clients``).

    The guide gives no polling cadence. Every ``poll_interval`` seconds while a deployment is active
    (and at every lifecycle event boundary, zone wait and traffic-shift step): CloudWatch alarms and
    Prometheus rules usually evaluate once a minute, so half of that adds at most 30 s (15 s on
    average) to the time the source itself takes, at one DescribeAlarms per deployment per 30 s.
    """

    prometheus_url: str | None = None  # e.g. http://127.0.0.1:9090; None: no prometheus:/promql: alarms
    alertmanager_url: str | None = None  # e.g. http://127.0.0.1:9093; prometheus: alarms read from it
    poll_interval: float = 30.0
    request_timeout: float = 10.0  # each HTTP request to Prometheus or Alertmanager
    # What reads alarms, for in-process engine tests (an ``AlarmSource``, e.g. ``FakeAlarmSource``);
    # None: the real sources by name (``integrations.alarms.read_alarms``).
    source: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class Webhook:
    """A URL every deployment and instance state-change event is POSTed to, signed with ``secret``
    (``integrations/notifications``: ``X-Opendeploy-Signature: sha256=<HMAC-SHA256 of the body>``)."""

    url: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class NotificationSettings:
    """Where notifications go besides deployment groups' SNS triggers, and how hard the server tries.

    Every notification goes through the outbox (``store.outbox``) and is delivered at least once by
    ``integrations/outbox_delivery``: a failed send is retried after ``retry_base`` seconds, doubling up
    to ``retry_cap``, and given up (kept, with its error) after ``max_attempts`` failures or ``max_age``
    seconds. EventBridge events go to ``event_bus`` (a name or ARN; None: none) with PutEvents as
    ``event_source``: EventBridge refuses ``aws.*`` sources from PutEvents, so rules match this one;
    webhooks receive the same events with the guide's source ``aws.codedeploy``.
    """

    event_bus: str | None = None
    event_source: str = "opendeploy.codedeploy"
    webhooks: tuple[Webhook, ...] = ()
    retry_base: float = 5.0
    retry_cap: float = 600.0
    max_attempts: int = 20
    max_age: float = 86400.0
    send_timeout: float = 10.0  # one webhook request (connect, then each read or write)
    poll_interval: float = 2.0  # the delivery worker looks for due notifications at least this often
    # What sends notifications, for in-process tests (a mapping of outbox kind to ``NotificationSender``);
    # None: SNS, EventBridge and webhooks for real (``integrations.notifications.senders_for``).
    senders: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class EventStreamSettings:
    """The event log behind ``GET /events`` (``store.event_stream``, ``api.event_stream``): every
    deployment and instance state-change event is kept ``retention_hours`` (0: no log, no stream);
    followers get a comment every ``heartbeat`` seconds, and rows other replicas commit are looked for
    every ``poll_interval`` seconds (this server's own commits wake followers at once)."""

    retention_hours: float = 24.0
    heartbeat: float = 15.0
    poll_interval: float = 1.0

    @property
    def enabled(self) -> bool:
        return self.retention_hours > 0


@dataclass(frozen=True)
class Settings:
    """Everything ``opendeploy server`` needs to know at start."""

    data_dir: Path
    database_url: str | None = None  # None: SQLite in data_dir
    host: str = "127.0.0.1"
    port: int = 8480
    region: str = "us-east-1"
    account_id: str = "000000000000"
    quotas: Quotas = field(default_factory=Quotas)
    page_size: int = 100  # most items one List* call returns before handing back a nextToken
    engine: EngineSettings = field(default_factory=EngineSettings)
    traffic: TrafficSettings = field(default_factory=TrafficSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    alarms: AlarmSettings = field(default_factory=AlarmSettings)
    event_stream: EventStreamSettings = field(default_factory=EventStreamSettings)
    # The audit trail (store.audit_trail) keeps events this many days (0: forever); they are also
    # written to JSON-lines files under data_dir/audit, deleted after the same time.
    audit_retention_days: float = 90.0
    # Whether each audit commit waits for the disk; without, events survive a crash of the server
    # process at once and one of the machine from the next synced commit on (store.audit_trail).
    audit_synchronous_commits: bool = False
    # Which of the agents' command-service requests go on the audit trail: "none"; "refusals" (the
    # requests refused: a bad signature, another host's command …); "changes" (also the
    # acknowledgements, completions and updates of host commands: two events per lifecycle event per
    # host); "all" (also each long poll and specification fetch).
    audit_agent_requests: str = "refusals"

    @property
    def audit_dir(self) -> Path:
        return self.data_dir / "audit"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'opendeploy.db'}"

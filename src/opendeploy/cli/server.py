"""``opendeploy server``: the control plane on one port (API now; agents, bundles, console later).

At start it makes the data directory its owner's alone (and says what it had to tighten), applies the
database migrations, opens the master key (created if needed while no secrets exist; a clear error if
secrets exist and the key is missing or wrong) and, on the very first start (no administrator key yet),
creates an administrator key and AWS profile as ``opendeploy init`` would. It logs where it listens and
where its data is.

It serves HTTPS: with ``--tls-certificate``/``--tls-key``, or a self-signed certificate it keeps in the
data directory (``api/tls.py``; its fingerprint is logged). ``--tls off`` serves plain HTTP, with a
warning. Connections whose request headers or body stall are closed (``api/http_server.py``).
"""

from __future__ import annotations

import logging
from dataclasses import fields, replace
from pathlib import Path

import click

from opendeploy.api.http_server import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT
from opendeploy.cli.aws_profile import default_files
from opendeploy.cli.init import (
    DEFAULT_PORT,
    bootstrap_admin,
    data_options,
    default_data_dir,
    endpoint_for,
    endpoint_host,
    master_key_option,
    open_secrets,
    profile_options,
    tls_choice,
    tls_options,
)
from opendeploy.settings import (
    AlarmSettings,
    EngineSettings,
    EventStreamSettings,
    NotificationSettings,
    Quotas,
    Settings,
    TrafficSettings,
    Webhook,
)
from opendeploy.store.access_keys import has_admin_key
from opendeploy.store.data_at_rest import describe, private_umask, sqlite_files, tighten
from opendeploy.store.db import Database, describe_url

log = logging.getLogger("opendeploy.server")


def parse_quotas(assignments: tuple[str, ...]) -> Quotas:
    """Quotas with ``NAME=VALUE`` overrides applied; unknown names and bad values are usage errors."""
    known = {f.name for f in fields(Quotas)}
    changes: dict[str, int] = {}
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        if name not in known:
            raise click.BadParameter(
                f"unknown quota {name!r}; known: {', '.join(sorted(known))}", param_hint="--quota"
            )
        try:
            changes[name] = int(value)
        except ValueError:
            raise click.BadParameter(
                f"{assignment!r}: the value must be a whole number", param_hint="--quota"
            ) from None
        if changes[name] < 0:
            raise click.BadParameter(f"{assignment!r}: the value must not be negative", param_hint="--quota")
    return replace(Quotas(), **changes)


def parse_webhooks(urls: tuple[str, ...], secret_files: tuple[Path, ...]) -> tuple[Webhook, ...]:
    """``--webhook`` URLs with their secrets: the n-th ``--webhook-secret-file`` signs the n-th URL, or
    one file signs them all. Every webhook is signed, so a URL without a secret is a usage error."""
    if not urls:
        return ()
    if len(secret_files) not in (1, len(urls)):
        raise click.BadParameter(
            f"give one --webhook-secret-file for all {len(urls)} --webhook URLs or one for each, "
            f"not {len(secret_files)}",
            param_hint="--webhook-secret-file",
        )
    webhooks = []
    for index, url in enumerate(urls):
        if not url.startswith(("http://", "https://")):
            raise click.BadParameter(f"{url!r} is not an http:// or https:// URL", param_hint="--webhook")
        path = secret_files[index if len(secret_files) > 1 else 0]
        secret = path.read_text().strip()
        if not secret:
            raise click.BadParameter(f"{path} is empty", param_hint="--webhook-secret-file")
        webhooks.append(Webhook(url=url, secret=secret))
    return tuple(webhooks)


@click.command()
@click.option("--host", envvar="OPENDEPLOY_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="OPENDEPLOY_PORT", type=int, default=DEFAULT_PORT, show_default=True)
@data_options
@master_key_option
@tls_options
@profile_options
@click.option(
    "--endpoint-url",
    default=None,
    help="The server's URL as clients reach it, written into the profile on first start "
    "[default: from --host and --port].",
)
@click.option(
    "--request-header-timeout",
    envvar="OPENDEPLOY_REQUEST_HEADER_TIMEOUT",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_HEADER_TIMEOUT,
    show_default=True,
    help="Seconds a client has to send a request's headers (from the connection's opening or the "
    "previous response) before its connection is closed.",
)
@click.option(
    "--request-body-timeout",
    envvar="OPENDEPLOY_REQUEST_BODY_TIMEOUT",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_BODY_TIMEOUT,
    show_default=True,
    help="Seconds a request body may stall (no byte arriving) before its connection is closed.",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Most items one List call returns before handing back a nextToken.",
)
@click.option(
    "--quota",
    "quotas",
    multiple=True,
    metavar="NAME=VALUE",
    help="Change a quota from the guide's defaults, e.g. applications_per_account=5000 (repeatable).",
)
@click.option(
    "--event-start-timeout",
    type=click.FloatRange(min=0.1),
    default=EngineSettings.event_start_timeout,
    show_default=True,
    help="Seconds an agent has to pick up a lifecycle event before its instance fails.",
)
@click.option(
    "--event-timeout",
    type=click.FloatRange(min=0.1),
    default=EngineSettings.event_timeout,
    show_default=True,
    help="Seconds a lifecycle event may run on an instance (when its scripts' timeouts are not known).",
)
@click.option(
    "--event-timeout-grace",
    type=click.FloatRange(min=0.0),
    default=EngineSettings.event_timeout_grace,
    show_default=True,
    help="Seconds added to the sum of an event's script timeouts (read from a bundle in the server's "
    "store) before the event fails.",
)
@click.option(
    "--poll-hold",
    type=click.FloatRange(min=0.0, max=300.0),
    default=EngineSettings.poll_hold,
    show_default=True,
    help="Seconds a PollHostCommand long poll waits for a command before answering with none.",
)
@click.option(
    "--redelivery-after",
    type=click.FloatRange(min=0.1),
    default=EngineSettings.redelivery_after,
    show_default=True,
    help="Seconds after which a command handed to an agent but never acknowledged is handed out again.",
)
@click.option(
    "--engine-sweep-interval",
    type=click.FloatRange(min=0.05),
    default=EngineSettings.sweep_interval,
    show_default=True,
    help="Seconds between the engine's sweeps for due work (it is also woken whenever work arrives).",
)
@click.option(
    "--step-retry-base",
    type=click.FloatRange(min=0.01),
    default=EngineSettings.step_retry_base,
    show_default=True,
    help="Seconds before the engine tries a failing step again (advancing a deployment, firing a "
    "timer); the wait doubles with each failure in a row.",
)
@click.option(
    "--step-retry-cap",
    type=click.FloatRange(min=0.01),
    default=EngineSettings.step_retry_cap,
    show_default=True,
    help="The longest wait between two tries of a failing engine step.",
)
@click.option(
    "--haproxy-socket",
    metavar="ADDRESS",
    help="HAProxy's runtime API (unix:/path, /path or host:port, at level admin): deployment groups "
    "whose loadBalancerInfo names the target group haproxy:<backend> deploy behind that backend.",
)
@click.option(
    "--haproxy-deregistration-delay",
    type=click.FloatRange(min=0),
    default=TrafficSettings.haproxy_deregistration_delay,
    show_default=True,
    help="The longest BlockTraffic waits for an HAProxy server's connections to end before putting it "
    "in maintenance (it ends sooner once they have).",
)
@click.option(
    "--haproxy-check-interval",
    type=click.FloatRange(min=0),
    default=TrafficSettings.haproxy_check_interval,
    show_default=True,
    help="HAProxy's health-check interval (inter), which its runtime API does not report: only for the "
    "expected AllowTraffic time shown before a deployment.",
)
@click.option(
    "--traffic-health-wait",
    type=click.FloatRange(min=0.1),
    default=TrafficSettings.health_wait,
    show_default=True,
    help="Seconds AllowTraffic waits for an instance to be reported healthy by its load balancers "
    "before the instance fails.",
)
@click.option(
    "--traffic-hold-interval",
    type=click.FloatRange(min=0.01),
    default=TrafficSettings.hold_interval,
    show_default=True,
    help="Seconds between checks that an instance taken out of its load balancers stays out until its "
    "AllowTraffic (an HAProxy reload forgets runtime state; it is taken out again).",
)
@click.option(
    "--traffic-poll-interval",
    type=click.FloatRange(min=0.01),
    default=TrafficSettings.poll_interval,
    show_default=True,
    help="Seconds between the server's looks at a load balancer during BlockTraffic and AllowTraffic.",
)
@click.option(
    "--prometheus-url",
    metavar="URL",
    help="A Prometheus server (http://host:9090): alarms named prometheus:<alert>[{labels}] are its "
    "alerting rules (ALARM while firing) and promql:<expression> its instant queries (ALARM when the "
    "expression returns a sample).",
)
@click.option(
    "--alertmanager-url",
    metavar="URL",
    help="An Alertmanager (http://host:9093): alarms named prometheus:<alert>[{labels}] are read from its "
    "active alerts (not silenced, not inhibited) instead of from --prometheus-url.",
)
@click.option(
    "--alarm-poll-interval",
    type=click.FloatRange(min=0.01),
    default=AlarmSettings.poll_interval,
    show_default=True,
    help="Seconds between reads of a deployment's alarms while it is active (they are also read at every "
    "lifecycle event boundary, zone wait and traffic-shift step).",
)
@click.option(
    "--alarm-request-timeout",
    type=click.FloatRange(min=0.01),
    default=AlarmSettings.request_timeout,
    show_default=True,
    help="Seconds one request to Prometheus or Alertmanager may take before its alarms read as unavailable.",
)
@click.option(
    "--event-bus",
    envvar="OPENDEPLOY_EVENT_BUS",
    metavar="NAME|ARN",
    help="Send every deployment and instance state change to this EventBridge event bus with PutEvents "
    "(detail-types 'CodeDeploy Deployment/Instance State-change Notification'), through the standard AWS "
    "SDK configuration.",
)
@click.option(
    "--event-bus-source",
    envvar="OPENDEPLOY_EVENT_BUS_SOURCE",
    default=NotificationSettings.event_source,
    show_default=True,
    help="The source of the events put on --event-bus (EventBridge refuses aws.* sources from PutEvents; "
    "a stand-in such as moto or LocalStack takes aws.codedeploy).",
)
@click.option(
    "--webhook",
    "webhooks",
    multiple=True,
    metavar="URL",
    help="POST every deployment and instance state-change event (EventBridge's JSON) to this URL, signed "
    "with HMAC-SHA256 in X-Opendeploy-Signature (repeatable; each needs a --webhook-secret-file).",
)
@click.option(
    "--webhook-secret-file",
    "webhook_secret_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file holding a webhook's signing secret: one for all --webhook URLs, or one per URL in order.",
)
@click.option(
    "--notification-retry-cap",
    type=click.FloatRange(min=0.01),
    default=NotificationSettings.retry_cap,
    show_default=True,
    help="The longest wait between two tries of a notification (SNS, EventBridge, webhook) that failed; "
    "the wait starts at a few seconds and doubles with each failure.",
)
@click.option(
    "--notification-max-attempts",
    type=click.IntRange(min=1),
    default=NotificationSettings.max_attempts,
    show_default=True,
    help="Failed tries after which a notification is given up (kept in the outbox with its error).",
)
@click.option(
    "--notification-max-age",
    type=click.FloatRange(min=1.0),
    default=NotificationSettings.max_age,
    show_default=True,
    help="Seconds after which an undelivered notification is given up.",
)
@click.option(
    "--event-stream-retention",
    envvar="OPENDEPLOY_EVENT_STREAM_RETENTION",
    type=click.FloatRange(min=0.0),
    default=EventStreamSettings.retention_hours,
    show_default=True,
    help="Hours the event log behind GET /events (the live Server-Sent Events stream of deployment and "
    "instance state changes) keeps each event, so a client reconnecting with Last-Event-ID misses nothing "
    "kept; 0 turns the log and the stream off.",
)
@click.option(
    "--event-stream-heartbeat",
    type=click.FloatRange(min=0.05),
    default=EventStreamSettings.heartbeat,
    show_default=True,
    help="Seconds between the comment lines GET /events sends while no event comes (keeps proxies from "
    "closing an idle stream).",
)
@click.option(
    "--event-stream-poll-interval",
    type=click.FloatRange(min=0.05),
    default=EventStreamSettings.poll_interval,
    show_default=True,
    help="Seconds between looks for events other server replicas committed (this server's own are sent "
    "at once).",
)
@click.option(
    "--step-max-attempts",
    type=click.IntRange(min=1),
    default=EngineSettings.step_max_attempts,
    show_default=True,
    help="Failures in a row after which a step is given up: its deployment ends Failed with INTERNAL_ERROR.",
)
@click.option(
    "--zone-tag-key",
    default=EngineSettings.zone_tag_key,
    show_default=True,
    help="The instance tag whose value is an instance's zone, for deployment configurations with a zonal "
    "configuration (instances without it form one last zone).",
)
@click.option(
    "--deploy-to-new-instances/--no-deploy-to-new-instances",
    default=EngineSettings.deploy_to_new_instances,
    show_default=True,
    help="Deploy a deployment group's last successful revision to an instance as soon as it is "
    "registered or tagged into the group (as AWS does for Auto Scaling launches).",
)
@click.option(
    "--audit-retention-days",
    envvar="OPENDEPLOY_AUDIT_RETENTION_DAYS",
    type=click.FloatRange(min=0.0),
    default=Settings.audit_retention_days,
    show_default=True,
    help="Days the audit trail (aws cloudtrail lookup-events, and the JSON-lines files under "
    "<data-dir>/audit) keeps each event; 0 keeps them forever.",
)
@click.option(
    "--audit-sync-commits/--no-audit-sync-commits",
    "audit_synchronous_commits",
    envvar="OPENDEPLOY_AUDIT_SYNC_COMMITS",
    default=Settings.audit_synchronous_commits,
    show_default=True,
    help="Make every audit-trail commit wait for the disk. Without it, recorded events survive a crash "
    "of the server process at once and a crash of the machine once any later write is synced "
    "(milliseconds under load), for about half the cost per request.",
)
@click.option(
    "--audit-agent-requests",
    envvar="OPENDEPLOY_AUDIT_AGENT_REQUESTS",
    type=click.Choice(["none", "refusals", "changes", "all"]),
    default=Settings.audit_agent_requests,
    show_default=True,
    help="Which agent command-service requests the audit trail records: refusals (bad signatures, "
    "another host's commands …), changes (also acknowledgements, completions and updates: two events "
    "per lifecycle event per host), all (also every long poll and specification fetch), or none.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def server(
    host: str,
    port: int,
    data_dir: Path | None,
    database_url: str | None,
    region: str,
    account_id: str,
    master_key_file: Path | None,
    tls_mode: str,
    tls_certificate: Path | None,
    tls_key: Path | None,
    tls_names: tuple[str, ...],
    profile: str,
    aws_config_file: Path | None,
    aws_credentials_file: Path | None,
    endpoint_url: str | None,
    request_header_timeout: float,
    request_body_timeout: float,
    page_size: int,
    quotas: tuple[str, ...],
    event_start_timeout: float,
    event_timeout: float,
    event_timeout_grace: float,
    poll_hold: float,
    redelivery_after: float,
    engine_sweep_interval: float,
    step_retry_base: float,
    step_retry_cap: float,
    step_max_attempts: int,
    haproxy_socket: str | None,
    haproxy_deregistration_delay: float,
    haproxy_check_interval: float,
    traffic_health_wait: float,
    traffic_poll_interval: float,
    traffic_hold_interval: float,
    prometheus_url: str | None,
    alertmanager_url: str | None,
    alarm_poll_interval: float,
    alarm_request_timeout: float,
    event_bus: str | None,
    event_bus_source: str,
    webhooks: tuple[str, ...],
    webhook_secret_files: tuple[Path, ...],
    notification_retry_cap: float,
    notification_max_attempts: int,
    notification_max_age: float,
    event_stream_retention: float,
    event_stream_heartbeat: float,
    event_stream_poll_interval: float,
    zone_tag_key: str,
    deploy_to_new_instances: bool,
    audit_retention_days: float,
    audit_synchronous_commits: bool,
    audit_agent_requests: str,
    log_level: str,
) -> None:
    """Run the opendeploy control plane."""
    import uvicorn

    from opendeploy.api import tls
    from opendeploy.api.app import create_app
    from opendeploy.api.commands.specification_signing import SpecificationSigner
    from opendeploy.api.http_server import protocol_class
    from opendeploy.api.server_state import ServerState

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # Everything the server creates (database, bundles, keys, temporary files) is its user's alone.
    private_umask()
    choice = tls_choice(tls_mode, tls_certificate, tls_key, tls_names)
    settings = Settings(
        data_dir=(data_dir or default_data_dir()).resolve(),
        database_url=database_url,
        host=host,
        port=port,
        region=region,
        account_id=account_id,
        page_size=page_size,
        quotas=parse_quotas(quotas),
        engine=EngineSettings(
            event_start_timeout=event_start_timeout,
            event_timeout=event_timeout,
            event_timeout_grace=event_timeout_grace,
            poll_hold=poll_hold,
            redelivery_after=redelivery_after,
            sweep_interval=engine_sweep_interval,
            step_retry_base=step_retry_base,
            step_retry_cap=step_retry_cap,
            step_max_attempts=step_max_attempts,
            zone_tag_key=zone_tag_key,
            deploy_to_new_instances=deploy_to_new_instances,
        ),
        traffic=TrafficSettings(
            haproxy_socket=haproxy_socket,
            haproxy_deregistration_delay=haproxy_deregistration_delay,
            haproxy_check_interval=haproxy_check_interval,
            health_wait=traffic_health_wait,
            poll_interval=traffic_poll_interval,
            hold_interval=traffic_hold_interval,
        ),
        alarms=AlarmSettings(
            prometheus_url=prometheus_url,
            alertmanager_url=alertmanager_url,
            poll_interval=alarm_poll_interval,
            request_timeout=alarm_request_timeout,
        ),
        notifications=NotificationSettings(
            event_bus=event_bus,
            event_source=event_bus_source,
            webhooks=parse_webhooks(webhooks, webhook_secret_files),
            retry_cap=notification_retry_cap,
            max_attempts=notification_max_attempts,
            max_age=notification_max_age,
        ),
        event_stream=EventStreamSettings(
            retention_hours=event_stream_retention,
            heartbeat=event_stream_heartbeat,
            poll_interval=event_stream_poll_interval,
        ),
        audit_retention_days=audit_retention_days,
        audit_synchronous_commits=audit_synchronous_commits,
        audit_agent_requests=audit_agent_requests,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    loose = tighten(
        settings.data_dir,
        [*sqlite_files(settings.effective_database_url), *([master_key_file] if master_key_file else [])],
    )
    if loose:
        log.warning(
            "tightened the permissions of %d path(s) others could read (the server's data is its owner's "
            "alone: directories 0700, files 0600): %s",
            len(loose),
            describe(loose),
        )
    database = Database(settings.effective_database_url)
    log.info("data directory %s; database %s", settings.data_dir, describe_url(database.url))
    database.migrate()
    log.info("database schema is up to date")
    secrets = open_secrets(database, settings.data_dir, master_key_file)
    log.info("master key %s", secrets.path)
    # Made (or migrated to its encrypted form) now, before serving, so a problem stops the start.
    SpecificationSigner.load_or_create(settings.data_dir, secrets)

    server_tls: tls.ServerTls | None = None
    if choice.certificate is not None and choice.key is not None:
        try:
            server_tls = tls.operator_files(choice.certificate, choice.key)
        except tls.TlsError as error:
            raise click.ClickException(str(error)) from None
        log.info("TLS certificate %s", server_tls.certificate_file)
    elif choice.self_signed:
        names = tls.default_names(host, (*choice.names, *endpoint_host(endpoint_url)))
        server_tls = tls.self_signed(settings.data_dir, secrets, names)
        log.info(
            "TLS: self-signed certificate %s (SHA-256 fingerprint %s)",
            settings.data_dir / tls.SELF_SIGNED_CERTIFICATE_FILE,
            server_tls.fingerprint,
        )
    else:
        log.warning(
            "serving plain HTTP (--tls off): requests, bundles and the agents' commands cross the network "
            "unencrypted, and AWS's CodeDeploy agent will not start against it; use it in a lab only"
        )
    own_endpoint = endpoint_for(host, port, https=server_tls is not None)

    with database.transaction(write=False) as session:
        first_start = not has_admin_key(session)
    if first_start:
        files = default_files(aws_config_file, aws_credentials_file)
        endpoint = endpoint_url or own_endpoint
        key = bootstrap_admin(
            database,
            secrets,
            settings,
            endpoint_url=endpoint,
            files=files,
            profile=profile,
            ca_certificates=server_tls.trust_pem if server_tls and endpoint.startswith("https:") else None,
        )
        log.info(
            "first start: created administrator access key %s; profile '%s' written to %s and %s",
            key.access_key_id,
            profile,
            files.config,
            files.credentials,
        )
        # The secret is in the credentials file only; logs (often kept and shipped) never show it.

    app = create_app(ServerState(settings=settings, database=database, secrets=secrets))
    log.info(
        "opendeploy server listening on %s (region %s, account %s)",
        own_endpoint,
        region,
        account_id,
    )
    uvicorn.run(
        tls.CertificateRoute(app, server_tls.trust_pem if server_tls else None),
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        http=protocol_class(request_header_timeout, request_body_timeout),
        ssl_certfile=server_tls.certificate_file if server_tls else None,
        ssl_keyfile=server_tls.key_file if server_tls else None,
        ssl_keyfile_password=server_tls.key_password if server_tls else None,
    )

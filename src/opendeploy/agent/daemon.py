"""The agent process: read the host's files, poll the server, and stop cleanly.

``run_agent(config)`` is what ``opendeploy agent`` runs in the foreground (systemd's ``Type=simple``):

- reads ``codedeployagent.yml`` (already parsed into ``config``), the identity file it names
  (``:on_premises_config_file:``) and the pinned server certificate (``:deployment_signer_certificate:``);
- logs to ``<log_dir>/codedeploy-agent.log`` in the AWS agent's layout
  (``2024-05-01 12:00:00 INFO  [codedeploy-agent(1234)]: …``), rotated daily, seven days kept;
- holds ``<pid_dir>/codedeploy-agent.pid`` locked, so a second agent on the same files refuses to start;
- on SIGTERM or SIGINT stops polling, lets running lifecycle events finish and be reported for up to
  ``:kill_agent_max_wait_time_seconds:``, then ends the scripts still running (SIGTERM, SIGKILL after
  ``:hook_kill_grace_seconds:``) and exits (0 if nothing was cut short, 1 otherwise). Nothing is lost: a
  command a poll still brings back meanwhile is kept in ``<root_dir>/received-commands`` and run at the
  next start; an outcome the server could not be told is kept in ``<root_dir>/unreported-completions``
  and reported at the next start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import logging.handlers
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TextIO

from opendeploy.agent.agent_config import AgentConfig
from opendeploy.agent.bundle import register_fetcher
from opendeploy.agent.command_client import (
    CommandServiceClient,
    create_botocore_client,
    default_endpoint,
)
from opendeploy.agent.deployment_specification import RevisionType
from opendeploy.agent.github_bundle_source import GitHubBundleSource
from opendeploy.agent.hook_runner import stop_running_scripts
from opendeploy.agent.ongoing_deployments import OngoingDeployments
from opendeploy.agent.onpremises_config import (
    InstanceIdentity,
    OnPremisesConfigError,
    load_onpremises_config,
)
from opendeploy.agent.poller import CommandPoller
from opendeploy.agent.received_commands import DIRECTORY_NAME as RECEIVED_DIRECTORY
from opendeploy.agent.received_commands import ReceivedCommands
from opendeploy.agent.s3_bundle_source import S3BundleSource, create_s3_client
from opendeploy.agent.specification_envelope import SpecificationEnvelopeError, load_signer_certificate
from opendeploy.agent.unreported_completions import DIRECTORY_NAME as UNREPORTED_DIRECTORY
from opendeploy.agent.unreported_completions import UnreportedCompletions

log = logging.getLogger("opendeploy.agent")

AGENT_LOG = "codedeploy-agent.log"
LOG_DAYS_KEPT = 7
NEXT_COMMAND_GRACE_SECONDS = 3.0  # at stop, how long a held poll may take to bring back the next event
ABANDONED_WAIT_SECONDS = 5.0  # at the stop deadline, how long ended scripts' events take to be kept


class AgentStartError(Exception):
    """The agent cannot start; the message says which file or setting is wrong."""


def configure_logging(config: AgentConfig, *, stream: TextIO | None = None) -> Path:
    """Send the agent's log to ``<log_dir>/codedeploy-agent.log`` (and to ``stream`` if given)."""
    log_dir = config.log_dir.absolute()
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AgentStartError(f"cannot create the log directory {log_dir}: {exc.strerror}") from None
    path = log_dir / AGENT_LOG
    formatter = logging.Formatter(
        f"%(asctime)s %(levelname)-5s [{config.program_name}(%(process)d)]: %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    handlers: list[logging.Handler] = [
        logging.handlers.TimedRotatingFileHandler(path, when="midnight", backupCount=LOG_DAYS_KEPT)
    ]
    if stream is not None:
        handlers.append(logging.StreamHandler(stream))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if config.verbose else logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if config.log_aws_wire else logging.WARNING)
    return path


@contextlib.contextmanager
def pid_file(config: AgentConfig) -> Iterator[Path]:
    """Hold ``<pid_dir>/<program_name>.pid`` locked (with this process's id in it) while the agent runs."""
    path = config.pid_dir.absolute() / f"{config.program_name}.pid"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held for the agent's life)
    except OSError as exc:
        raise AgentStartError(f"cannot write the pid file {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            other = handle.read().strip() or "?"
            raise AgentStartError(
                f"another agent (pid {other}) is already running with the pid file {path}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield path
    finally:
        with contextlib.suppress(OSError):
            handle.close()


def _ca_bundle(config: AgentConfig) -> str | None:
    return str(config.ca_bundle.absolute()) if config.ca_bundle is not None else None


def install_bundle_sources(
    config: AgentConfig, identity: InstanceIdentity, stopping: threading.Event
) -> None:
    """Let DownloadBundle fetch S3 and GitHub revisions with this host's settings and credentials; a
    download retrying through an outage is given up once ``stopping`` is set."""
    retries = {
        "stopping": stopping,
        "retry_seconds": config.download_retry_seconds,
        "retry_cap": config.wait_after_error,
    }
    s3 = create_s3_client(
        identity,
        config.s3_endpoint_override,
        read_timeout=config.http_read_timeout,
        proxy_uri=config.proxy_uri,
        ca_bundle=_ca_bundle(config),
    )
    register_fetcher(RevisionType.S3, S3BundleSource(s3, **retries).fetch)
    github = GitHubBundleSource(
        config.github_endpoint_override,
        read_timeout=config.http_read_timeout,
        proxy_uri=config.proxy_uri,
        **retries,
    )
    register_fetcher(RevisionType.GITHUB, github.fetch)


def build_poller(config: AgentConfig, stopping: threading.Event) -> CommandPoller:
    """Everything the poll loop needs, read from the host's files; raises AgentStartError if one is wrong.
    ``stopping`` is the event the agent sets when told to stop (and then runs the poller with)."""
    try:
        identity = load_onpremises_config(config.on_premises_config_file)
    except OnPremisesConfigError as exc:
        raise AgentStartError(str(exc)) from None
    if config.deployment_signer_certificate is None:
        raise AgentStartError(
            "no server certificate is pinned: set :deployment_signer_certificate: in the agent "
            "configuration (opendeploy register writes it)"
        )
    try:
        certificate = load_signer_certificate(config.deployment_signer_certificate)
    except SpecificationEnvelopeError as exc:
        raise AgentStartError(str(exc)) from None
    endpoint = config.deploy_control_endpoint or default_endpoint(identity.region)
    client = create_botocore_client(
        identity,
        endpoint,
        # The server holds a poll open for a while when it has nothing: wait longer than that.
        read_timeout=config.http_read_timeout,
        proxy_uri=config.proxy_uri,
        ca_bundle=_ca_bundle(config),
    )
    install_bundle_sources(config, identity, stopping)
    ongoing = OngoingDeployments(config.root_dir.absolute() / config.ongoing_deployment_tracking)
    log.info("host %s polls %s", identity.host_identifier, endpoint)
    return CommandPoller(
        CommandServiceClient(client, identity.host_identifier),
        config=config,
        certificate=certificate,
        ongoing=ongoing,
        received=ReceivedCommands(config.root_dir.absolute() / RECEIVED_DIRECTORY),
        completions=UnreportedCompletions(config.root_dir.absolute() / UNREPORTED_DIRECTORY),
    )


def run_agent(config: AgentConfig, *, log_stream: TextIO | None = None) -> int:
    """Run the agent until SIGTERM/SIGINT; returns the exit status. The caller should leave with
    ``os._exit``: worker threads may still sit in a hook or a long poll and must not hold the exit."""
    log_path = configure_logging(config, stream=log_stream)
    for warning in config.warnings:
        log.warning(warning)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(pid_file(config))
            stop = threading.Event()
            poller = build_poller(config, stop)
        except AgentStartError as exc:
            log.error("cannot start: %s", exc)
            raise

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s: no new commands will be taken", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        log.info("opendeploy agent started (pid %d, log %s)", os.getpid(), log_path)
        polling = threading.Thread(target=poller.run, args=(stop,), name="poller", daemon=True)
        polling.start()
        while not stop.wait(3600):
            pass
        finished = _stop(poller, polling, config)
    logging.shutdown()
    return 0 if finished else 1


def _stop(poller: CommandPoller, polling: threading.Thread, config: AgentConfig) -> bool:
    """Stop within ``:kill_agent_max_wait_time_seconds:`` (plus the hook kill grace): running events may
    finish and be reported until then; scripts still running at the deadline are ended, and every
    outcome the server does not have yet is kept for the next start. True if nothing was cut short."""
    running = poller.running
    if running:
        log.info(
            "waiting up to %d s for %s to finish",
            config.kill_agent_max_wait_time_seconds,
            ", ".join(c.command_name for c in running),
        )
    finished = poller.stop_within(config.kill_agent_max_wait_time_seconds)
    if finished:
        if running:
            # A finished command's completion lets the server issue the next event to the poll still
            # held open; give that answer a moment to arrive and be kept for the next start.
            polling.join(NEXT_COMMAND_GRACE_SECONDS)
        log.info("opendeploy agent stopped")
        return True
    names = ", ".join(c.command_name for c in poller.running)
    stopped = stop_running_scripts(config.hook_kill_grace_seconds)
    log.error(
        "stopping with %s unfinished or unreported%s; the outcome is reported when the agent starts again",
        names,
        f" ({stopped} script(s) ended)" if stopped else "",
    )
    poller.wait_for_abandoned(ABANDONED_WAIT_SECONDS)
    return False

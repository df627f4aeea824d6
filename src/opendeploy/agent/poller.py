"""The poll loop: ask the server for work, run each host command, report how it went.

For each command PollHostCommand hands out, on a worker thread (several commands may run at once, one
per deployment group at a time — the command executor's group lock sees to that):

1. GetDeploymentSpecification, and open its envelope: the signature must verify with the pinned server
   certificate, or the command is completed as Failed saying why and nothing runs (a deployment's
   events share one specification, so it is fetched and verified once per deployment execution);
2. PutHostCommandAcknowledgement with ``{"IsCommandNoop": …}``; a command the server already considers
   done (Succeeded/Failed) is not run again;
3. write the ongoing-deployment marker, run the event with the command executor (DownloadBundle, Install,
   a hook event), and PutHostCommandComplete with its diagnostics — retried until the server has it, so a
   server restarted mid-deployment still gets every result; then remove the marker.

Polling goes on while commands run. Errors (server down, throttling, a refused request) back off
exponentially, with jitter, up to ``:wait_after_error:`` seconds, and the loop recovers by itself once
the server answers again. At start, markers left by a killed agent are reported as Failed (error code 7).

Once told to stop, the loop starts no new work: a command that a poll in flight still brings back is kept
(``received_commands``) and run first when the agent starts again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from cryptography import x509

from opendeploy.agent.agent_config import AgentConfig
from opendeploy.agent.command_client import HostCommand, SpecificationResponse
from opendeploy.agent.command_executor import execute_command, is_command_noop
from opendeploy.agent.deployment_specification import (
    DeploymentSpecification,
    DeploymentSpecificationError,
    parse_deployment_specification,
)
from opendeploy.agent.diagnostics import Diagnostics, ErrorCode
from opendeploy.agent.ongoing_deployments import InterruptedCommand, OngoingDeployments
from opendeploy.agent.received_commands import ReceivedCommands
from opendeploy.agent.retries import backoff_delay, describe_error, is_transient
from opendeploy.agent.specification_envelope import SpecificationEnvelopeError, open_envelope

log = logging.getLogger("opendeploy.agent.poller")

DEPLOYMENT_SYSTEM = "CodeDeploy"
MAX_CONCURRENT_COMMANDS = 16
FAILED_AFTER_RESTART_MESSAGE = "Failed: Failing in-progress lifecycle event after an agent restart."
SPECIFICATIONS_KEPT = 64  # verified specifications remembered (one per recent deployment)
_REDELIVERY_PAUSE = 0.1  # seconds before polling again when the server re-sent a command already running


class CommandService(Protocol):
    """The four calls of the command service the agent makes (``CommandServiceClient``)."""

    host_identifier: str

    def poll(self) -> HostCommand | None: ...

    def get_deployment_specification(self, command: HostCommand) -> SpecificationResponse: ...

    def acknowledge(self, command: HostCommand, *, is_noop: bool) -> str | None: ...

    def complete(self, host_command_identifier: str, status: str, diagnostics: Diagnostics) -> None: ...


Executor = Callable[[str, DeploymentSpecification, AgentConfig], Diagnostics]
NoopCheck = Callable[[str, DeploymentSpecification, AgentConfig], bool]


class CommandRefused(Exception):
    """The command cannot be run (bad specification, wrong signature …): it is completed as Failed."""


class CommandPoller:
    """Polls for this host's commands and runs them; one instance per agent process."""

    def __init__(
        self,
        service: CommandService,
        *,
        config: AgentConfig,
        certificate: x509.Certificate,
        ongoing: OngoingDeployments,
        received: ReceivedCommands | None = None,
        execute: Executor = execute_command,
        is_noop: NoopCheck = is_command_noop,
        max_concurrent: int = MAX_CONCURRENT_COMMANDS,
    ) -> None:
        self.service = service
        self.config = config
        self.certificate = certificate
        self.ongoing = ongoing
        self.received = received
        self._execute = execute
        self._is_noop = is_noop
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="host-command")
        self._capacity = threading.BoundedSemaphore(max_concurrent)
        self._lock = threading.Lock()
        self._running: dict[str, HostCommand] = {}
        self._idle = threading.Condition(self._lock)
        self._give_up_at: float | None = None  # set at shutdown: the last moment to retry a completion
        # Verified specifications by DeploymentExecutionId: every event of a deployment has the same one.
        self._specifications: OrderedDict[str, DeploymentSpecification] = OrderedDict()
        self.consecutive_errors = 0

    # --- the loop ------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; never raises for a failed request (it backs off and tries again)."""
        to_recover: list[InterruptedCommand] | None = None
        kept_run = False
        while not stop.is_set():
            try:
                if to_recover is None:
                    to_recover = self.ongoing.interrupted()
                if to_recover:
                    self._report_interrupted(to_recover)
                if not kept_run:
                    kept_run = True
                    self._run_kept(stop)
                command = self._poll_when_there_is_room(stop)
            except Exception as error:
                self.consecutive_errors += 1
                delay = backoff_delay(self.consecutive_errors, self.config.wait_after_error)
                log.error(
                    "%s (error %d in a row); polling again in %.1f s",
                    describe_error(error),
                    self.consecutive_errors,
                    delay,
                )
                stop.wait(delay)
                continue
            if self.consecutive_errors:
                log.info("the command service answers again after %d error(s)", self.consecutive_errors)
            self.consecutive_errors = 0
            if command is None:
                stop.wait(self.config.wait_between_runs)
                continue
            if stop.is_set():
                self._keep(command)
                self._capacity.release()
                return
            if not self._dispatch(command):
                stop.wait(_REDELIVERY_PAUSE)

    def _keep(self, command: HostCommand) -> None:
        """A command received while stopping: kept to run at the next start (never acknowledged now)."""
        if self.received is not None:
            try:
                self.received.keep(command)
                log.info("stopping: %s kept to run when the agent starts again", command.command_name)
                return
            except OSError as error:
                log.error("cannot keep %s: %s", command.command_name, error)
        log.info("stopping: leaving %s for the server to hand out again", command.command_name)

    def _run_kept(self, stop: threading.Event) -> None:
        """Run the commands the previous run of the agent received while stopping."""
        if self.received is None:
            return
        for command in self.received.kept():
            if not self._wait_for_room(stop):
                return
            log.info("running %s, received before the agent last stopped", command.command_name)
            if not self._dispatch(command):
                self.received.forget(command.host_command_identifier)

    def _wait_for_room(self, stop: threading.Event) -> bool:
        while not self._capacity.acquire(timeout=1.0):
            if stop.is_set():
                return False
        return True

    def _poll_when_there_is_room(self, stop: threading.Event) -> HostCommand | None:
        if not self._wait_for_room(stop):
            return None
        try:
            command = self.service.poll()
        except BaseException:
            self._capacity.release()
            raise
        if command is None:
            self._capacity.release()
            return None
        try:
            self._check(command)
        except BaseException:
            self._capacity.release()
            raise
        return command

    def _check(self, command: HostCommand) -> None:
        # AWS's agent accepts a command whose HostIdentifier is part of its own (substring rule).
        if not command.host_identifier or command.host_identifier not in self.service.host_identifier:
            raise CommandRefused(
                f"Host Identifier mismatch: the server sent a command for {command.host_identifier!r} "
                f"to {self.service.host_identifier!r}"
            )
        if not command.command_name:
            raise CommandRefused("Command Name missing")

    def _dispatch(self, command: HostCommand) -> bool:
        with self._lock:
            if command.host_command_identifier in self._running:
                self._capacity.release()
                return False  # the server re-sent a command whose acknowledgement has not landed yet
            self._running[command.host_command_identifier] = command
        log.info(
            "received command %s of %s (%s)",
            command.command_name,
            command.deployment_execution_id,
            command.host_command_identifier,
        )
        self._pool.submit(self._run_command, command)
        return True

    def _run_command(self, command: HostCommand) -> None:
        try:
            self.process(command)
        except Exception:
            log.exception("command %s failed unexpectedly", command.command_name)
        finally:
            if self.received is not None:
                self.received.forget(command.host_command_identifier)
            with self._lock:
                self._running.pop(command.host_command_identifier, None)
                self._idle.notify_all()
            self._capacity.release()

    # --- one command -----------------------------------------------------------------------------------

    def _specification(self, command: HostCommand) -> DeploymentSpecification:
        """The command's deployment specification, verified; fetched once per deployment execution."""
        with self._lock:
            cached = self._specifications.get(command.deployment_execution_id)
        if cached is not None:
            return cached
        spec = self._fetch_specification(command)
        with self._lock:
            self._specifications[command.deployment_execution_id] = spec
            while len(self._specifications) > SPECIFICATIONS_KEPT:
                self._specifications.popitem(last=False)
        return spec

    def _fetch_specification(self, command: HostCommand) -> DeploymentSpecification:
        response = self.service.get_deployment_specification(command)
        if response.deployment_system != DEPLOYMENT_SYSTEM:
            raise CommandRefused(
                f"Deployment System mismatch: {DEPLOYMENT_SYSTEM} != {response.deployment_system}"
            )
        if response.generic_envelope is None:
            raise CommandRefused("Deployment Specification missing")
        envelope = response.generic_envelope
        try:
            document = open_envelope(envelope.format, envelope.payload, self.certificate)
            return parse_deployment_specification(document)
        except (SpecificationEnvelopeError, DeploymentSpecificationError) as error:
            raise CommandRefused(str(error)) from None

    def process(self, command: HostCommand) -> None:
        """Specification, acknowledgement, execution and completion of one command."""
        try:
            spec = self._specification(command)
            is_noop = self._is_noop(command.command_name, spec, self.config)
            status = self.service.acknowledge(command, is_noop=is_noop)
        except Exception as error:
            if not isinstance(error, CommandRefused) and is_transient(error):
                # Not acknowledged: the server hands the command out again when it is reachable.
                log.warning(
                    "%s: %s; the server will hand it out again", command.command_name, describe_error(error)
                )
                return
            message = str(error) if isinstance(error, CommandRefused) else describe_error(error)
            log.error("refusing command %s: %s", command.command_name, message)
            self._complete(command.host_command_identifier, "Failed", Diagnostics.unknown_error(message))
            return
        if status == "Failed" and is_noop:
            self._complete(command.host_command_identifier, "Succeeded", Diagnostics.success(noop=True))
            return
        if status in ("Succeeded", "Failed"):
            log.info("%s is already %s on the server; not running it again", command.command_name, status)
            return
        try:
            self.ongoing.start(spec.deployment_id, command.host_command_identifier)
        except OSError as error:
            message = f"cannot record the ongoing deployment in {self.ongoing.directory}: {error.strerror}"
            log.error("%s: %s", command.command_name, message)
            self._complete(command.host_command_identifier, "Failed", Diagnostics.unknown_error(message))
            return
        started = time.monotonic()
        diagnostics = self._execute(command.command_name, spec, self.config)
        log.info(
            "%s of %s %s in %.2f s%s",
            command.command_name,
            spec.deployment_id,
            "succeeded" if diagnostics.succeeded else f"failed ({diagnostics.display_name})",
            time.monotonic() - started,
            "" if diagnostics.succeeded else f": {diagnostics.message}",
        )
        status = "Succeeded" if diagnostics.succeeded else "Failed"
        if self._complete(command.host_command_identifier, status, diagnostics):
            self.ongoing.finish(spec.deployment_id)

    def _complete(self, host_command_identifier: str, status: str, diagnostics: Diagnostics) -> bool:
        """PutHostCommandComplete, retried while the server is unreachable; False if it never got there
        (the marker then stays, and a restarted agent reports the event as failed)."""
        errors = 0
        while True:
            try:
                self.service.complete(host_command_identifier, status, diagnostics)
                return True
            except Exception as error:
                if not is_transient(error):
                    log.error(
                        "the server refused the completion of %s: %s",
                        host_command_identifier,
                        describe_error(error),
                    )
                    return True  # nothing more to report for it
                errors += 1
                delay = backoff_delay(errors, self.config.wait_after_error)
                give_up_at = self._give_up_at
                if give_up_at is not None and time.monotonic() + delay > give_up_at:
                    log.error("giving up reporting %s: %s", host_command_identifier, describe_error(error))
                    return False
                log.warning(
                    "cannot report %s yet (%s); retrying in %.1f s",
                    host_command_identifier,
                    describe_error(error),
                    delay,
                )
                time.sleep(delay)

    def _report_interrupted(self, interrupted: list[InterruptedCommand]) -> None:
        """Report each interrupted command as Failed; each leaves ``interrupted`` once the server has it."""
        failed = Diagnostics(ErrorCode.FAILED_AFTER_RESTART, "", FAILED_AFTER_RESTART_MESSAGE, "")
        while interrupted:
            command = interrupted[0]
            log.warning(
                "the agent restarted while running %s of %s: reporting it as failed",
                command.host_command_identifier,
                command.deployment_id,
            )
            try:
                self.service.complete(command.host_command_identifier, "Failed", failed)
            except Exception as error:
                if is_transient(error):
                    raise
                log.error("the server refused the report: %s", describe_error(error))
            self.ongoing.finish(command.deployment_id)
            interrupted.pop(0)

    # --- stopping ----------------------------------------------------------------------------------

    @property
    def running(self) -> list[HostCommand]:
        with self._lock:
            return list(self._running.values())

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait for running commands to finish (and be reported); False if some still run at the deadline."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._give_up_at = deadline
            while self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

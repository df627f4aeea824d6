"""The poll loop: ask the server for work, run each host command, report how it went.

For each command PollHostCommand hands out, on a worker thread (several commands may run at once, one
per deployment group at a time — the command executor's group lock sees to that):

1. GetDeploymentSpecification, and open its envelope: the signature must verify with the pinned server
   certificate, or the command is completed as Failed saying why and nothing runs (a deployment's
   events share one specification, so it is fetched and verified once per deployment execution);
2. PutHostCommandAcknowledgement with ``{"IsCommandNoop": …}``; a command the server already considers
   done (Succeeded/Failed) is not run again;
3. write the ongoing-deployment marker, run the event with the command executor (DownloadBundle, Install,
   a hook event), and PutHostCommandComplete with its diagnostics; an outcome the server cannot be told
   at once is kept on disk (``unreported_completions``) until it has it.

Every call to the server is retried after a transient failure (``retries``): an acknowledgement or a
completion whose answer was lost is simply sent again — both are idempotent on the server — so a server
killed at any moment loses nothing. Polling goes on while commands run; a command the server hands out
again while it runs here (its acknowledgement had not landed) is not run twice. Errors back off
exponentially, with jitter, up to ``:wait_after_error:`` seconds, and the loop recovers by itself once
the server answers again. At start, completions a previous run could not report are reported, then
markers left by a killed agent are reported as Failed (error code 7).

Once told to stop, the loop starts no new work: a command that a poll in flight still brings back, or
whose acknowledgement cannot reach the server, is kept (``received_commands``) and run first when the
agent starts again. ``stop_within`` bounds the rest: running events may finish and be reported until
the deadline; then what is still unreported stays kept for the next start.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

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
from opendeploy.agent.ongoing_deployments import OngoingDeployments
from opendeploy.agent.received_commands import ReceivedCommands
from opendeploy.agent.retries import Abandoned, backoff_delay, describe_error, is_transient, with_retries
from opendeploy.agent.specification_envelope import SpecificationEnvelopeError, open_envelope
from opendeploy.agent.unreported_completions import Completion, UnreportedCompletions

log = logging.getLogger("opendeploy.agent.poller")

DEPLOYMENT_SYSTEM = "CodeDeploy"
MAX_CONCURRENT_COMMANDS = 16
FAILED_AFTER_RESTART_MESSAGE = "Failed: Failing in-progress lifecycle event after an agent restart."
SPECIFICATIONS_KEPT = 64  # verified specifications remembered (one per recent deployment)
# How long a command's specification and acknowledgement are retried while the server is out of reach:
# as long as the server lets an event run by default. Given up sooner, the command would wait on the
# server until its deadline if the server had recorded the acknowledgement (its answer lost).
HANDOFF_RETRY_SECONDS = 3600.0
T = TypeVar("T")
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
        completions: UnreportedCompletions | None = None,
        execute: Executor = execute_command,
        is_noop: NoopCheck = is_command_noop,
        max_concurrent: int = MAX_CONCURRENT_COMMANDS,
    ) -> None:
        self.service = service
        self.config = config
        self.certificate = certificate
        self.ongoing = ongoing
        self.received = received
        self.completions = completions
        self._execute = execute
        self._is_noop = is_noop
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="host-command")
        self._capacity = threading.BoundedSemaphore(max_concurrent)
        self._lock = threading.Lock()
        self._running: dict[str, HostCommand] = {}
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()  # the event ``run`` was given: set when told to stop
        self._abandon = threading.Event()  # set at the stop deadline: stop retrying what is left
        # Verified specifications by DeploymentExecutionId: every event of a deployment has the same one.
        self._specifications: OrderedDict[str, DeploymentSpecification] = OrderedDict()
        self.consecutive_errors = 0

    # --- the loop ------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; never raises for a failed request (it backs off and tries again)."""
        self._stopping = stop
        recovered = False
        while not stop.is_set():
            try:
                if not recovered:
                    self._recover(stop)
                    self._run_kept(stop)
                    recovered = True
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
        """A command received, or not yet acknowledged, when the agent is told to stop: kept to run at the
        next start."""
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
        if not self._process(command) and self.received is not None:
            self.received.forget(command.host_command_identifier)

    def _process(self, command: HostCommand) -> bool:
        """``process``; True if the command was kept to run at the next start."""
        name = command.command_name
        try:
            spec = self._handoff(
                lambda: self._specification(command), f"fetching the specification of {name}"
            )
            is_noop = self._is_noop(name, spec, self.config)
            status = self._handoff(
                lambda: self.service.acknowledge(command, is_noop=is_noop), f"acknowledging {name}"
            )
        except Abandoned:
            self._keep(command)
            return True
        except Exception as error:
            if not isinstance(error, CommandRefused) and is_transient(error):
                # Out of retries: if the server never recorded the acknowledgement, it hands the command
                # out again.
                log.warning("%s: %s; the server will hand it out again", name, describe_error(error))
                return False
            message = str(error) if isinstance(error, CommandRefused) else describe_error(error)
            log.error("refusing command %s: %s", name, message)
            self._complete(command.host_command_identifier, "Failed", Diagnostics.unknown_error(message))
            return False
        if status == "Failed" and is_noop:
            self._complete(command.host_command_identifier, "Succeeded", Diagnostics.success(noop=True))
            return False
        if status in ("Succeeded", "Failed"):
            log.info("%s is already %s on the server; not running it again", name, status)
            return False
        try:
            self.ongoing.start(spec.deployment_id, command.host_command_identifier)
        except OSError as error:
            message = f"cannot record the ongoing deployment in {self.ongoing.directory}: {error.strerror}"
            log.error("%s: %s", name, message)
            self._complete(command.host_command_identifier, "Failed", Diagnostics.unknown_error(message))
            return False
        started = time.monotonic()
        try:
            diagnostics = self._execute(name, spec, self.config)
        except Abandoned as stopped:  # a download retrying through an outage, given up at stop
            diagnostics = Diagnostics.unknown_error(f"{stopped}; the event did not finish")
        log.info(
            "%s of %s %s in %.2f s%s",
            name,
            spec.deployment_id,
            "succeeded" if diagnostics.succeeded else f"failed ({diagnostics.display_name})",
            time.monotonic() - started,
            "" if diagnostics.succeeded else f": {diagnostics.message}",
        )
        status = "Succeeded" if diagnostics.succeeded else "Failed"
        self._complete(command.host_command_identifier, status, diagnostics, deployment_id=spec.deployment_id)
        return False

    def _handoff(self, call: Callable[[], T], what: str) -> T:
        """A call that hands a command over (specification, acknowledgement), retried while the server is
        out of reach; given up (``Abandoned``) once the agent is told to stop: the command has not
        started, and is kept to run at the next start."""
        return with_retries(
            call,
            what=what,
            budget=HANDOFF_RETRY_SECONDS,
            cap=self.config.wait_after_error,
            stopping=self._stopping,
        )

    def _complete(
        self, identifier: str, status: str, diagnostics: Diagnostics, *, deployment_id: str | None = None
    ) -> None:
        """Report the command's outcome. If the server cannot be told at once, keep the outcome on disk
        first (it supersedes the ongoing-deployment marker) and go on trying: it stays kept for the next
        start if the agent must stop before the server has it. (Kept only then: writing every outcome
        to disk first would cost a sync per event for a crash within a moment of it.)"""
        completion = Completion(identifier, status, diagnostics)
        try:
            self._send(completion)
        except Exception as error:
            if not is_transient(error):
                log.error("the server refused the completion of %s: %s", identifier, describe_error(error))
            else:
                log.warning(
                    "reporting %s failed (%s); keeping it until the server has it",
                    identifier,
                    describe_error(error),
                )
                kept = self._keep_completion(completion)
                if kept and deployment_id is not None:
                    self.ongoing.finish(deployment_id)
                if not self._report(completion, giving_up=self._abandon):
                    return
        if deployment_id is not None:
            self.ongoing.finish(deployment_id)

    def _send(self, completion: Completion) -> None:
        self.service.complete(completion.host_command_identifier, completion.status, completion.diagnostics)

    def _keep_completion(self, completion: Completion) -> bool:
        if self.completions is None:
            return False
        try:
            self.completions.keep(completion)
            return True
        except OSError as error:
            log.error("cannot keep the outcome of %s on disk: %s", completion.host_command_identifier, error)
            return False

    def _report(self, completion: Completion, *, giving_up: threading.Event) -> bool:
        """PutHostCommandComplete, retried until the server has it (or refuses it for good), then the
        kept copy is forgotten; False if ``giving_up`` was set first (the kept copy stays)."""
        identifier = completion.host_command_identifier
        try:
            with_retries(
                lambda: self._send(completion),
                what=f"reporting {identifier}",
                budget=math.inf,
                cap=self.config.wait_after_error,
                stopping=giving_up,
            )
        except Abandoned:
            log.error(
                "stopping before the server has the outcome of %s: it is reported at the next start",
                identifier,
            )
            return False
        except Exception as error:
            log.error("the server refused the completion of %s: %s", identifier, describe_error(error))
        if self.completions is not None:
            self.completions.forget(identifier)
        return True

    def _recover(self, stop: threading.Event) -> None:
        """Report what a previous run of the agent left unreported: its kept completions, then the events
        it was running when it died (as Failed). Each leaves the disk once the server has it."""
        interrupted = self.ongoing.interrupted()
        reported: set[str] = set()
        for completion in self.completions.kept() if self.completions is not None else []:
            log.info(
                "reporting the outcome of %s, kept since the agent last ran",
                completion.host_command_identifier,
            )
            if not self._report(completion, giving_up=stop):
                return
            reported.add(completion.host_command_identifier)
        failed = Diagnostics(ErrorCode.FAILED_AFTER_RESTART, "", FAILED_AFTER_RESTART_MESSAGE, "")
        for command in interrupted:
            if command.host_command_identifier not in reported:
                log.warning(
                    "the agent restarted while running %s of %s: reporting it as failed",
                    command.host_command_identifier,
                    command.deployment_id,
                )
                if not self._report(
                    Completion(command.host_command_identifier, "Failed", failed), giving_up=stop
                ):
                    return
            self.ongoing.finish(command.deployment_id)

    # --- stopping ----------------------------------------------------------------------------------

    @property
    def running(self) -> list[HostCommand]:
        with self._lock:
            return list(self._running.values())

    def stop_within(self, timeout: float) -> bool:
        """Once told to stop: wait up to ``timeout`` seconds for running commands to finish and be
        reported; at the deadline give up reporting (what is unreported stays kept for the next start).
        False if commands were still running or unreported then."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._idle.wait(remaining)
            idle = not self._running
        if not idle:
            self._abandon.set()
        return idle

    def wait_for_abandoned(self, timeout: float) -> bool:
        """After ``stop_within`` gave up: wait up to ``timeout`` for the commands still running to end
        (their outcomes kept for the next start). True if none is left."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

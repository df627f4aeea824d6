"""Whether a deployment goes on, given the state of its alarms: the guide's stop-on-alarm rules as one
pure decision, and the words the deployment carries when it is stopped.

The rules (guide L17064–17101, L20252–20268; spec/guide-rollback-monitoring-security.md §5):

- ``alarmConfiguration.enabled: false`` ("Ignore alarm configuration", L17086–17090) keeps the alarms
  but ignores them: the deployment continues whatever their state, and nobody needs to read them.
- "If any of the specified alarms are activated, the deployment stops, and the status is updated to
  Stopped" (L20266–20268): one alarm in ALARM stops it.
- An alarm whose state cannot be read stops it too, unless ``ignorePollAlarmFailure`` ("Continue
  deployments even if alarm status is unavailable", L17092–17099; the API model: "false: The deployment
  stops if alarm status information can't be retrieved"). Unreadable means: the source could not be
  reached or refused (an AWS error, a Prometheus timeout…), or the alarm does not exist — the guide
  requires alarms to exist before they are added and to be named exactly (L17074–17081), and
  DescribeAlarms silently leaves unknown names out of its answer, so a missing alarm is detected by its
  absence and treated as unreadable, never as quiet.
- INSUFFICIENT_DATA is not "activated": the deployment continues (only ALARM stops, L20266–20268).

**What a stopped deployment carries.** The guide gives no message for ``ALARM_ACTIVE`` (it is in the
API model's ErrorCode enum only; the guide's error-code table, L28307–28509, does not list it). AWS's own
text, as ``get-deployment`` shows it on deployments stopped by an alarm (seen in published CLI output of
real deployments)::

    One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and
    the affected deployments have been stopped. Activated alarms: <name-1> <name-2>

:data:`ALARM_ACTIVE_MESSAGE` reproduces it word for word, alarm names each in angle brackets, separated
by a space, in the order the alarm configuration lists them. AWS publishes no text for a stop caused by
unreadable alarms; opendeploy's (:data:`ALARM_UNAVAILABLE_MESSAGE`) follows the same pattern and says
why each alarm could not be read. Both use the error code ``ALARM_ACTIVE``, the only alarm code the API
has; :attr:`AlarmVerdict.cause` tells the two apart for whoever needs to (rollback, events).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from opendeploy.domain.deployment_style import AlarmConfiguration
from opendeploy.domain.statuses import ErrorCode

__all__ = [
    "ALARM_ACTIVE_MESSAGE",
    "ALARM_UNAVAILABLE_MESSAGE",
    "AlarmCheck",
    "AlarmReading",
    "AlarmState",
    "AlarmVerdict",
    "StopCause",
    "Unavailability",
    "check_alarms",
    "watched_alarms",
]

ALARM_ACTIVE_MESSAGE = (
    "One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and "
    "the affected deployments have been stopped. Activated alarms: {alarms}"
)
ALARM_UNAVAILABLE_MESSAGE = (
    "The state of one or more alarms could not be retrieved, and the affected deployments have been "
    "stopped (the alarm configuration does not ignore alarm poll failures). Unavailable alarms: {alarms}"
)
IGNORED_UNAVAILABLE_MESSAGE = (
    "The state of one or more alarms could not be retrieved; the deployment continues because the alarm "
    "configuration ignores alarm poll failures. Unavailable alarms: {alarms}"
)
MAX_REASON_LENGTH = 300  # one alarm's reason in a message (a source's error can be long)


class AlarmState(StrEnum):
    """An alarm's state as a deployment sees it: CloudWatch's three states, and UNAVAILABLE."""

    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
    UNAVAILABLE = "UNAVAILABLE"  # could not be read: see AlarmReading.unavailability and .reason


class Unavailability(StrEnum):
    """Why an alarm's state could not be read."""

    MISSING = "missing"  # the source answered, and has no such alarm
    UNREADABLE = "unreadable"  # the source could not be reached, refused, or answered nonsense


@dataclass(frozen=True)
class AlarmReading:
    """One alarm's state as its source reported it. ``reason`` is the source's own explanation (the
    CloudWatch StateReason, the firing alerts) or, when UNAVAILABLE, why it could not be read."""

    state: AlarmState
    reason: str = ""
    unavailability: Unavailability | None = None

    @classmethod
    def ok(cls, reason: str = "") -> AlarmReading:
        return cls(AlarmState.OK, reason)

    @classmethod
    def alarm(cls, reason: str = "") -> AlarmReading:
        return cls(AlarmState.ALARM, reason)

    @classmethod
    def insufficient_data(cls, reason: str = "") -> AlarmReading:
        return cls(AlarmState.INSUFFICIENT_DATA, reason)

    @classmethod
    def missing(cls, reason: str) -> AlarmReading:
        """The source has no alarm by this name (e.g. "alarm 'x' does not exist in CloudWatch …")."""
        return cls(AlarmState.UNAVAILABLE, reason, Unavailability.MISSING)

    @classmethod
    def unreadable(cls, reason: str) -> AlarmReading:
        """The source could not say (unreachable, an error, an answer that makes no sense)."""
        return cls(AlarmState.UNAVAILABLE, reason, Unavailability.UNREADABLE)

    @property
    def available(self) -> bool:
        return self.state is not AlarmState.UNAVAILABLE


class AlarmCheck(StrEnum):
    CONTINUE = "CONTINUE"
    STOP = "STOP"


class StopCause(StrEnum):
    ALARM_ACTIVATED = "ALARM_ACTIVATED"  # at least one alarm in ALARM
    ALARM_UNAVAILABLE = "ALARM_UNAVAILABLE"  # none in ALARM, but some could not be read


NO_READING = "no reading was taken for this alarm"


@dataclass(frozen=True)
class AlarmVerdict:
    """The decision, the alarms it rests on, and what the deployment says about it.

    ``activated``: the alarms in ALARM; ``unavailable``: (name, reason) of the alarms that could not be
    read, whether or not that stops the deployment (with ``ignorePollAlarmFailure`` they are reported in
    :attr:`notice` only). Names keep the alarm configuration's order.
    """

    decision: AlarmCheck
    activated: tuple[str, ...] = ()
    unavailable: tuple[tuple[str, str], ...] = ()
    cause: StopCause | None = None

    @property
    def stops(self) -> bool:
        return self.decision is AlarmCheck.STOP

    @property
    def error_code(self) -> ErrorCode | None:
        """``errorInformation.code`` of the stopped deployment (None when it continues)."""
        return ErrorCode.ALARM_ACTIVE if self.stops else None

    @property
    def message(self) -> str | None:
        """``errorInformation.message`` of the stopped deployment (None when it continues)."""
        if self.cause is StopCause.ALARM_ACTIVATED:
            return ALARM_ACTIVE_MESSAGE.format(alarms=" ".join(f"<{name}>" for name in self.activated))
        if self.cause is StopCause.ALARM_UNAVAILABLE:
            return ALARM_UNAVAILABLE_MESSAGE.format(alarms=_with_reasons(self.unavailable))
        return None

    @property
    def notice(self) -> str | None:
        """A line for ``deploymentStatusMessages`` when the deployment continues although some alarms
        could not be read (``ignorePollAlarmFailure``); None otherwise."""
        if self.stops or not self.unavailable:
            return None
        return IGNORED_UNAVAILABLE_MESSAGE.format(alarms=_with_reasons(self.unavailable))


def watched_alarms(configuration: AlarmConfiguration) -> tuple[str, ...]:
    """The alarms to read for a deployment: none while the configuration is disabled (they would be
    ignored anyway), else each configured name once, in order."""
    if not configuration.enabled:
        return ()
    return tuple(dict.fromkeys(configuration.alarm_names))


def check_alarms(configuration: AlarmConfiguration, states: Mapping[str, AlarmReading]) -> AlarmVerdict:
    """CONTINUE or STOP by the guide's rules (module docstring). An alarm of the configuration that has
    no entry in ``states`` counts as unreadable: a reading that was never taken says nothing is well."""
    names = watched_alarms(configuration)
    if not names:
        return AlarmVerdict(AlarmCheck.CONTINUE)
    activated: list[str] = []
    unavailable: list[tuple[str, str]] = []
    for name in names:
        reading = states.get(name)
        if reading is None:
            unavailable.append((name, NO_READING))
        elif reading.state is AlarmState.ALARM:
            activated.append(name)
        elif reading.state is AlarmState.UNAVAILABLE:
            unavailable.append((name, reading.reason or "its state could not be retrieved"))
    if activated:
        return AlarmVerdict(AlarmCheck.STOP, tuple(activated), tuple(unavailable), StopCause.ALARM_ACTIVATED)
    if unavailable and not configuration.ignore_poll_alarm_failure:
        return AlarmVerdict(AlarmCheck.STOP, (), tuple(unavailable), StopCause.ALARM_UNAVAILABLE)
    return AlarmVerdict(AlarmCheck.CONTINUE, (), tuple(unavailable))


def _with_reasons(unavailable: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"<{name}> ({_short(reason)})" for name, reason in unavailable)


def _short(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= MAX_REASON_LENGTH else reason[: MAX_REASON_LENGTH - 1] + "…"

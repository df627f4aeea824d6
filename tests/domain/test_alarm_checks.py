"""The stop-on-alarm decision (``domain/alarm_checks``), table-style on the guide's rules: any alarm in
ALARM stops; an unreadable or missing one stops unless ignorePollAlarmFailure; INSUFFICIENT_DATA
continues; ``enabled: false`` ignores everything; and the words a stopped deployment carries."""

from __future__ import annotations

import pytest

from opendeploy.domain.alarm_checks import (
    ALARM_ACTIVE_MESSAGE,
    AlarmCheck,
    AlarmReading,
    AlarmState,
    AlarmVerdict,
    StopCause,
    Unavailability,
    check_alarms,
    watched_alarms,
)
from opendeploy.domain.deployment_style import AlarmConfiguration
from opendeploy.domain.statuses import ErrorCode

OK = AlarmReading.ok()
ALARM = AlarmReading.alarm("Threshold Crossed: 1 datapoint [7.0] was greater than the threshold (1.0).")
NO_DATA = AlarmReading.insufficient_data()
MISSING = AlarmReading.missing("alarm 'b' does not exist in CloudWatch (us-east-1)")
DOWN = AlarmReading.unreadable("CloudWatch DescribeAlarms: Throttling: Rate exceeded")

CONTINUE = AlarmVerdict(AlarmCheck.CONTINUE)


def config(*names: str, enabled: bool = True, ignore_failure: bool = False) -> AlarmConfiguration:
    return AlarmConfiguration(enabled, ignore_failure, names)


@pytest.mark.parametrize(
    ("configuration", "readings", "expected"),
    [
        # All quiet.
        (config("a", "b"), {"a": OK, "b": OK}, CONTINUE),
        # INSUFFICIENT_DATA is not "activated" (L20266–20268): continue.
        (config("a", "b"), {"a": NO_DATA, "b": OK}, CONTINUE),
        # One in ALARM stops (L20266–20268), whatever the others say.
        (
            config("a", "b"),
            {"a": OK, "b": ALARM},
            AlarmVerdict(AlarmCheck.STOP, ("b",), (), StopCause.ALARM_ACTIVATED),
        ),
        (
            config("a", "b", "c"),
            {"a": ALARM, "b": DOWN, "c": ALARM},
            AlarmVerdict(AlarmCheck.STOP, ("a", "c"), (("b", DOWN.reason),), StopCause.ALARM_ACTIVATED),
        ),
        # ignorePollAlarmFailure never ignores an alarm that is read and in ALARM.
        (
            config("a", "b", ignore_failure=True),
            {"a": DOWN, "b": ALARM},
            AlarmVerdict(AlarmCheck.STOP, ("b",), (("a", DOWN.reason),), StopCause.ALARM_ACTIVATED),
        ),
        # A missing alarm (DescribeAlarms left it out) or an unreachable source stops by default...
        (
            config("a", "b"),
            {"a": OK, "b": MISSING},
            AlarmVerdict(AlarmCheck.STOP, (), (("b", MISSING.reason),), StopCause.ALARM_UNAVAILABLE),
        ),
        (
            config("a"),
            {"a": DOWN},
            AlarmVerdict(AlarmCheck.STOP, (), (("a", DOWN.reason),), StopCause.ALARM_UNAVAILABLE),
        ),
        # ... and an alarm nobody reported on at all counts as unreadable.
        (
            config("a", "b"),
            {"a": OK},
            AlarmVerdict(
                AlarmCheck.STOP,
                (),
                (("b", "no reading was taken for this alarm"),),
                StopCause.ALARM_UNAVAILABLE,
            ),
        ),
        # "Continue deployments even if alarm status is unavailable" (L17092–17099).
        (
            config("a", "b", ignore_failure=True),
            {"a": MISSING, "b": DOWN},
            AlarmVerdict(AlarmCheck.CONTINUE, (), (("a", MISSING.reason), ("b", DOWN.reason))),
        ),
        (
            config("a", ignore_failure=True),
            {},
            AlarmVerdict(AlarmCheck.CONTINUE, (), (("a", "no reading was taken for this alarm"),)),
        ),
        # "Ignore alarm configuration" (enabled: false, L17086–17090): nothing stops the deployment.
        (config("a", "b", enabled=False), {"a": ALARM, "b": DOWN}, CONTINUE),
        (config("a", enabled=False), {}, CONTINUE),
        # Enabled with no alarms (the API refuses it, but old records may hold it): nothing to watch.
        (config(), {}, CONTINUE),
        # Readings for alarms the configuration does not name change nothing.
        (config("a"), {"a": OK, "other": ALARM}, CONTINUE),
    ],
)
def test_the_guides_rules(
    configuration: AlarmConfiguration, readings: dict[str, AlarmReading], expected: AlarmVerdict
) -> None:
    assert check_alarms(configuration, readings) == expected


def test_alarms_are_read_only_while_enabled_and_each_once_in_order() -> None:
    assert watched_alarms(config("b", "a", "b")) == ("b", "a")
    assert watched_alarms(config("b", "a", enabled=False)) == ()
    assert watched_alarms(AlarmConfiguration.from_wire(None)) == ()
    wire = {"enabled": True, "ignorePollAlarmFailure": True, "alarms": [{"name": "x"}, {"name": "y"}]}
    assert watched_alarms(AlarmConfiguration.from_wire(wire)) == ("x", "y")


def test_an_activated_alarm_carries_aws_words() -> None:
    verdict = check_alarms(
        config("api-5xx", "latency", "cpu"), {"api-5xx": ALARM, "latency": OK, "cpu": ALARM}
    )

    assert verdict.stops
    assert verdict.error_code is ErrorCode.ALARM_ACTIVE
    assert verdict.message == (
        "One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, "
        "and the affected deployments have been stopped. Activated alarms: <api-5xx> <cpu>"
    )
    assert verdict.notice is None


def test_unreadable_alarms_say_why() -> None:
    verdict = check_alarms(config("a", "b"), {"a": MISSING, "b": AlarmReading.unreadable("line one\n  two")})

    assert verdict.error_code is ErrorCode.ALARM_ACTIVE
    assert verdict.cause is StopCause.ALARM_UNAVAILABLE
    assert verdict.message == (
        "The state of one or more alarms could not be retrieved, and the affected deployments have been "
        "stopped (the alarm configuration does not ignore alarm poll failures). Unavailable alarms: "
        "<a> (alarm 'b' does not exist in CloudWatch (us-east-1)) <b> (line one two)"
    )


def test_ignored_failures_are_a_status_message_not_an_error() -> None:
    verdict = check_alarms(config("a", "b", ignore_failure=True), {"a": OK, "b": DOWN})

    assert not verdict.stops
    assert (verdict.error_code, verdict.message) == (None, None)
    assert verdict.notice == (
        "The state of one or more alarms could not be retrieved; the deployment continues because the "
        "alarm configuration ignores alarm poll failures. Unavailable alarms: "
        "<b> (CloudWatch DescribeAlarms: Throttling: Rate exceeded)"
    )
    assert check_alarms(config("a"), {"a": OK}).notice is None


def test_a_long_reason_is_shortened() -> None:
    verdict = check_alarms(config("a"), {"a": AlarmReading.unreadable("x" * 5000)})
    assert verdict.message is not None
    assert len(verdict.message) < 600
    assert verdict.message.endswith("x…)")


def test_readings() -> None:
    assert (MISSING.state, MISSING.unavailability, MISSING.available) == (
        AlarmState.UNAVAILABLE,
        Unavailability.MISSING,
        False,
    )
    assert (DOWN.unavailability, OK.available, NO_DATA.available) == (Unavailability.UNREADABLE, True, True)
    assert ALARM_ACTIVE_MESSAGE.endswith("Activated alarms: {alarms}")

"""Which source reads which alarm name (``integrations/alarms``): plain and ``cloudwatch:`` names are
CloudWatch alarms, ``prometheus:`` alerting rules (from Alertmanager when the server has one),
``promql:`` conditions; names this server cannot read are unavailable with the reason; a source that
raises or forgets a name cannot hide the others; and the in-memory fake engine tests use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from opendeploy.domain.alarm_checks import AlarmReading, AlarmState, Unavailability
from opendeploy.integrations.alarms import (
    AlarmKind,
    FakeAlarmSource,
    alarm_name_problem,
    alarm_sources_for,
    parse_alarm_name,
    read_alarms,
)
from opendeploy.integrations.cloudwatch_alarms import CloudWatchAlarms
from opendeploy.integrations.prometheus_alarms import AlertmanagerAlerts, PrometheusAlerts, PromQLConditions
from opendeploy.settings import AlarmSettings, Settings

PROMETHEUS = AlarmSettings(prometheus_url="http://prometheus.test:9090")
BOTH = AlarmSettings(prometheus_url="http://prometheus.test:9090", alertmanager_url="http://am.test:9093")
NONE = AlarmSettings()


def no_aws(service: str) -> Any:
    raise AssertionError(f"no AWS client should be made, asked for {service}")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("api-5xx", (AlarmKind.CLOUDWATCH, "api-5xx")),
        ("MyApp: errors", (AlarmKind.CLOUDWATCH, "MyApp: errors")),
        ("Prometheus:HighErrors", (AlarmKind.CLOUDWATCH, "Prometheus:HighErrors")),  # prefixes are exact
        ("cloudwatch:prometheus:odd", (AlarmKind.CLOUDWATCH, "prometheus:odd")),
        (
            'prometheus:HighErrors{service="checkout"}',
            (AlarmKind.PROMETHEUS_ALERT, 'HighErrors{service="checkout"}'),
        ),
        ("promql:rate(errors_total[1m]) > 0.05", (AlarmKind.PROMQL, "rate(errors_total[1m]) > 0.05")),
    ],
)
def test_names_by_prefix(name: str, expected: tuple[AlarmKind, str]) -> None:
    assert parse_alarm_name(name) == expected


def test_each_name_goes_to_its_source_by_the_name_it_knows() -> None:
    routed = alarm_sources_for(
        [
            "api-5xx",
            "prometheus:High",
            "promql:up == 0",
            "cloudwatch:cpu",
            'prometheus:Low{a="b"}',
            "api-5xx",
        ],
        PROMETHEUS,
        aws_client=no_aws,
    )

    assert [(type(source), names) for source, names in routed] == [
        (CloudWatchAlarms, {"api-5xx": "api-5xx", "cloudwatch:cpu": "cpu"}),
        (PrometheusAlerts, {"prometheus:High": "High", 'prometheus:Low{a="b"}': 'Low{a="b"}'}),
        (PromQLConditions, {"promql:up == 0": "up == 0"}),
    ]
    again = alarm_sources_for(["api-5xx", "prometheus:High"], PROMETHEUS, aws_client=no_aws)
    assert [source for source, _ in again] == [routed[0][0], routed[1][0]]  # kept for the process


def test_prometheus_alerts_come_from_alertmanager_when_the_server_has_one() -> None:
    routed = alarm_sources_for(["prometheus:High", "promql:up == 0"], BOTH, aws_client=no_aws)
    assert [type(source) for source, _ in routed] == [AlertmanagerAlerts, PromQLConditions]
    assert isinstance(routed[0][0], AlertmanagerAlerts) and routed[0][0].url == "http://am.test:9093"

    only_alertmanager = AlarmSettings(alertmanager_url="http://am.test:9093")
    assert alarm_name_problem("prometheus:High", only_alertmanager) is None
    assert "without --prometheus-url" in (alarm_name_problem("promql:up", only_alertmanager) or "")


def test_names_this_server_cannot_read_are_unavailable_with_the_reason() -> None:
    found = read_alarms(
        ["prometheus:High", "promql:up == 0", "promql:  ", "prometheus:"], NONE, aws_client=no_aws
    )

    assert {name: r.unavailability for name, r in found.items()} == dict.fromkeys(
        found, Unavailability.UNREADABLE
    )
    assert found["prometheus:High"].reason == (
        "alarm 'prometheus:High' is a Prometheus alert, but this server was started without --prometheus-url "
        "or --alertmanager-url"
    )
    assert found["promql:up == 0"].reason == (
        "alarm 'promql:up == 0' is a PromQL condition, but this server was started without --prometheus-url"
    )
    assert found["promql:  "].reason == "alarm name 'promql:  ' names no promql"
    assert found["prometheus:"].reason == "alarm name 'prometheus:' names no prometheus"


def test_alarm_name_problems_for_an_early_answer() -> None:
    assert alarm_name_problem("api-5xx", NONE) is None
    assert alarm_name_problem('prometheus:High{service="a"}', PROMETHEUS) is None
    assert alarm_name_problem("promql:sum(rate(x[1m])) > 1", PROMETHEUS) is None
    assert alarm_name_problem("cloudwatch:", NONE) == "alarm name 'cloudwatch:' names no alarm"
    assert "is longer than 255 characters" in (alarm_name_problem("a" * 256, NONE) or "")
    assert alarm_name_problem("prometheus:High{service=a}", PROMETHEUS) == (
        "alarm 'prometheus:High{service=a}': 'High{service=a}': cannot read the label matchers at "
        "'service=a' "
        '(expected label="value", label!="value", label=~"regex" or label!~"regex")'
    )


class Raising:
    def readings(self, names: Sequence[str]) -> Mapping[str, AlarmReading]:
        raise RuntimeError("boom")


class Forgetful:
    def readings(self, names: Sequence[str]) -> Mapping[str, AlarmReading]:
        return {names[0]: AlarmReading.ok()}


def test_a_source_that_raises_or_forgets_a_name_cannot_hide_it() -> None:
    assert read_alarms(["a", "b"], AlarmSettings(source=Raising())) == dict.fromkeys(
        ["a", "b"], AlarmReading.unreadable("reading the alarm failed: RuntimeError: boom")
    )
    assert read_alarms(["a", "b"], AlarmSettings(source=Forgetful())) == {
        "a": AlarmReading.ok(),
        "b": AlarmReading.unreadable("its source returned no reading"),
    }


def test_the_fake_source_for_engine_tests() -> None:
    fake = FakeAlarmSource()
    settings = AlarmSettings(source=fake, poll_interval=0.1)
    fake.set("api-5xx", AlarmState.OK)
    fake.set("prometheus:High", AlarmState.ALARM, "2 alert(s) firing")

    found = read_alarms(["prometheus:High", "api-5xx", "gone"], settings)

    assert found == {
        "prometheus:High": AlarmReading.alarm("2 alert(s) firing"),
        "api-5xx": AlarmReading.ok(),
        "gone": AlarmReading.missing("alarm 'gone' does not exist"),
    }
    assert fake.calls == [("prometheus:High", "api-5xx", "gone")]

    fake.fail("CloudWatch is down")
    assert read_alarms(["api-5xx"], settings) == {"api-5xx": AlarmReading.unreadable("CloudWatch is down")}
    fake.recover()
    fake.delete("api-5xx")
    assert read_alarms(["api-5xx"], settings)["api-5xx"].unavailability is Unavailability.MISSING


def test_settings_defaults() -> None:
    alarms = Settings(data_dir=Path("/tmp/opendeploy")).alarms
    assert (alarms.prometheus_url, alarms.alertmanager_url, alarms.poll_interval, alarms.request_timeout) == (
        None,
        None,
        30.0,
        10.0,
    )
    assert AlarmSettings(source=FakeAlarmSource()) == AlarmSettings()  # the fake is not configuration

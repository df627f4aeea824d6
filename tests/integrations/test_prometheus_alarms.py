"""Prometheus and Alertmanager as alarm sources (``integrations/prometheus_alarms``), against a real
Prometheus and Alertmanager from Debian scraping a metric each test controls: an alerting rule that
fires reads ALARM (pending does not), its label matchers, a rule that does not exist or fails, PromQL
conditions (samples, empty, scalars, NaN, errors), Alertmanager's active and silenced alerts, and
sources that cannot be reached or do not answer. Answers a real Prometheus does not give on demand
(odd documents, HTTP errors) are fed through httpx's mock transport.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from opendeploy.domain.alarm_checks import AlarmReading, AlarmState, Unavailability
from opendeploy.integrations.alarms import read_alarms
from opendeploy.integrations.prometheus_alarms import (
    AlertmanagerAlerts,
    AlertSelector,
    LabelMatcher,
    PrometheusAlerts,
    PromQLConditions,
)
from opendeploy.settings import AlarmSettings
from support import prometheus as prom
from support.server import free_port, wait_for

RULES = """
groups:
  - name: opendeploy-tests
    rules:
      - alert: CheckoutErrors
        expr: test_checkout_errors > 0
        for: 0s
        labels: {severity: page}
      - alert: ServiceErrors
        expr: test_service_errors > 0
        for: 0s
      - alert: SlowToFire
        expr: test_slow > 0
        for: 1h
      - alert: BrokenRule
        expr: test_duplicate * on() vector(1)
        for: 0s
"""

OK, ALARM = AlarmState.OK, AlarmState.ALARM


@dataclass
class Monitoring:
    exporter: prom.MetricsExporter
    prometheus: prom.Prometheus
    alertmanager: prom.Alertmanager

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a sample and wait until Prometheus has it."""
        self.exporter.set(name, value, **labels)
        self.prometheus.wait_until_scraped()


@pytest.fixture(scope="module")
def monitoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitoring]:
    reason = prom.unavailable_reason() or prom.alertmanager_unavailable_reason()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("prometheus")
    exporter = prom.MetricsExporter.start()
    exporter.set("test_checkout_errors", 0, service="checkout")
    exporter.set("test_duplicate", 1, copy="1")
    exporter.set("test_duplicate", 1, copy="2")
    alertmanager = prom.Alertmanager.start(workdir / "alertmanager")
    prometheus = prom.Prometheus.start(
        workdir / "prometheus", targets=[exporter.target], rules=RULES, alertmanager=alertmanager.address
    )
    try:
        prometheus.wait_until_scraped()
        yield Monitoring(exporter, prometheus, alertmanager)
    finally:
        prometheus.stop()
        alertmanager.stop()
        exporter.stop()


@pytest.fixture(scope="module")
def alerts(monitoring: Monitoring) -> Iterator[PrometheusAlerts]:
    source = PrometheusAlerts(monitoring.prometheus.url, timeout=5.0)
    yield source
    source.close()


@pytest.fixture(scope="module")
def conditions(monitoring: Monitoring) -> Iterator[PromQLConditions]:
    source = PromQLConditions(monitoring.prometheus.url, timeout=5.0)
    yield source
    source.close()


def reading(source: Any, name: str) -> AlarmReading:
    answer: AlarmReading = source.readings([name])[name]
    return answer


def becomes(source: Any, name: str, state: AlarmState, *, timeout: float = 10.0) -> AlarmReading:
    found: AlarmReading = wait_for(
        lambda: (r := reading(source, name)).state is state and r,
        timeout=timeout,
        interval=0.05,
        message=f"{name} reading {state}",
    )
    return found


# --- alerting rules through /api/v1/rules ----------------------------------------------------------


def test_a_firing_alert_is_alarm_until_it_resolves(monitoring: Monitoring, alerts: PrometheusAlerts) -> None:
    quiet = reading(alerts, "CheckoutErrors")
    assert (quiet.state, quiet.reason) == (OK, "no alert firing")

    monitoring.exporter.set("test_checkout_errors", 7, service="checkout")
    firing = becomes(alerts, "CheckoutErrors", ALARM)
    target = monitoring.exporter.target
    assert firing.reason == (
        f'1 alert(s) firing: CheckoutErrors{{instance="{target}", job="test", service="checkout", '
        'severity="page"}'
    )

    monitoring.exporter.set("test_checkout_errors", 0, service="checkout")
    becomes(alerts, "CheckoutErrors", OK)


def test_label_matchers_choose_the_alerts_that_count(
    monitoring: Monitoring, alerts: PrometheusAlerts
) -> None:
    monitoring.exporter.set("test_service_errors", 0, service="checkout")
    monitoring.exporter.set("test_service_errors", 3, service="search")
    becomes(alerts, "ServiceErrors", ALARM)

    names = [
        'ServiceErrors{service="search"}',
        'ServiceErrors{service="checkout"}',
        'ServiceErrors{service=~"check.*"}',
        'ServiceErrors{service=~"check"}',  # anchored, as in PromQL: "check" is not "checkout"
        'ServiceErrors{service!="checkout"}',
        'ServiceErrors{service!~"s.*", job="test"}',
        'ServiceErrors{ job = "test" , service="search", }',
        'ServiceErrors{zone=""}',  # a label the alert lacks is ""
    ]
    states = {name: r.state for name, r in alerts.readings(names).items()}
    assert states == {
        'ServiceErrors{service="search"}': ALARM,
        'ServiceErrors{service="checkout"}': OK,
        'ServiceErrors{service=~"check.*"}': OK,
        'ServiceErrors{service=~"check"}': OK,
        'ServiceErrors{service!="checkout"}': ALARM,
        'ServiceErrors{service!~"s.*", job="test"}': OK,
        'ServiceErrors{ job = "test" , service="search", }': ALARM,
        'ServiceErrors{zone=""}': ALARM,
    }
    monitoring.exporter.set("test_service_errors", 0, service="search")
    becomes(alerts, "ServiceErrors", OK)


def test_a_pending_alert_is_not_an_alarm(monitoring: Monitoring, alerts: PrometheusAlerts) -> None:
    monitoring.exporter.set("test_slow", 1)
    monitoring.prometheus.wait_for_rule("SlowToFire", "pending")

    pending = reading(alerts, "SlowToFire")

    assert pending.state is OK
    assert pending.reason.startswith("1 alert(s) pending: SlowToFire{")


def test_a_rule_that_does_not_exist_is_missing(monitoring: Monitoring, alerts: PrometheusAlerts) -> None:
    missing = reading(alerts, "CheckoutErorrs")

    assert (missing.state, missing.unavailability) == (AlarmState.UNAVAILABLE, Unavailability.MISSING)
    assert missing.reason == (
        f"no alerting rule named 'CheckoutErorrs' in Prometheus at {monitoring.prometheus.url}"
    )


def test_a_failing_rule_is_unreadable(monitoring: Monitoring, alerts: PrometheusAlerts) -> None:
    broken = wait_for(
        lambda: (r := reading(alerts, "BrokenRule")).state is AlarmState.UNAVAILABLE and r,
        timeout=10,
        message="BrokenRule evaluated",
    )

    assert broken.unavailability is Unavailability.UNREADABLE
    assert broken.reason.startswith("the alerting rule 'BrokenRule' fails: ")
    assert "many-to-one matching must be explicit" in broken.reason  # Prometheus's own error


def test_a_selector_that_does_not_parse_reads_as_missing(alerts: PrometheusAlerts) -> None:
    answer = alerts.readings(["CheckoutErrors{service=checkout}", 'X{a=~"("}', "{a='b'}", "CheckoutErrors"])

    assert answer["CheckoutErrors"].available  # the good name in the same batch is read
    assert answer["CheckoutErrors{service=checkout}"].unavailability is Unavailability.MISSING
    assert (
        "cannot read the label matchers at 'service=checkout'"
        in answer["CheckoutErrors{service=checkout}"].reason
    )
    assert "the regular expression '(' is invalid" in answer['X{a=~"("}'].reason
    assert answer["{a='b'}"].reason == "\"{a='b'}\" names no alert"


# --- PromQL conditions through /api/v1/query -------------------------------------------------------


def test_a_promql_condition_alarms_while_it_returns_samples(
    monitoring: Monitoring, conditions: PromQLConditions
) -> None:
    expression = 'test_error_ratio{service="checkout"} > 0.05'
    monitoring.set("test_error_ratio", 0.01, service="checkout")
    assert reading(conditions, expression) == AlarmReading.ok("the expression returns no sample")

    monitoring.set("test_error_ratio", 0.25, service="checkout")
    assert reading(conditions, expression) == AlarmReading.alarm(
        f'1 sample(s): test_error_ratio{{instance="{monitoring.exporter.target}", job="test", '
        'service="checkout"} = 0.25'
    )


def test_promql_results_read_as_alert_conditions(
    monitoring: Monitoring, conditions: PromQLConditions
) -> None:
    monitoring.set("test_nan", float("nan"))
    expressions = {
        "up == 0": OK,  # every target is up: no sample
        "vector(0)": ALARM,  # a sample, whatever its value (as an alerting rule's expr)
        "count(up) > bool 5": ALARM,
        "scalar(count(up))": ALARM,  # a scalar: non-zero
        "scalar(count(up)) - 1": OK,  # zero
    }
    answer = conditions.readings(list(expressions))
    assert {expression: r.state for expression, r in answer.items()} == expressions
    assert answer["scalar(count(up))"].reason == "the expression's value is 1"

    unreadable = conditions.readings(["0/0", "test_nan", "up[1m]", '"text"', "sum(", ""])
    reasons = {expression: r.reason for expression, r in unreadable.items()}
    assert all(r.state is AlarmState.UNAVAILABLE for r in unreadable.values())
    assert reasons["0/0"] == "the expression's value is NaN"
    assert reasons["test_nan"] == "every sample of the expression is NaN"
    assert reasons["up[1m]"] == "the expression is a range vector; an alarm needs an instant vector"
    assert reasons['"text"'] == "the expression's result is a string, not a number or a vector"
    assert reasons["sum("].startswith(f"Prometheus at {monitoring.prometheus.url}: bad_data: ")
    assert reasons[""] == "an empty PromQL expression"


def test_read_alarms_sends_each_name_to_its_source(monitoring: Monitoring, alerts: PrometheusAlerts) -> None:
    monitoring.set("test_checkout_errors", 2, service="checkout")
    settings = AlarmSettings(prometheus_url=monitoring.prometheus.url, request_timeout=5.0)
    try:
        becomes(alerts, "CheckoutErrors", ALARM)

        found = read_alarms(
            [
                "prometheus:CheckoutErrors",
                'promql:test_checkout_errors{service="checkout"} > 5',
                "prometheus:Nope",
            ],
            settings,
        )
    finally:
        monitoring.exporter.set("test_checkout_errors", 0, service="checkout")

    assert {name: r.state for name, r in found.items()} == {
        "prometheus:CheckoutErrors": ALARM,
        'promql:test_checkout_errors{service="checkout"} > 5': OK,
        "prometheus:Nope": AlarmState.UNAVAILABLE,
    }


def test_the_documented_http_error_rate_example(monitoring: Monitoring, alerts: PrometheusAlerts) -> None:
    """The example of ``integrations/alarms``: an alerting rule on the HTTP error rate (added with a
    reload), and the same condition as a promql: name, go off when 5xx answers rise."""
    rule = """
  - name: shop
    rules:
      - alert: HighErrorRate
        expr: sum by (service) (rate(http_requests_total{code=~"5.."}[1m]))
              / sum by (service) (rate(http_requests_total[1m])) > 0.05
        for: 0s
"""
    monitoring.prometheus.set_rules(RULES + rule)
    condition = (
        'sum(rate(http_requests_total{service="shop",code=~"5.."}[1m])) '
        '/ sum(rate(http_requests_total{service="shop"}[1m])) > 0.05'
    )
    names = ['prometheus:HighErrorRate{service="shop"}', f"promql:{condition}"]
    settings = AlarmSettings(prometheus_url=monitoring.prometheus.url)
    exporter = monitoring.exporter
    exporter.set("http_requests_total", 0, service="shop", code="200")
    exporter.set("http_requests_total", 0, service="shop", code="500")
    monitoring.prometheus.wait_until_scraped()
    exporter.inc("http_requests_total", 1000, service="shop", code="200")  # the old version serves
    monitoring.prometheus.wait_until_scraped()
    wait_for(  # OK once the new rule has been evaluated (INSUFFICIENT_DATA before)
        lambda: all(r.state is OK for r in read_alarms(names, settings).values()),
        timeout=10,
        message="the error-rate alarms OK",
    )

    exporter.inc("http_requests_total", 500, service="shop", code="500")  # the new one fails
    monitoring.prometheus.wait_until_scraped()

    wait_for(
        lambda: all(r.state is ALARM for r in read_alarms(names, settings).values()),
        timeout=10,
        message="the error-rate alarms",
    )


# --- Alertmanager ----------------------------------------------------------------------------------


def test_alertmanager_reads_active_alerts_and_respects_silences(monitoring: Monitoring) -> None:
    source = AlertmanagerAlerts(monitoring.alertmanager.url, timeout=5.0)
    monitoring.exporter.set("test_service_errors", 4, service="billing")
    try:
        firing = becomes(source, 'ServiceErrors{service="billing"}', ALARM)
        assert firing.reason.startswith("1 alert(s) active: ServiceErrors{")
        assert reading(source, 'ServiceErrors{service="search"}').state is OK
        # Alertmanager knows only alerts that fire: a misspelt name cannot be told from a quiet one.
        assert reading(source, "ServiceErorrs") == AlarmReading.ok("no active alert")

        silence = monitoring.alertmanager.silence({"alertname": "ServiceErrors", "service": "billing"})
        becomes(source, 'ServiceErrors{service="billing"}', OK)
        monitoring.alertmanager.expire(silence)
        becomes(source, 'ServiceErrors{service="billing"}', ALARM)
    finally:
        monitoring.exporter.set("test_service_errors", 0, service="billing")
        source.close()


def test_read_alarms_takes_prometheus_alerts_from_alertmanager_when_configured(
    monitoring: Monitoring,
) -> None:
    settings = AlarmSettings(
        prometheus_url=monitoring.prometheus.url, alertmanager_url=monitoring.alertmanager.url
    )
    # The rule exists in Prometheus, but Alertmanager is asked: no active alert, so OK, not missing.
    assert (
        read_alarms(["prometheus:SlowToFire"], settings)["prometheus:SlowToFire"].reason == "no active alert"
    )


# --- sources that cannot be read -------------------------------------------------------------------


@pytest.mark.parametrize("source_class", [PrometheusAlerts, AlertmanagerAlerts, PromQLConditions])
def test_an_unreachable_source_makes_every_alarm_unreadable(source_class: type[Any]) -> None:
    port = free_port()  # nothing listens there
    source = source_class(f"http://opendeploy:s3cret@127.0.0.1:{port}/", timeout=2.0)

    answer = source.readings(["up > 0", "Other"])

    assert set(answer) == {"up > 0", "Other"}
    for found in answer.values():
        assert (found.state, found.unavailability) == (AlarmState.UNAVAILABLE, Unavailability.UNREADABLE)
        assert found.reason.startswith(f"{source.kind} at http://127.0.0.1:{port} could not be reached: ")
        assert "s3cret" not in found.reason


def test_a_source_that_does_not_answer_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (the backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        source = PrometheusAlerts(url, timeout=0.3)

        found = reading(source, "CheckoutErrors")

    assert found == AlarmReading.unreadable(f"Prometheus at {url} did not answer within 0.3 s")


# --- answers a real Prometheus does not give on demand ---------------------------------------------


def mocked(source_class: type[Any], status: int, body: Any) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    return source_class("http://prometheus.test", client=httpx.Client(transport=httpx.MockTransport(answer)))


@pytest.mark.parametrize(
    ("source_class", "status", "body", "reason"),
    [
        (
            PromQLConditions,
            503,
            "<html>Service Unavailable</html>",
            "answered HTTP 503: <html>Service Unavailable</html>",
        ),
        (PromQLConditions, 200, "not json", "answered something that is not JSON: 'not json'"),
        (
            PromQLConditions,
            200,
            {"status": "success", "data": None},
            "Prometheus answered an unexpected document",
        ),
        (
            PromQLConditions,
            200,
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}},
            "Prometheus answered an unreadable vector result",
        ),
        (
            PromQLConditions,
            422,
            {"status": "error", "errorType": "execution", "error": "query timed out"},
            "Prometheus at http://prometheus.test: execution: query timed out",
        ),
        (
            PrometheusAlerts,
            200,
            {"status": "success", "data": {}},
            "Prometheus answered an unexpected rules document",
        ),
        (
            AlertmanagerAlerts,
            200,
            {"alerts": []},
            "Alertmanager at http://prometheus.test answered an unexpected document",
        ),
    ],
)
def test_odd_answers_are_unreadable(source_class: type[Any], status: int, body: Any, reason: str) -> None:
    found = reading(mocked(source_class, status, body), "up")
    assert found.state is AlarmState.UNAVAILABLE
    assert found.reason.endswith(reason), found.reason


def test_rules_of_the_same_name_in_several_groups_count_together() -> None:
    def rule(state: str, health: str = "ok", service: str = "a") -> dict[str, Any]:
        alerts = (
            []
            if state == "inactive"
            else [{"labels": {"alertname": "E", "service": service}, "state": state}]
        )
        return {"type": "alerting", "name": "E", "state": state, "health": health, "alerts": alerts}

    groups = {
        "status": "success",
        "data": {"groups": [{"rules": [rule("inactive")]}, {"rules": [rule("firing", service="b")]}]},
    }
    source = mocked(PrometheusAlerts, 200, groups)
    assert source.readings(["E", 'E{service="a"}']) == {
        "E": AlarmReading.alarm('1 alert(s) firing: E{service="b"}'),
        'E{service="a"}': AlarmReading.ok("no alert firing"),
    }

    never = {"status": "success", "data": {"groups": [{"rules": [rule("inactive", "unknown")]}]}}
    assert reading(mocked(PrometheusAlerts, 200, never), "E").state is AlarmState.INSUFFICIENT_DATA


def test_selectors_parse_promql_matchers() -> None:
    assert AlertSelector.parse("High Error Rate") == AlertSelector("High Error Rate")
    assert AlertSelector.parse(r'E{a="x\"y", b!~"z|w"}') == AlertSelector(
        "E", (LabelMatcher("a", "=", 'x"y'), LabelMatcher("b", "!~", "z|w"))
    )
    for bad in ('E{a="x"', "E{a}", 'E{1a="x"}', "  "):
        with pytest.raises(ValueError):
            AlertSelector.parse(bad)


def test_prometheus_is_a_debian_binary() -> None:
    reason = prom.unavailable_reason()
    if reason:
        pytest.skip(reason)
    assert Path(prom.PROMETHEUS).exists()

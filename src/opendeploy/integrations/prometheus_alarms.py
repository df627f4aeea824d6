"""Prometheus as an alarm source, for people whose monitoring is Prometheus rather than CloudWatch
(``integrations/alarms`` says which alarm names come here).

Three readers, plain HTTP with a timeout on every request (no client library: three GETs and their JSON):

- :class:`PrometheusAlerts` — ``prometheus:<alert>[{matchers}]`` from ``GET /api/v1/rules?type=alert``
  rather than ``/api/v1/alerts``: the rules endpoint also lists the rules that are quiet, so a misspelt
  alert name reads as *missing* (as a CloudWatch alarm that does not exist does) instead of as OK
  forever. ALARM while an alert of a rule by that name, whose labels match, is ``firing``; ``pending``
  (its ``for`` not yet over) is OK; a rule whose query fails (health ``err``) is unreadable with
  Prometheus's error; a rule never evaluated yet (health ``unknown``) is INSUFFICIENT_DATA.
- :class:`AlertmanagerAlerts` — the same names from Alertmanager's ``GET /api/v2/alerts``: ALARM while
  an alert of that name whose labels match is active (neither silenced nor inhibited: a silence is the
  operator saying "known, ignore it"); unprocessed counts as active. Alertmanager only knows alerts that
  fire, so it cannot tell a misspelt name from a quiet one; it sees every Prometheus that sends to it.
- :class:`PromQLConditions` — ``promql:<expression>`` from ``GET /api/v1/query`` (an instant query):
  read like an alerting rule's ``expr``, a vector with any sample is ALARM and an empty one OK (so
  ``up == 0`` alarms when a target is down, and rule expressions can be copied as they are); a scalar is
  ALARM when non-zero; NaN (``0/0``: no traffic) says nothing and is unreadable, as is a range vector, a
  string or an error.

Matchers are PromQL's: ``name="v"``, ``!=``, ``=~`` and ``!~`` (regular expressions match the whole
value), comma-separated; a label an alert lacks has the value ``""``. Alert names themselves may be any
string without ``{``.

Errors (unreachable, timeout, HTTP errors, an answer that is not Prometheus's JSON) make every alarm of
the request unreadable with the reason; a URL's user and password (``http://user:pass@host``, sent as
basic authentication) never appear in a reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from opendeploy.domain.alarm_checks import AlarmReading

DEFAULT_TIMEOUT = 10.0
MAX_LISTED = 3  # alerts or samples named in a reading's reason

_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


class SourceError(Exception):
    """A request to Prometheus or Alertmanager failed; the message says why, without credentials."""


@dataclass(frozen=True)
class LabelMatcher:
    name: str
    operator: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.operator == "=":
            return actual == self.value
        if self.operator == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.operator == "=~" else not found


@dataclass(frozen=True)
class AlertSelector:
    """``<alert>`` or ``<alert>{<matchers>}``: an alert name and the labels its alerts must have."""

    alert_name: str
    matchers: tuple[LabelMatcher, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AlertSelector:
        """Raises ValueError, saying what is wrong, for a selector that does not parse."""
        name, brace, rest = text.partition("{")
        name = name.strip()
        if not name:
            raise ValueError(f"{text!r} names no alert")
        if not brace:
            return cls(name)
        if not rest.rstrip().endswith("}"):
            raise ValueError(f"{text!r}: the label matchers must end with '}}'")
        body = rest.rstrip()[:-1]
        matchers: list[LabelMatcher] = []
        position = 0
        while body[position:].strip():
            found = _MATCHER.match(body, position)
            if found is None:
                raise ValueError(
                    f"{text!r}: cannot read the label matchers at {body[position:].strip()!r} "
                    '(expected label="value", label!="value", label=~"regex" or label!~"regex")'
                )
            label, operator, raw = found.groups()
            value = json.loads(f'"{raw}"') if "\\" in raw else raw
            if operator in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as error:
                    raise ValueError(
                        f"{text!r}: the regular expression {value!r} is invalid: {error}"
                    ) from None
            matchers.append(LabelMatcher(label, operator, value))
            position = found.end()
        return cls(name, tuple(matchers))

    def selects(self, labels: Mapping[str, str]) -> bool:
        return all(matcher.matches(labels) for matcher in self.matchers)


class _HttpSource:
    """One HTTP client (pooled connections, a timeout on every request) for one base URL."""

    kind = "Prometheus"

    def __init__(
        self, url: str, *, timeout: float = DEFAULT_TIMEOUT, client: httpx.Client | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._client = client or httpx.Client(timeout=httpx.Timeout(timeout))
        self._shown = _without_credentials(self.url)

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, params: Mapping[str, Any] | list[tuple[str, str]]) -> Any:
        where = f"{self.kind} at {self._shown}"
        try:
            response = self._client.get(f"{self.url}{path}", params=params)
        except httpx.TimeoutException:
            raise SourceError(f"{where} did not answer within {self.timeout:g} s") from None
        except httpx.HTTPError as error:
            raise SourceError(f"{where} could not be reached: {_without_credentials(str(error))}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":  # Prometheus's API errors
            raise SourceError(f"{where}: {body.get('errorType', 'error')}: {body.get('error', '')}")
        if response.status_code >= 400:
            detail = _snippet(response.text)
            raise SourceError(
                f"{where} answered HTTP {response.status_code}{': ' + detail if detail else ''}"
            )
        if body is None:
            raise SourceError(f"{where} answered something that is not JSON: {_snippet(response.text)!r}")
        return body


class PrometheusAlerts(_HttpSource):
    """Alerting rules of one Prometheus, by ``<alert>[{matchers}]`` (module docstring)."""

    def readings(self, names: Sequence[str]) -> Mapping[str, AlarmReading]:
        wanted = list(dict.fromkeys(names))
        selectors, found = _selectors(wanted)
        if not selectors:
            return found
        try:
            rules = _alerting_rules(self._get("/api/v1/rules", {"type": "alert"}))
        except SourceError as error:
            found.update(dict.fromkeys(selectors, AlarmReading.unreadable(str(error))))
        else:
            for name, selector in selectors.items():
                named = [rule for rule in rules if rule.get("name") == selector.alert_name]
                found[name] = self._reading(selector, named)
        return {name: found[name] for name in wanted}  # in the order asked

    def _reading(self, selector: AlertSelector, rules: list[Mapping[str, Any]]) -> AlarmReading:
        if not rules:
            return AlarmReading.missing(
                f"no alerting rule named {selector.alert_name!r} in Prometheus at {self._shown}"
            )
        alerts = [
            alert
            for rule in rules
            for alert in rule.get("alerts") or ()
            if isinstance(alert, Mapping) and selector.selects(_labels(alert))
        ]
        firing = [alert for alert in alerts if alert.get("state") == "firing"]
        if firing:
            return AlarmReading.alarm(_alerts_reason("firing", firing))
        broken = [rule for rule in rules if rule.get("health") == "err"]
        if broken:
            return AlarmReading.unreadable(
                f"the alerting rule {selector.alert_name!r} fails: {broken[0].get('lastError') or 'error'}"
            )
        if all(rule.get("health") == "unknown" for rule in rules):
            return AlarmReading.insufficient_data(
                f"the alerting rule {selector.alert_name!r} was not evaluated yet"
            )
        pending = [alert for alert in alerts if alert.get("state") == "pending"]
        return AlarmReading.ok(_alerts_reason("pending", pending) if pending else "no alert firing")


class AlertmanagerAlerts(_HttpSource):
    """Active alerts of one Alertmanager, by ``<alert>[{matchers}]`` (module docstring)."""

    kind = "Alertmanager"

    def readings(self, names: Sequence[str]) -> Mapping[str, AlarmReading]:
        wanted = list(dict.fromkeys(names))
        selectors, found = _selectors(wanted)
        answers: dict[str, list[Mapping[str, Any]] | SourceError] = {}
        for name, selector in selectors.items():
            alert_name = selector.alert_name
            if alert_name not in answers:
                answers[alert_name] = self._alerts(alert_name)
            answer = answers[alert_name]
            if isinstance(answer, SourceError):
                found[name] = AlarmReading.unreadable(str(answer))
                continue
            active = [
                alert
                for alert in answer
                if (alert.get("status") or {}).get("state") in ("active", "unprocessed")
                and selector.selects(_labels(alert))
            ]
            found[name] = (
                AlarmReading.alarm(_alerts_reason("active", active))
                if active
                else AlarmReading.ok("no active alert")
            )
        return {name: found[name] for name in wanted}  # in the order asked

    def _alerts(self, alert_name: str) -> list[Mapping[str, Any]] | SourceError:
        params = [
            ("filter", f"alertname={json.dumps(alert_name)}"),
            ("active", "true"),
            ("silenced", "false"),
            ("inhibited", "false"),
            ("unprocessed", "true"),
        ]
        try:
            answer = self._get("/api/v2/alerts", params)
        except SourceError as error:
            return error
        if not isinstance(answer, list):
            return SourceError(f"Alertmanager at {self._shown} answered an unexpected document")
        return [alert for alert in answer if isinstance(alert, Mapping)]


class PromQLConditions(_HttpSource):
    """PromQL expressions of one Prometheus, read as alert conditions (module docstring)."""

    def readings(self, names: Sequence[str]) -> Mapping[str, AlarmReading]:
        found: dict[str, AlarmReading] = {}
        for expression in dict.fromkeys(names):
            if not expression.strip():
                found[expression] = AlarmReading.missing("an empty PromQL expression")
                continue
            try:
                found[expression] = _condition(self._get("/api/v1/query", {"query": expression}))
            except SourceError as error:
                found[expression] = AlarmReading.unreadable(str(error))
        return found


def _condition(body: Any) -> AlarmReading:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return AlarmReading.unreadable("Prometheus answered an unexpected document")
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "scalar":
            value = float(result[1])
            if math.isnan(value):
                return AlarmReading.unreadable("the expression's value is NaN")
            if value:
                return AlarmReading.alarm(f"the expression's value is {result[1]}")
            return AlarmReading.ok("the expression's value is 0")
        if kind == "vector":
            samples = [(sample.get("metric") or {}, float(sample["value"][1])) for sample in result]
            numbers = [(metric, value) for metric, value in samples if not math.isnan(value)]
            if numbers:
                shown = ", ".join(f"{_series(metric)} = {value:g}" for metric, value in numbers[:MAX_LISTED])
                more = f" and {len(numbers) - MAX_LISTED} more" if len(numbers) > MAX_LISTED else ""
                return AlarmReading.alarm(f"{len(numbers)} sample(s): {shown}{more}")
            if samples:
                return AlarmReading.unreadable("every sample of the expression is NaN")
            return AlarmReading.ok("the expression returns no sample")
    except (TypeError, KeyError, IndexError, ValueError, AttributeError):
        return AlarmReading.unreadable(f"Prometheus answered an unreadable {kind} result")
    if kind == "matrix":
        return AlarmReading.unreadable("the expression is a range vector; an alarm needs an instant vector")
    return AlarmReading.unreadable(f"the expression's result is a {kind}, not a number or a vector")


def _selectors(names: list[str]) -> tuple[dict[str, AlertSelector], dict[str, AlarmReading]]:
    selectors: dict[str, AlertSelector] = {}
    invalid: dict[str, AlarmReading] = {}
    for name in names:
        try:
            selectors[name] = AlertSelector.parse(name)
        except ValueError as error:
            invalid[name] = AlarmReading.missing(str(error))
    return selectors, invalid


def _alerting_rules(body: Any) -> list[Mapping[str, Any]]:
    try:
        groups = body["data"]["groups"]
        return [
            rule
            for group in groups
            for rule in group.get("rules") or ()
            if isinstance(rule, Mapping) and rule.get("type", "alerting") == "alerting"
        ]
    except (TypeError, KeyError, AttributeError):
        raise SourceError("Prometheus answered an unexpected rules document") from None


def _labels(alert: Mapping[str, Any]) -> Mapping[str, str]:
    labels = alert.get("labels")
    return labels if isinstance(labels, Mapping) else {}


def _alerts_reason(state: str, alerts: list[Mapping[str, Any]]) -> str:
    shown = ", ".join(_series(_labels(alert)) for alert in alerts[:MAX_LISTED])
    more = f" and {len(alerts) - MAX_LISTED} more" if len(alerts) > MAX_LISTED else ""
    return f"{len(alerts)} alert(s) {state}: {shown}{more}"


def _series(labels: Mapping[str, Any]) -> str:
    name = labels.get("__name__") or labels.get("alertname") or ""
    rest = ", ".join(
        f"{key}={json.dumps(str(value))}"
        for key, value in sorted(labels.items())
        if key not in ("__name__", "alertname")
    )
    return f"{name}{{{rest}}}"


def _without_credentials(text: str) -> str:
    return re.sub(r"(https?://)[^/@\s]*@", r"\1", text)


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

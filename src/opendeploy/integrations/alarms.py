"""Alarms as the engine sees them: a small interface that reads alarm states, its in-memory fake for
engine tests, and the rule that sends each alarm name of an alarm configuration to its source.

**Alarm names.** A deployment group's ``alarmConfiguration.alarms[].name`` is a free-form string of up
to 255 characters (the API model documents the length and sets no pattern). opendeploy reads it by its
prefix:

===================================  ==========================================================
name                                 read from
===================================  ==========================================================
``api-5xx`` (no known prefix)        the CloudWatch alarm of that name (DescribeAlarms), as AWS
                                     CodeDeploy does: existing configurations work unchanged
``cloudwatch:<name>``                the CloudWatch alarm ``<name>``, for a CloudWatch alarm whose
                                     own name starts with one of these prefixes
``prometheus:<alert>``               the Prometheus alerting rule ``alert: <alert>``: ALARM while
``prometheus:<alert>{<matchers>}``   one of its alerts is *firing* (pending is not), restricted to
                                     the alerts whose labels match (PromQL matchers ``=``, ``!=``,
                                     ``=~``, ``!~``); from Prometheus's ``/api/v1/rules`` (a rule
                                     that does not exist reads as missing), or from Alertmanager's
                                     ``/api/v2/alerts`` (active alerts: not silenced, not
                                     inhibited) when the server has ``--alertmanager-url``
``promql:<expression>``              an instant query of Prometheus, read as an alerting rule's
                                     ``expr`` is: ALARM when it returns any sample, OK when it
                                     returns none (a scalar: ALARM when non-zero); NaN and errors
                                     make it unreadable
===================================  ==========================================================

Prefixes are lower case and exact. Why this rule: a plain name must keep meaning what it means on AWS
(a CloudWatch alarm, so existing scripts and templates work unchanged), every other source needs a
marker that no sensible CloudWatch name starts with, and ``cloudwatch:`` keeps even such a CloudWatch
alarm reachable. ``promql:`` reads a vector as Prometheus reads an alerting rule's ``expr`` (any sample
fires, whatever its value) rather than "any non-zero sample", so that ``up == 0`` and expressions copied
from rule files mean what they mean there.

Example: stop (and, with DEPLOYMENT_STOP_ON_ALARM, roll back) a deployment when the new version's HTTP
error rate rises above 5 %. With an alerting rule in Prometheus::

    groups:
      - name: checkout
        rules:
          - alert: HighErrorRate
            expr: sum by (service) (rate(http_requests_total{code=~"5.."}[1m]))
                  / sum by (service) (rate(http_requests_total[1m])) > 0.05
            for: 30s

    aws deploy update-deployment-group --application-name shop --current-deployment-group-name web \\
      --alarm-configuration '{"enabled": true,
          "alarms": [{"name": "prometheus:HighErrorRate{service=\\"checkout\\"}"}]}' \\
      --auto-rollback-configuration enabled=true,events=DEPLOYMENT_STOP_ON_ALARM

or with the condition itself as the name (255 characters at most: longer ones belong in a recording
rule)::

    promql:sum(rate(http_requests_total{service="checkout",code=~"5.."}[1m]))
      / sum(rate(http_requests_total{service="checkout"}[1m])) > 0.05

A name a source cannot serve — ``prometheus:`` on a server without ``--prometheus-url`` or
``--alertmanager-url``, ``promql:`` without ``--prometheus-url``, a matcher that does not parse — reads
as unavailable with the reason, so ``ignorePollAlarmFailure`` decides, as for a CloudWatch alarm that
does not exist.

**Sources never raise for one bad alarm**: every name asked for gets a reading, an unreadable one saying
why (``domain/alarm_checks``). :func:`read_alarms` also turns anything a source raises into unreadable
readings, so one broken source cannot hide the others' alarms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from opendeploy.domain.alarm_checks import AlarmReading, AlarmState
from opendeploy.integrations import aws_clients
from opendeploy.integrations.cloudwatch_alarms import CloudWatchAlarms
from opendeploy.integrations.prometheus_alarms import (
    AlertmanagerAlerts,
    AlertSelector,
    PrometheusAlerts,
    PromQLConditions,
)
from opendeploy.settings import AlarmSettings

__all__ = [
    "CLOUDWATCH_PREFIX",
    "PROMETHEUS_PREFIX",
    "PROMQL_PREFIX",
    "AlarmKind",
    "AlarmReading",
    "AlarmSource",
    "AlarmState",
    "FakeAlarmSource",
    "alarm_name_problem",
    "alarm_sources_for",
    "parse_alarm_name",
    "read_alarms",
]

CLOUDWATCH_PREFIX = "cloudwatch:"
PROMETHEUS_PREFIX = "prometheus:"
PROMQL_PREFIX = "promql:"
MAX_ALARM_NAME_LENGTH = 255


class AlarmSource(Protocol):
    """Something that knows the state of alarms. ``readings`` answers every name it is given (an
    alarm it cannot read is an unavailable reading that says why) and raises for nothing that concerns
    one alarm; a source is shared by threads."""

    def readings(self, names: Sequence[str]) -> Mapping[str, AlarmReading]: ...


class AlarmKind(StrEnum):
    CLOUDWATCH = "cloudwatch"
    PROMETHEUS_ALERT = "prometheus"
    PROMQL = "promql"


def parse_alarm_name(name: str) -> tuple[AlarmKind, str]:
    """The source an alarm name is read from, and the name that source knows it by."""
    for prefix, kind in (
        (CLOUDWATCH_PREFIX, AlarmKind.CLOUDWATCH),
        (PROMETHEUS_PREFIX, AlarmKind.PROMETHEUS_ALERT),
        (PROMQL_PREFIX, AlarmKind.PROMQL),
    ):
        if name.startswith(prefix):
            return kind, name[len(prefix) :]
    return AlarmKind.CLOUDWATCH, name


def alarm_name_problem(name: str, settings: AlarmSettings) -> str | None:
    """Why this server cannot read the alarm ``name`` at all, or None: for an early, clear answer
    (e.g. when a deployment group is saved) instead of a deployment stopped by an unreadable alarm."""
    kind, local = parse_alarm_name(name)
    if len(name) > MAX_ALARM_NAME_LENGTH:
        return f"alarm name {_shown(name)} is longer than {MAX_ALARM_NAME_LENGTH} characters"
    if not local.strip():
        return f"alarm name {name!r} names no {'alarm' if kind is AlarmKind.CLOUDWATCH else kind.value}"
    if kind is AlarmKind.PROMETHEUS_ALERT:
        if not (settings.prometheus_url or settings.alertmanager_url):
            return (
                f"alarm {_shown(name)} is a Prometheus alert, but this server was started without "
                "--prometheus-url or --alertmanager-url"
            )
        try:
            AlertSelector.parse(local)
        except ValueError as error:
            return f"alarm {_shown(name)}: {error}"
    if kind is AlarmKind.PROMQL and not settings.prometheus_url:
        return (
            f"alarm {_shown(name)} is a PromQL condition, but this server was started without "
            "--prometheus-url"
        )
    return None


def alarm_sources_for(
    names: Sequence[str],
    settings: AlarmSettings,
    *,
    aws_client: Callable[[str], Any] = aws_clients.client,
) -> list[tuple[AlarmSource, dict[str, str]]]:
    """Each source that reads some of ``names``, with ``{alarm name: the name the source knows}``.
    Sources are kept per configuration for the life of the process (their HTTP connections pool)."""
    if settings.source is not None:
        return [(settings.source, {name: name for name in names})]
    routed: dict[tuple[Any, ...], tuple[AlarmSource, dict[str, str]]] = {}
    for name in dict.fromkeys(names):
        kind, local = parse_alarm_name(name)
        problem = _unservable(name, kind, local, settings)
        if problem is not None:
            key: tuple[Any, ...] = ("unavailable", problem)
            source: AlarmSource = UnavailableSource(problem)
        elif kind is AlarmKind.CLOUDWATCH:
            key = ("cloudwatch", aws_client)
            source = _kept(key, lambda: _cloudwatch(aws_client))
        elif kind is AlarmKind.PROMETHEUS_ALERT and settings.alertmanager_url:
            key = ("alertmanager", settings.alertmanager_url, settings.request_timeout)
            source = _kept(key, lambda: _alertmanager(settings))
        elif kind is AlarmKind.PROMETHEUS_ALERT:
            key = ("prometheus-rules", settings.prometheus_url, settings.request_timeout)
            source = _kept(key, lambda: _prometheus_rules(settings))
        else:
            key = ("promql", settings.prometheus_url, settings.request_timeout)
            source = _kept(key, lambda: _promql(settings))
        routed.setdefault(key, (source, {}))[1][name] = local
    return list(routed.values())


def read_alarms(
    names: Sequence[str],
    settings: AlarmSettings,
    *,
    aws_client: Callable[[str], Any] = aws_clients.client,
) -> dict[str, AlarmReading]:
    """A reading for every name in ``names``, each from its source (module docstring)."""
    found: dict[str, AlarmReading] = {}
    for source, local_names in alarm_sources_for(names, settings, aws_client=aws_client):
        wanted = list(dict.fromkeys(local_names.values()))
        try:
            answer = source.readings(wanted)
        except Exception as error:  # a source must not raise; if it does, its alarms are unreadable
            failed = AlarmReading.unreadable(f"reading the alarm failed: {type(error).__name__}: {error}")
            answer = dict.fromkeys(wanted, failed)
        for name, local in local_names.items():
            found[name] = answer.get(local) or AlarmReading.unreadable("its source returned no reading")
    return {name: found[name] for name in dict.fromkeys(names)}  # in the order asked


@dataclass
class UnavailableSource:
    """Every alarm it is asked for is unreadable, for one reason (a source the server lacks)."""

    reason: str

    def readings(self, names: Sequence[str]) -> Mapping[str, AlarmReading]:
        return dict.fromkeys(names, AlarmReading.unreadable(self.reason))


@dataclass
class FakeAlarmSource:
    """In-memory alarms for engine tests: the test sets states; an alarm it never set is missing (as
    DescribeAlarms leaves it out); ``fail`` makes every reading unreadable until ``recover``. ``calls``
    records each batch of names read, for tests about cadence."""

    states: dict[str, AlarmReading] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    failure: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, name: str, state: AlarmState | AlarmReading, reason: str = "") -> None:
        reading = state if isinstance(state, AlarmReading) else AlarmReading(state, reason)
        with self._lock:
            self.states[name] = reading

    def delete(self, name: str) -> None:
        with self._lock:
            self.states.pop(name, None)

    def fail(self, reason: str = "the alarm source could not be reached") -> None:
        with self._lock:
            self.failure = reason

    def recover(self) -> None:
        with self._lock:
            self.failure = None

    def readings(self, names: Sequence[str]) -> Mapping[str, AlarmReading]:
        with self._lock:
            self.calls.append(tuple(names))
            if self.failure is not None:
                return dict.fromkeys(names, AlarmReading.unreadable(self.failure))
            return {
                name: self.states.get(name) or AlarmReading.missing(f"alarm {name!r} does not exist")
                for name in names
            }


_KEPT: dict[tuple[Any, ...], AlarmSource] = {}
_LOCK = threading.Lock()


def _kept(key: tuple[Any, ...], make: Callable[[], AlarmSource]) -> AlarmSource:
    with _LOCK:
        source = _KEPT.get(key)
        if source is None:
            source = _KEPT[key] = make()
        return source


def _unservable(name: str, kind: AlarmKind, local: str, settings: AlarmSettings) -> str | None:
    """A reason every reading of ``name`` is unavailable on this server, or None. CloudWatch and
    Prometheus answer for their own names (a name too long, a matcher that does not parse)."""
    if kind is AlarmKind.CLOUDWATCH:
        return None
    if not local.strip() or _lacks_url(kind, settings):
        return alarm_name_problem(name, settings)
    return None


def _lacks_url(kind: AlarmKind, settings: AlarmSettings) -> bool:
    if kind is AlarmKind.PROMQL:
        return not settings.prometheus_url
    return not (settings.prometheus_url or settings.alertmanager_url)


def _cloudwatch(aws_client: Callable[[str], Any]) -> AlarmSource:
    return CloudWatchAlarms(aws_client=aws_client)


def _prometheus_rules(settings: AlarmSettings) -> AlarmSource:
    return PrometheusAlerts(settings.prometheus_url or "", timeout=settings.request_timeout)


def _alertmanager(settings: AlarmSettings) -> AlarmSource:
    return AlertmanagerAlerts(settings.alertmanager_url or "", timeout=settings.request_timeout)


def _promql(settings: AlarmSettings) -> AlarmSource:
    return PromQLConditions(settings.prometheus_url or "", timeout=settings.request_timeout)


def _shown(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:79] + "…")

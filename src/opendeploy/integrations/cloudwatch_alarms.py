"""CloudWatch alarms as an alarm source: the alarms AWS CodeDeploy itself watches, read the way it reads
them, with DescribeAlarms (the guide's service-role policy grants ``cloudwatch:DescribeAlarms`` and
nothing else, L20278–20318).

- One call per 100 names (the API's limit for ``AlarmNames``), following ``NextToken``; metric and
  composite alarms both (``AlarmTypes``: without it DescribeAlarms returns metric alarms only).
- DescribeAlarms silently leaves out names it does not know, so a name missing from its answer reads
  as :meth:`~opendeploy.domain.alarm_checks.AlarmReading.missing`: "alarm 'x' does not exist in
  CloudWatch (us-east-1)". So does a name CloudWatch could not hold (empty, longer than 255
  characters), checked here so that it does not spoil its batch.
- StateValue OK / ALARM / INSUFFICIENT_DATA is the reading, with CloudWatch's StateReason.
- An AWS error (throttling, access denied, an unreachable endpoint, no region or credentials) makes
  every alarm of the failed call unreadable, with AWS's code and message.

The client is the server's own (``integrations/aws_clients``: standard SDK configuration, including
``AWS_ENDPOINT_URL_CLOUDWATCH`` / ``AWS_ENDPOINT_URL``, standard retries), made at the first read so a
server without AWS configuration reports it in the readings instead of failing at start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import botocore.exceptions

from opendeploy.domain.alarm_checks import AlarmReading, AlarmState
from opendeploy.integrations import aws_clients

BATCH_SIZE = 100  # DescribeAlarms: AlarmNames holds at most 100 names
MAX_NAME_LENGTH = 255  # CloudWatch's AlarmName: 1–255 characters
ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]
STATES = {state.value: state for state in (AlarmState.OK, AlarmState.ALARM, AlarmState.INSUFFICIENT_DATA)}


class CloudWatchAlarms:
    """CloudWatch alarms by name (module docstring). ``client`` is a botocore CloudWatch client; without
    one, the server's (``aws_client("cloudwatch")``) is made at the first read."""

    def __init__(self, client: Any = None, *, aws_client: Callable[[str], Any] = aws_clients.client) -> None:
        self._client = client
        self._aws_client = aws_client
        self._lock = threading.Lock()

    def readings(self, names: Sequence[str]) -> Mapping[str, AlarmReading]:
        wanted = list(dict.fromkeys(names))
        found: dict[str, AlarmReading] = {}
        valid = []
        for name in wanted:
            if not name or len(name) > MAX_NAME_LENGTH:
                found[name] = AlarmReading.missing(
                    f"{name[:40]!r}… is not a CloudWatch alarm name (1 to {MAX_NAME_LENGTH} characters)"
                    if name
                    else "an empty name is not a CloudWatch alarm name"
                )
            else:
                valid.append(name)
        if not valid:
            return found
        try:
            client = self._cloudwatch()
        except (aws_clients.AwsConfigurationError, botocore.exceptions.BotoCoreError) as error:
            failed = AlarmReading.unreadable(f"CloudWatch: {error}")
            return {name: found.get(name, failed) for name in wanted}
        region = client.meta.region_name
        for start in range(0, len(valid), BATCH_SIZE):
            batch = valid[start : start + BATCH_SIZE]
            found.update(_describe(client, batch, region))
        return {name: found[name] for name in wanted}  # in the order asked

    def _cloudwatch(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._aws_client("cloudwatch")
            return self._client


def _describe(client: Any, names: list[str], region: str) -> dict[str, AlarmReading]:
    described: dict[str, AlarmReading] = {}
    request: dict[str, Any] = {"AlarmNames": names, "AlarmTypes": ALARM_TYPES, "MaxRecords": BATCH_SIZE}
    try:
        while True:
            answer = client.describe_alarms(**request)
            for alarm in [*answer.get("MetricAlarms", ()), *answer.get("CompositeAlarms", ())]:
                name = alarm.get("AlarmName")
                if name in names:
                    described[name] = _reading(alarm)
            token = answer.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
    except botocore.exceptions.ClientError as error:
        details = error.response.get("Error", {})
        failed = AlarmReading.unreadable(
            f"CloudWatch DescribeAlarms failed: {details.get('Code', 'error')}: {details.get('Message', '')}"
        )
        return dict.fromkeys(names, failed)
    except botocore.exceptions.BotoCoreError as error:
        return dict.fromkeys(names, AlarmReading.unreadable(f"CloudWatch DescribeAlarms failed: {error}"))
    return {
        name: described.get(name)
        or AlarmReading.missing(f"alarm {name!r} does not exist in CloudWatch ({region})")
        for name in names
    }


def _reading(alarm: Mapping[str, Any]) -> AlarmReading:
    value = alarm.get("StateValue")
    state = STATES.get(value or "")
    if state is None:
        return AlarmReading.unreadable(f"CloudWatch reported the unknown state {value!r}")
    return AlarmReading(state, alarm.get("StateReason") or "")

"""CloudWatch alarms as an alarm source (``integrations/cloudwatch_alarms``), against a real moto server:
states driven with SetAlarmState (moto never evaluates alarms from metric data, spec §2), names
DescribeAlarms leaves out read as missing, more than 100 names in batches of 100, AWS errors and an
unreachable endpoint as unreadable readings, and the server's own AWS clients through the standard
environment. moto cannot create composite alarms (PutCompositeAlarm answers 500) and ignores
NextToken, so those answers of AWS are fed through botocore's Stubber, which checks them against the
service model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
from botocore.stub import Stubber

from opendeploy.domain.alarm_checks import AlarmReading, AlarmState, Unavailability
from opendeploy.integrations import aws_clients
from opendeploy.integrations.alarms import read_alarms
from opendeploy.integrations.cloudwatch_alarms import ALARM_TYPES, CloudWatchAlarms
from opendeploy.settings import AlarmSettings
from support.moto import MotoServer
from support.names import unique
from support.server import free_port


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def cloudwatch(moto: MotoServer) -> Any:
    return moto.client("cloudwatch")


def put_alarm(cloudwatch: Any, name: str | None = None) -> str:
    name = name or unique("alarm")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="opendeploy/tests",
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    return name


def offline_client(endpoint_url: str | None = None) -> Any:
    return boto3.session.Session(
        aws_access_key_id="AKIAOFFLINE000000000", aws_secret_access_key="x", region_name="us-east-1"
    ).client(
        "cloudwatch",
        endpoint_url=endpoint_url,
        config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )


def test_alarm_states_as_set_with_set_alarm_state(cloudwatch: Any) -> None:
    first, second = put_alarm(cloudwatch), put_alarm(cloudwatch)
    source = CloudWatchAlarms(cloudwatch)
    assert {name: r.state for name, r in source.readings([first, second]).items()} == {
        first: AlarmState.OK,  # moto starts alarms in OK (AWS: INSUFFICIENT_DATA until evaluated)
        second: AlarmState.OK,
    }

    cloudwatch.set_alarm_state(AlarmName=second, StateValue="ALARM", StateReason="5xx above 5%")
    cloudwatch.set_alarm_state(AlarmName=first, StateValue="INSUFFICIENT_DATA", StateReason="no data")

    assert source.readings([first, second]) == {
        first: AlarmReading.insufficient_data("no data"),
        second: AlarmReading.alarm("5xx above 5%"),
    }

    cloudwatch.set_alarm_state(AlarmName=second, StateValue="OK", StateReason="back to normal")
    assert source.readings([second]) == {second: AlarmReading.ok("back to normal")}


def test_a_name_describe_alarms_leaves_out_is_missing(cloudwatch: Any) -> None:
    present, absent = put_alarm(cloudwatch), unique("no-such-alarm")

    answer = CloudWatchAlarms(cloudwatch).readings([absent, present, absent])

    assert list(answer) == [absent, present]
    assert answer[present].state is AlarmState.OK
    assert answer[absent] == AlarmReading.missing(
        f"alarm '{absent}' does not exist in CloudWatch (us-east-1)"
    )
    assert answer[absent].unavailability is Unavailability.MISSING


def test_names_cloudwatch_cannot_hold_do_not_spoil_their_batch(cloudwatch: Any) -> None:
    present, too_long = put_alarm(cloudwatch), "x" * 256

    answer = CloudWatchAlarms(cloudwatch).readings([present, too_long, ""])

    assert answer[present].state is AlarmState.OK
    assert answer[too_long].unavailability is Unavailability.MISSING
    assert answer[too_long].reason.endswith("is not a CloudWatch alarm name (1 to 255 characters)")
    assert answer[""].reason == "an empty name is not a CloudWatch alarm name"


def test_more_than_100_names_are_read_100_at_a_time(cloudwatch: Any) -> None:
    prefix = unique("many")
    names = [put_alarm(cloudwatch, f"{prefix}-{n:03}") for n in range(120)]
    cloudwatch.set_alarm_state(AlarmName=names[110], StateValue="ALARM", StateReason="in the second batch")
    missing = [f"{prefix}-missing-{n}" for n in range(85)]
    batches: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        batches.append(len(params["AlarmNames"]))
        assert params["AlarmTypes"] == ALARM_TYPES

    cloudwatch.meta.events.register("provide-client-params.cloudwatch.DescribeAlarms", count)
    try:
        answer = CloudWatchAlarms(cloudwatch).readings([*names, *missing])
    finally:
        cloudwatch.meta.events.unregister("provide-client-params.cloudwatch.DescribeAlarms", count)

    assert batches == [100, 100, 5]
    assert len(answer) == 205
    assert [n for n, r in answer.items() if r.state is AlarmState.ALARM] == [names[110]]
    assert {n for n, r in answer.items() if r.unavailability is Unavailability.MISSING} == set(missing)


def test_composite_alarms_and_pages_as_aws_answers_them() -> None:
    client = offline_client()
    now = datetime.now(UTC)
    with Stubber(client) as stub:
        stub.add_response(
            "describe_alarms",
            {
                "MetricAlarms": [{"AlarmName": "cpu", "StateValue": "OK", "StateReason": "fine"}],
                "NextToken": "page-2",
            },
            {"AlarmNames": ["cpu", "service-health", "gone"], "AlarmTypes": ALARM_TYPES, "MaxRecords": 100},
        )
        stub.add_response(
            "describe_alarms",
            {
                "CompositeAlarms": [
                    {
                        "AlarmName": "service-health",
                        "AlarmRule": 'ALARM("cpu") OR ALARM("5xx")',
                        "StateValue": "ALARM",
                        "StateReason": "5xx is in ALARM",
                        "StateUpdatedTimestamp": now,
                    }
                ]
            },
            {
                "AlarmNames": ["cpu", "service-health", "gone"],
                "AlarmTypes": ALARM_TYPES,
                "MaxRecords": 100,
                "NextToken": "page-2",
            },
        )
        answer = CloudWatchAlarms(client).readings(["cpu", "service-health", "gone"])

    assert answer == {
        "cpu": AlarmReading.ok("fine"),
        "service-health": AlarmReading.alarm("5xx is in ALARM"),
        "gone": AlarmReading.missing("alarm 'gone' does not exist in CloudWatch (us-east-1)"),
    }


def test_an_aws_error_makes_the_batch_unreadable_with_aws_words() -> None:
    client = offline_client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_alarms",
            service_error_code="AccessDenied",
            service_message="User: arn:aws:iam::123456789012:user/opendeploy is not authorized to perform: "
            "cloudwatch:DescribeAlarms",
            http_status_code=403,
        )
        answer = CloudWatchAlarms(client).readings(["a", "b"])

    assert (
        answer["a"]
        == answer["b"]
        == AlarmReading.unreadable(
            "CloudWatch DescribeAlarms failed: AccessDenied: User: "
            "arn:aws:iam::123456789012:user/opendeploy is not authorized to perform: "
            "cloudwatch:DescribeAlarms"
        )
    )


def test_an_unreachable_endpoint_is_unreadable() -> None:
    source = CloudWatchAlarms(offline_client(f"http://127.0.0.1:{free_port()}"))

    answer = source.readings(["a"])

    assert answer["a"].unavailability is Unavailability.UNREADABLE
    assert answer["a"].reason.startswith(
        "CloudWatch DescribeAlarms failed: Could not connect to the endpoint URL"
    )


# --- the server's own clients ----------------------------------------------------------------------


@pytest.fixture
def server_clients(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's own AWS clients (aws_clients) pointed at moto through the environment."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in moto.env.items():
        monkeypatch.setenv(name, value)
    aws_clients.reset()
    yield
    aws_clients.reset()


def test_read_alarms_reads_cloudwatch_through_the_servers_clients(
    cloudwatch: Any, server_clients: None
) -> None:
    plain, odd = put_alarm(cloudwatch), put_alarm(cloudwatch, f"prometheus:{unique('odd')}")
    cloudwatch.set_alarm_state(AlarmName=odd, StateValue="ALARM", StateReason="odd name, real alarm")
    names = [plain, f"cloudwatch:{plain}", f"cloudwatch:{odd}", "absent-alarm"]

    found = read_alarms(names, AlarmSettings())

    assert found == {
        plain: AlarmReading.ok(found[plain].reason),
        f"cloudwatch:{plain}": found[plain],
        f"cloudwatch:{odd}": AlarmReading.alarm("odd name, real alarm"),
        "absent-alarm": AlarmReading.missing("alarm 'absent-alarm' does not exist in CloudWatch (us-east-1)"),
    }


def test_no_aws_region_is_an_unreadable_reading(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    aws_clients.reset()
    try:
        answer = CloudWatchAlarms().readings(["api-5xx"])
    finally:
        aws_clients.reset()

    assert answer["api-5xx"].unavailability is Unavailability.UNREADABLE
    assert answer["api-5xx"].reason.startswith(
        "CloudWatch: no AWS region configured for the server's AWS clients"
    )

"""The agents' command service on the audit trail, at the level ``--audit-agent-requests`` sets: by
default the refused requests only (an agent speaking for another host), with ``all`` every poll too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from iam_helpers import POLL_HOLD, agent_client

from support.server import ServerProcess


def registered_agent(server: ServerProcess, name: str) -> tuple[Any, str, str]:
    """An instance registered with its own IAM user: (command client, user ARN, access key id)."""
    iam = server.client("iam")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    server.client("codedeploy").register_on_premises_instance(instanceName=name, iamUserArn=arn)
    return agent_client(server, key["AccessKeyId"], key["SecretAccessKey"]), arn, key["AccessKeyId"]


def agent_events(server: ServerProcess) -> list[dict[str, Any]]:
    answer = server.aws_json(
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventSource,AttributeValue=codedeploy-commands.amazonaws.com",
    )
    return [json.loads(event["CloudTrailEvent"]) for event in answer["Events"]]


@pytest.mark.parametrize(("level", "polls_recorded"), [("refusals", False), ("all", True)])
def test_refusals_are_on_record_and_polls_only_when_asked(
    tmp_path: Path, level: str, polls_recorded: bool
) -> None:
    args = [*POLL_HOLD] + ([] if level == "refusals" else ["--audit-agent-requests", level])
    server = ServerProcess(tmp_path / "server", None, extra_args=args).start()
    try:
        agent, arn, key_id = registered_agent(server, "host-a")
        _, other_arn, _ = registered_agent(server, "host-b")
        assert "HostCommand" not in agent.poll_host_command(HostIdentifier=arn)
        with pytest.raises(ClientError) as raised:
            agent.poll_host_command(HostIdentifier=other_arn)  # speaking for another host
        assert raised.value.response["Error"]["Code"] == "ClientException"

        events = agent_events(server)
        refused = [e for e in events if e.get("errorCode")]
        assert len(refused) == 1
        assert refused[0]["eventName"] == "PollHostCommand"
        assert refused[0]["userIdentity"]["arn"] == arn
        assert refused[0]["userIdentity"]["accessKeyId"] == key_id
        assert refused[0]["requestParameters"] == {"HostIdentifier": other_arn}
        assert "is not the instance that signed this request" in refused[0]["errorMessage"]
        polls = [e for e in events if not e.get("errorCode")]
        assert len(polls) == (1 if polls_recorded else 0)
    finally:
        server.stop()

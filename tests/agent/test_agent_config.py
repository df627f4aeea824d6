"""The agent configuration file in both key forms, with the guide's defaults (guide L25195–L25345)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendeploy.agent.agent_config import AgentConfigError, load_agent_config, parse_agent_config

# The Linux file AWS's agent ships (spec §10.2).
SHIPPED = """\
:log_aws_wire: false
:log_dir: '/var/log/aws/codedeploy-agent/'
:pid_dir: '/opt/codedeploy-agent/state/.pid/'
:program_name: codedeploy-agent
:root_dir: '/opt/codedeploy-agent/deployment-root'
:verbose: false
:wait_between_runs: 1
:proxy_uri:
:max_revisions: 5
:disable_imds_v1: false
"""


def test_shipped_file_in_ruby_symbol_form() -> None:
    config = parse_agent_config(SHIPPED)
    assert config.root_dir == Path("/opt/codedeploy-agent/deployment-root")
    assert config.log_dir == Path("/var/log/aws/codedeploy-agent")
    assert config.max_revisions == 5
    assert config.wait_between_runs == 1
    assert config.proxy_uri is None
    assert config.warnings == ()


def test_plain_key_form_as_agent_v2_accepts() -> None:
    config = parse_agent_config("root_dir: /srv/deploy\nmax_revisions: 2\nenable_deployments_log: false\n")
    assert config.root_dir == Path("/srv/deploy")
    assert config.max_revisions == 2
    assert config.enable_deployments_log is False


def test_defaults_when_keys_are_missing() -> None:
    """Guide L25316–L25319: with max_revisions unset, five archived revisions besides the current one."""
    config = parse_agent_config("")
    assert config.max_revisions is None
    assert config.retained_revisions == 5
    assert config.enable_deployments_log is True
    assert config.wait_between_runs == 1


def test_unknown_keys_are_warned_about_and_ignored() -> None:
    config = parse_agent_config(":root_dir: /x\n:no_such_setting: 3\n:children: 1\n", "agent.yml")
    assert config.warnings == ("agent.yml: unknown key 'no_such_setting' ignored",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (":max_revisions: 0\n", "max_revisions must be at least 1, got 0"),
        (":max_revisions: many\n", "max_revisions must be an integer, got 'many'"),
        (":verbose: maybe\n", "verbose must be true or false"),
        ("- a list\n", "expected a mapping of configuration keys"),
        (":root_dir: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_values_are_named(text: str, message: str) -> None:
    with pytest.raises(AgentConfigError, match=message):
        parse_agent_config(text)


def test_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match="cannot read agent configuration file"):
        load_agent_config(tmp_path / "missing.yml")
    path = tmp_path / "agent.yml"
    path.write_text(f":root_dir: {tmp_path}/root\n")
    assert load_agent_config(path).root_dir == tmp_path / "root"

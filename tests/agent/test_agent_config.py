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


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("4294967296", 4 * 1024**3),
        ("4GB", 4_000_000_000),  # powers of 1000
        ("500MB", 500_000_000),
        ("1GiB", 1024**3),  # powers of 1024
        ("'2 MiB'", 2 * 1024**2),
        ("512kib", 512 * 1024),
    ],
)
def test_sizes_as_agent_v2_writes_them(value: str, size: int) -> None:
    config = parse_agent_config(
        f":archive_max_extraction_size: {value}\n:extraction_free_space_reserve: {value}\n"
    )
    assert (config.archive_max_extraction_size, config.extraction_free_space_reserve) == (size, size)
    assert config.warnings == ()


def test_limits_and_download_retries_have_defaults_and_can_be_set() -> None:
    defaults = parse_agent_config("")
    assert defaults.archive_max_extraction_size == 4 * 1024**3
    assert defaults.extraction_free_space_reserve == 256 * 1024**2
    assert defaults.appspec_max_size == 1024**2
    assert defaults.download_retry_seconds == 300
    config = parse_agent_config(
        "archive_max_extraction_size: 1GiB\nextraction_free_space_reserve: 0\n"
        "appspec_max_size: 2MiB\ndownload_retry_seconds: 20\n"
    )
    assert config.archive_max_extraction_size == 1024**3
    assert config.extraction_free_space_reserve == 0
    assert config.appspec_max_size == 2 * 1024**2
    assert config.download_retry_seconds == 20


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
        (":archive_max_extraction_size: lots\n", 'must be a number of bytes or a size such as "500MB"'),
        (":archive_max_extraction_size: 4 PB\n", "archive_max_extraction_size must be a number of bytes"),
        (":appspec_max_size: 0\n", "appspec_max_size must be at least 1, got 0"),
        (":download_retry_seconds: soon\n", "download_retry_seconds must be an integer"),
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

"""The agent configuration file (``codedeployagent.yml``): where the agent keeps its state and how it behaves.

AWS's agent v1 writes keys as Ruby symbols (``:root_dir: /opt/…``); agent v2 also accepts plain keys
(``root_dir: /opt/…``). Both forms are read here, with the guide's defaults for every documented key.
Unknown keys are reported as warnings and ignored, as agent v2 does, so one file can serve both agents.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from opendeploy.appspec import APPSPEC_SIZE_LIMIT

DEFAULT_CONFIG_FILE = Path("/etc/codedeploy-agent/conf/codedeployagent.yml")
DEFAULT_ROOT_DIR = Path("/opt/codedeploy-agent/deployment-root")
DEFAULT_LOG_DIR = Path("/var/log/aws/codedeploy-agent")
DEFAULT_RETAINED_REVISIONS = 5
"""Archived revisions kept per deployment group, besides the current one, when ``max_revisions`` is unset."""
GIB = 1024**3
MIB = 1024**2
DEFAULT_ARCHIVE_MAX_EXTRACTION_SIZE = 4 * GIB
"""A bundle may unpack to at most this much: far above any real revision, far below a zip bomb's 10 GiB+."""
DEFAULT_EXTRACTION_FREE_SPACE_RESERVE = 256 * MIB
"""Unpacking stops rather than leave less than this free on the filesystem of the deployment root."""
DEFAULT_DOWNLOAD_RETRY_SECONDS = 300
"""How long a bundle download keeps retrying transient failures: long enough for a server restart or a
store fail-over, well inside the hour the server allows DownloadBundle."""
DOWNLOAD_RETRY_KEY = ":download_retry_seconds:"
DEFAULT_WAIT_AFTER_ERROR = 30
"""The longest wait between two tries of a failing call (the command service, a download)."""


class AgentConfigError(ValueError):
    """The configuration file is unreadable or a key has a value the agent cannot use."""


def _user_default_root_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "opendeploy" / "deployment-root"


def _user_default_log_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "opendeploy" / "log"


def default_root_dir() -> Path:
    """The AWS agent's root directory for root; a per-user directory otherwise, so no root is needed."""
    return DEFAULT_ROOT_DIR if os.geteuid() == 0 else _user_default_root_dir()


def default_log_dir() -> Path:
    return DEFAULT_LOG_DIR if os.geteuid() == 0 else _user_default_log_dir()


@dataclass(frozen=True)
class AgentConfig:
    """The settings the host side reads; field names are the file's keys without colons."""

    root_dir: Path = field(default_factory=default_root_dir)
    log_dir: Path = field(default_factory=default_log_dir)
    pid_dir: Path = Path("/opt/codedeploy-agent/state/.pid")
    program_name: str = "codedeploy-agent"
    verbose: bool = False
    wait_between_runs: int = 1
    wait_after_error: int = DEFAULT_WAIT_AFTER_ERROR
    http_read_timeout: int = 80
    max_revisions: int | None = None
    on_premises_config_file: Path = Path("/etc/codedeploy-agent/conf/codedeploy.onpremises.yml")
    proxy_uri: str | None = None
    enable_auth_policy: bool = False
    enable_deployments_log: bool = True
    disable_imds_v1: bool = False
    log_aws_wire: bool = False
    deploy_control_endpoint: str | None = None
    s3_endpoint_override: str | None = None
    ongoing_deployment_tracking: str = "ongoing-deployment"
    # At SIGTERM: how long running lifecycle events may still finish and be reported before the agent
    # ends what is left (keeping unreported outcomes for its next start). AWS's agents wait 7200 s by
    # default, longer than systemd's 90 s stop timeout, which then kills the agent before it reports;
    # opendeploy's default stays well inside it. A file may set more (and TimeoutStopSec with it).
    kill_agent_max_wait_time_seconds: int = 60
    # opendeploy's own: seconds between SIGTERM and SIGKILL when a hook script times out or is ended.
    hook_kill_grace_seconds: float = 5.0
    # opendeploy's own: the server certificate pinned at registration (deployment specifications must be
    # signed with it), and the GitHub-compatible archive API for gitHubLocation revisions.
    deployment_signer_certificate: Path | None = None
    github_endpoint_override: str | None = None
    # opendeploy's own: a PEM bundle of certificate authorities to trust for the server's HTTPS endpoints
    # (command service and bundle store), instead of the system's; ``opendeploy register`` writes it for a
    # server with a self-signed certificate.
    ca_bundle: Path | None = None
    # Agent v2's key: the most a bundle may unpack to, in bytes (in the file an integer or a size such as
    # "4GB", "500MB" (powers of 1000) or "1GiB" (powers of 1024)). Enforced on the bytes actually written,
    # so archive headers that lie do not get past it. opendeploy's default (agent v2 has none) is 4 GiB.
    archive_max_extraction_size: int = DEFAULT_ARCHIVE_MAX_EXTRACTION_SIZE
    # opendeploy's own: a bundle is not unpacked if that would leave less than this free on the filesystem
    # holding root_dir (checked before each file is written; for a zip, first against its declared size).
    # A size like archive_max_extraction_size; 0 turns the check off.
    extraction_free_space_reserve: int = DEFAULT_EXTRACTION_FREE_SPACE_RESERVE
    # opendeploy's own: the largest AppSpec file the agent reads (a size; 1 MiB, as the server reads).
    appspec_max_size: int = APPSPEC_SIZE_LIMIT
    # opendeploy's own: seconds a bundle download (S3, GitHub) keeps retrying connection failures, timeouts,
    # 5xx and throttling answers, and bodies that break off, before DownloadBundle fails; 0: no retries.
    # The waits between tries double from 1 s up to wait_after_error.
    download_retry_seconds: int = DEFAULT_DOWNLOAD_RETRY_SECONDS
    warnings: tuple[str, ...] = ()

    @property
    def retained_revisions(self) -> int:
        """How many archived revisions to keep per deployment group besides the current deployment's."""
        return DEFAULT_RETAINED_REVISIONS if self.max_revisions is None else self.max_revisions


# Keys AWS's agents know that have no effect on the host side here; accepted silently.
_KNOWN_UNUSED_KEYS = frozenset(
    {
        "children",
        "codedeploy_test_profile",
        "user",
        "group",
        "use_fips_mode",
        "wait_after_throttle_error",
        "wait_after_connection_problem",
        "max_runs_per_worker",
        "enable_command_port",
        "disable_core_dumps",
        "wait_between_spawning_children",
        "shared_dir",
        "ssl_verify_peer",
    }
)

_PATH_KEYS = {
    "root_dir",
    "log_dir",
    "pid_dir",
    "on_premises_config_file",
    "deployment_signer_certificate",
    "ca_bundle",
}
_BOOL_KEYS = {
    "verbose",
    "enable_auth_policy",
    "enable_deployments_log",
    "disable_imds_v1",
    "log_aws_wire",
}
_INT_KEYS = {
    "wait_between_runs",
    "wait_after_error",
    "http_read_timeout",
    "kill_agent_max_wait_time_seconds",
    "download_retry_seconds",
}
# Sizes in bytes, and the least each may be.
_SIZE_KEYS = {"archive_max_extraction_size": 1, "extraction_free_space_reserve": 0, "appspec_max_size": 1}
_OPTIONAL_STR_KEYS = {
    "proxy_uri",
    "deploy_control_endpoint",
    "s3_endpoint_override",
    "github_endpoint_override",
}


def _normalise_key(key: object) -> str:
    # ``:root_dir:`` loads as the YAML key ":root_dir"; plain ``root_dir:`` as "root_dir".
    return str(key).strip().strip(":")


def _as_bool(key: str, value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "yes", "no"}:
        return value.strip().lower() in {"true", "yes"}
    raise AgentConfigError(f"{source}: {key} must be true or false, got {value!r}")


def _as_int(key: str, value: Any, source: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise AgentConfigError(f"{source}: {key} must be an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise AgentConfigError(f"{source}: {key} must be an integer, got {value!r}") from None
    if number < minimum:
        raise AgentConfigError(f"{source}: {key} must be at least {minimum}, got {number}")
    return number


_SIZE = re.compile(r"^(\d+)\s*([kmgt]i?b|b)?$", re.IGNORECASE)
_UNIT_POWERS = {"k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(value: Any) -> int:
    """Bytes from an integer or a size string: "500MB", "4GB" (powers of 1000), "1GiB" (powers of 1024)."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value).strip())
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    number, unit = int(match.group(1)), (match.group(2) or "b").lower()
    if unit == "b":
        return number
    base = 1024 if unit.endswith("ib") else 1000
    return number * base ** _UNIT_POWERS[unit[0]]


def format_size(size: int, *, exact: bool = True) -> str:
    """A size for people, exact enough to compare with a configured limit: "1.5 MiB (1572864 bytes)"
    ("1.5 MiB" when not ``exact``)."""
    for unit, power in (("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        if size >= 1024**power:
            rounded = f"{size / 1024**power:.1f} {unit}"
            return f"{rounded} ({size} bytes)" if exact else rounded
    return f"{size} bytes"


def _as_size(key: str, value: Any, source: str, *, minimum: int) -> int:
    try:
        number = parse_size(value)
    except ValueError:
        raise AgentConfigError(
            f'{source}: {key} must be a number of bytes or a size such as "500MB" or "4GiB", got {value!r}'
        ) from None
    if number < minimum:
        raise AgentConfigError(f"{source}: {key} must be at least {minimum}, got {number}")
    return number


def parse_agent_config(text: str, source: str = "codedeployagent.yml") -> AgentConfig:
    """Read the configuration file's text into an ``AgentConfig``; defaults fill every missing key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AgentConfigError(f"{source}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AgentConfigError(
            f"{source}: expected a mapping of configuration keys, got {type(data).__name__}"
        )

    known = {f.name for f in fields(AgentConfig)} - {"warnings"}
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for raw_key, value in data.items():
        key = _normalise_key(raw_key)
        if key in _KNOWN_UNUSED_KEYS:
            continue
        if key not in known:
            warnings.append(f"{source}: unknown key {key!r} ignored")
            continue
        if value is None:
            continue  # ``:proxy_uri:`` with nothing after it: keep the default
        if key in _PATH_KEYS:
            values[key] = Path(str(value))
        elif key in _BOOL_KEYS:
            values[key] = _as_bool(key, value, source)
        elif key in _INT_KEYS:
            values[key] = _as_int(key, value, source, minimum=0)
        elif key in _SIZE_KEYS:
            values[key] = _as_size(key, value, source, minimum=_SIZE_KEYS[key])
        elif key == "max_revisions":
            values[key] = _as_int(key, value, source, minimum=1)
        elif key == "hook_kill_grace_seconds":
            try:
                values[key] = float(value)
            except (TypeError, ValueError):
                raise AgentConfigError(
                    f"{source}: {key} must be a number of seconds, got {value!r}"
                ) from None
        elif key in _OPTIONAL_STR_KEYS:
            values[key] = str(value)
        else:
            values[key] = str(value)
    return AgentConfig(**values, warnings=tuple(warnings))


def load_agent_config(path: Path | None) -> AgentConfig:
    """Load the configuration file at ``path``, or the default file if it exists, or the built-in defaults.

    A file named explicitly must exist; the default file is optional.
    """
    if path is None:
        if not DEFAULT_CONFIG_FILE.is_file():
            return AgentConfig()
        path = DEFAULT_CONFIG_FILE
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentConfigError(f"cannot read agent configuration file {path}: {exc.strerror}") from None
    return parse_agent_config(text, str(path))

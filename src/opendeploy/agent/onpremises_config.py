"""The on-premises instance's identity file, ``codedeploy.onpremises.yml``: who this host is to the server.

The guide's two forms (L13683–L13733, L12793–L12829) are both read:

```yaml
aws_access_key_id: AKIA…            # an IAM user's static key …
aws_secret_access_key: …
iam_user_arn: arn:aws:iam::111122223333:user/CodeDeployUser-OnPrem
region: us-east-1
---
iam_session_arn: arn:aws:sts::111122223333:assumed-role/Role/session   # … or a role session whose
aws_credentials_file: /etc/codedeploy-agent/conf/credentials           # credentials a helper refreshes
region: us-east-1
```

The host identifier the agent polls with is the IAM user or session ARN, as on AWS. ``opendeploy
register`` writes the first form (mode 0600: it holds a secret).
"""

from __future__ import annotations

import configparser
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

ONPREMISES_CONFIG_NAME = "codedeploy.onpremises.yml"


class OnPremisesConfigError(ValueError):
    """The identity file is missing, unreadable or incomplete; the message names the file and the key."""


@dataclass(frozen=True)
class InstanceIdentity:
    """The credentials this host signs its requests with, and the ARN that names it."""

    host_identifier: str  # the IAM user ARN or the IAM session ARN
    region: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def _credentials_from_file(path: Path, source: str) -> tuple[str, str, str | None]:
    parser = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise OnPremisesConfigError(
            f"{source}: cannot read aws_credentials_file {path}: {exc.strerror}"
        ) from None
    except configparser.Error as exc:
        raise OnPremisesConfigError(
            f"{source}: aws_credentials_file {path} is not an INI file: {exc}"
        ) from None
    section = "default" if parser.has_section("default") else (parser.sections() or [None])[0]
    if section is None:
        raise OnPremisesConfigError(f"{source}: aws_credentials_file {path} has no credentials section")
    values = parser[section]
    key_id, secret = values.get("aws_access_key_id"), values.get("aws_secret_access_key")
    if not key_id or not secret:
        raise OnPremisesConfigError(
            f"{source}: aws_credentials_file {path} [{section}] needs aws_access_key_id "
            f"and aws_secret_access_key"
        )
    return key_id, secret, values.get("aws_session_token")


def parse_onpremises_config(text: str, source: str = ONPREMISES_CONFIG_NAME) -> InstanceIdentity:
    """Read the identity file's text; every required key must be there."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OnPremisesConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise OnPremisesConfigError(f"{source}: expected a mapping of keys, got {type(data).__name__}")
    data = {str(k).strip(":"): v for k, v in data.items()}
    region = data.get("region")
    if not region:
        raise OnPremisesConfigError(f"{source}: region is missing")
    if data.get("iam_user_arn"):
        missing = [k for k in ("aws_access_key_id", "aws_secret_access_key") if not data.get(k)]
        if missing:
            raise OnPremisesConfigError(f"{source}: iam_user_arn is set but {', '.join(missing)} missing")
        return InstanceIdentity(
            str(data["iam_user_arn"]),
            str(region),
            str(data["aws_access_key_id"]),
            str(data["aws_secret_access_key"]),
        )
    if data.get("iam_session_arn"):
        if not data.get("aws_credentials_file"):
            raise OnPremisesConfigError(
                f"{source}: iam_session_arn is set but aws_credentials_file is missing"
            )
        key_id, secret, token = _credentials_from_file(Path(str(data["aws_credentials_file"])), source)
        return InstanceIdentity(str(data["iam_session_arn"]), str(region), key_id, secret, token)
    raise OnPremisesConfigError(f"{source}: needs iam_user_arn (with its access key) or iam_session_arn")


def load_onpremises_config(path: Path) -> InstanceIdentity:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise OnPremisesConfigError(
            f"cannot read the on-premises configuration {path}: {exc.strerror} "
            f"(register this host with 'opendeploy register' first)"
        ) from None
    return parse_onpremises_config(text, str(path))


def write_private_file(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``path`` atomically with ``mode`` from the start, so a secret is never world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_onpremises_config(
    path: Path, *, iam_user_arn: str, access_key_id: str, secret_access_key: str, region: str
) -> None:
    """Write the IAM-user form of the file, readable by root only."""
    document = {
        "aws_access_key_id": access_key_id,
        "aws_secret_access_key": secret_access_key,
        "iam_user_arn": iam_user_arn,
        "region": region,
    }
    write_private_file(path, "---\n" + yaml.safe_dump(document, sort_keys=False))

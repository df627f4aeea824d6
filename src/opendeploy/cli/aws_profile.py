"""Write an AWS CLI/SDK profile that points ``codedeploy``, ``s3``, ``iam``, ``cloudtrail`` and ``sts``
at an opendeploy server.

The profile uses botocore's service-specific endpoint configuration (a ``services`` section), so
``aws --profile opendeploy deploy …`` and ``boto3.Session(profile_name="opendeploy")`` reach the
server with no other flags while other services keep their usual endpoints. Only the profile's own
sections are replaced; everything else in the files (other profiles, comments) is kept as it was.

For an HTTPS server whose certificate no public CA vouches for (the self-signed default), the profile's
``ca_bundle`` names ``<profile>-ca-bundle.pem`` beside the config file: the server's certificate followed
by the public CAs botocore trusts by default (certifi's bundle). ``ca_bundle`` is per profile, not per
service, so the public CAs keep the profile's other services (still AWS's) working.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_SECTION = re.compile(r"^\s*\[\s*(?P<name>[^\]]+?)\s*\]\s*(?:[#;].*)?$")


@dataclass(frozen=True)
class ProfileFiles:
    config: Path
    credentials: Path


def default_files(config: Path | None = None, credentials: Path | None = None) -> ProfileFiles:
    """The files the AWS CLI and SDKs read: explicit paths, else AWS_CONFIG_FILE /
    AWS_SHARED_CREDENTIALS_FILE, else ``~/.aws/config`` and ``~/.aws/credentials``."""
    aws_dir = Path.home() / ".aws"
    return ProfileFiles(
        config=Path(config or os.environ.get("AWS_CONFIG_FILE") or aws_dir / "config").expanduser(),
        credentials=Path(
            credentials or os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or aws_dir / "credentials"
        ).expanduser(),
    )


def replace_sections(text: str, sections: dict[str, Sequence[str]]) -> str:
    """``text`` (an INI file) with the named sections replaced by (or extended with) new bodies."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        match = _SECTION.match(line)
        if match:
            skipping = match.group("name") in sections
        if not skipping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    for name, body in sections.items():
        if kept:
            kept.append("")
        kept.append(f"[{name}]")
        kept.extend(body)
    return "\n".join(kept) + "\n"


def _write_atomically(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def ca_bundle_path(files: ProfileFiles, profile: str) -> Path:
    """Where the profile's CA bundle is written (beside the config file, named after the profile)."""
    return files.config.parent / f"{profile}-ca-bundle.pem"


def trust_bundle(certificates_pem: bytes) -> bytes:
    """``certificates_pem`` followed by the public CAs botocore trusts when no bundle is set."""
    import certifi

    public = Path(certifi.where()).read_bytes()
    return certificates_pem.rstrip(b"\n") + b"\n" + public


def write_profile(
    files: ProfileFiles,
    *,
    profile: str,
    region: str,
    endpoint_url: str,
    access_key_id: str,
    secret_access_key: str,
    ca_certificates: bytes | None = None,
) -> Path | None:
    """Create or replace ``profile`` in both files; with ``ca_certificates`` (PEM) the profile trusts
    them too (see the module docstring). Returns the CA bundle's path if one was written."""
    services_name = profile
    bundle = ca_bundle_path(files, profile)
    profile_body = [
        f"region = {region}",
        f"services = {services_name}",
        "s3 =",
        "  addressing_style = path",
    ]
    if ca_certificates is not None:
        # Readable by others: certificates are public, and other users may share the profile's trust.
        _write_atomically(bundle, trust_bundle(ca_certificates).decode("ascii"), 0o644)
        profile_body.append(f"ca_bundle = {bundle}")
    else:
        bundle.unlink(missing_ok=True)  # a bundle for an earlier server of this profile
    config_sections = {
        f"profile {profile}": profile_body,
        f"services {services_name}": [
            "codedeploy =",
            f"  endpoint_url = {endpoint_url}",
            "s3 =",
            f"  endpoint_url = {endpoint_url}",
            "iam =",  # instance identities (aws deploy register / deregister)
            f"  endpoint_url = {endpoint_url}",
            "cloudtrail =",  # the audit trail (aws cloudtrail lookup-events)
            f"  endpoint_url = {endpoint_url}",
            "sts =",  # who am I (aws sts get-caller-identity)
            f"  endpoint_url = {endpoint_url}",
        ],
    }
    credentials_sections = {
        profile: [f"aws_access_key_id = {access_key_id}", f"aws_secret_access_key = {secret_access_key}"]
    }
    for path, sections, mode in (
        (files.config, config_sections, 0o600),
        (files.credentials, credentials_sections, 0o600),
    ):
        existing = path.read_text() if path.exists() else ""
        _write_atomically(path, replace_sections(existing, sections), mode)
    return bundle if ca_certificates is not None else None

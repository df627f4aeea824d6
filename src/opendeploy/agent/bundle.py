"""DownloadBundle: fetch a revision's bundle and unpack it into the deployment archive.

Where the bundle comes from depends on the revision type. Bundles on this host's disk ("Local File",
"Local Directory") are handled here; other sources (S3, GitHub) plug in through ``register_fetcher``,
each writing the downloaded bundle to ``<deployment-dir>/bundle.tar`` (the name is fixed whatever the
bundle type, as on AWS's agent).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from opendeploy.agent.bundle_extraction import (
    BundleError,
    ExtractionLimits,
    copy_directory,
    extract_tar,
    extract_zip,
)
from opendeploy.agent.deployment_root import ARCHIVE, BUNDLE
from opendeploy.agent.deployment_specification import (
    BundleType,
    DeploymentSpecification,
    GitHubRevision,
    LocalRevision,
    RevisionType,
    S3Revision,
)

Fetcher = Callable[[DeploymentSpecification, Path], None]
"""Writes the revision's bundle to the given path (``<deployment-dir>/bundle.tar``)."""

_FETCHERS: dict[RevisionType, Fetcher] = {}

APPSPEC_FALLBACK_NAMES = ("appspec.yaml", "appspec.yml")


def register_fetcher(revision_type: RevisionType, fetcher: Fetcher | None) -> Fetcher | None:
    """Install the fetcher for a revision source (the agent registers S3 and GitHub), or remove it with
    None; returns the one it replaces."""
    previous = _FETCHERS.pop(revision_type, None)
    if fetcher is not None:
        _FETCHERS[revision_type] = fetcher
    return previous


def _fetch_local_file(spec: DeploymentSpecification, bundle: Path) -> None:
    assert isinstance(spec.revision, LocalRevision)
    location = Path(spec.revision.location).absolute()
    if not location.is_file():
        raise BundleError(f"bundle location {location} is not a file")
    if bundle.is_symlink() or bundle.exists():
        bundle.unlink()
    # A link, not a copy: the bundle is already on this disk.
    os.symlink(location, bundle)


register_fetcher(RevisionType.LOCAL_FILE, _fetch_local_file)


def bundle_type_of(spec: DeploymentSpecification) -> BundleType:
    revision = spec.revision
    if isinstance(revision, S3Revision | LocalRevision):
        return revision.bundle_type
    if isinstance(revision, GitHubRevision):
        return revision.bundle_type or BundleType.TAR
    raise BundleError(f"unsupported revision {revision!r}")


def bundle_name(spec: DeploymentSpecification) -> str:
    """The bundle as its user knows it, for messages: a path, s3://bucket/key, owner/repo@commit."""
    revision = spec.revision
    if isinstance(revision, LocalRevision):
        return revision.location
    if isinstance(revision, S3Revision):
        where = f"s3://{revision.bucket}/{revision.key}"
        return f"{where} (version {revision.version})" if revision.version else where
    return f"{revision.account}/{revision.repository}@{revision.commit_id}"


def find_appspec(archive: Path, appspec_filename: str) -> Path | None:
    """The AppSpec file in an unpacked revision: the configured name, else appspec.yaml, else appspec.yml."""
    for name in (appspec_filename, *APPSPEC_FALLBACK_NAMES):
        candidate = archive / name
        if candidate.is_file():
            return candidate
    return None


def appspec_not_found_message(archive: Path, appspec_filename: str) -> str:
    return (
        f"The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at "
        f'revision-relative path "{appspec_filename}". The revision was unpacked to directory "{archive}", '
        f'and the AppSpec file was expected but not found at path "{archive / appspec_filename}". '
        f"Consult the AWS CodeDeploy Appspec documentation for more information at "
        f"http://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file.html"
    )


def _hoist_single_directory(archive: Path, appspec_filename: str) -> None:
    """Make a bundle whose only root entry is a directory holding the AppSpec look like its contents.

    Archives made by zipping or tarring a folder (``zip -r app.zip app/``) have that shape.
    """
    entries = list(os.scandir(archive))
    if len(entries) != 1 or not entries[0].is_dir(follow_symlinks=False):
        return
    inner = Path(entries[0].path)
    if find_appspec(inner, appspec_filename) is None:
        return
    temporary = archive.with_name(f"{ARCHIVE}-temp")
    if temporary.exists():
        shutil.rmtree(temporary)
    os.rename(inner, temporary)
    os.rmdir(archive)
    os.rename(temporary, archive)


def download_bundle(
    spec: DeploymentSpecification, deployment_dir: Path, *, limits: ExtractionLimits | None = None
) -> Path:
    """Fetch and unpack the revision into ``<deployment-dir>/deployment-archive``; returns that directory.

    Fails, leaving no archive behind, if the bundle is hostile, unreadable, too big for ``limits`` (the
    agent configuration's; the defaults without them), or has no AppSpec file at its root.
    """
    archive = deployment_dir / ARCHIVE
    bundle_type = bundle_type_of(spec)
    if spec.revision_type == RevisionType.LOCAL_DIRECTORY:
        assert isinstance(spec.revision, LocalRevision)
        label = f"{bundle_name(spec)} ({bundle_type})"
        copy_directory(Path(spec.revision.location), archive, label, limits=limits)
    else:
        fetcher = _FETCHERS.get(spec.revision_type)
        if fetcher is None:
            raise BundleError(
                f"revisions of type {spec.revision_type.value} cannot be fetched by this host: "
                f"no fetcher is installed for them"
            )
        bundle = deployment_dir / BUNDLE
        fetcher(spec, bundle)
        label = f"{bundle_name(spec)} ({bundle_type})"
        if bundle_type == BundleType.ZIP:
            extract_zip(bundle, archive, label, limits=limits)
        elif bundle_type in (BundleType.TAR, BundleType.TGZ):
            extract_tar(bundle, archive, label, limits=limits)
        else:
            raise BundleError(f"a {bundle_type.value} bundle must be a directory, not a file")
    _hoist_single_directory(archive, spec.appspec_filename)
    if find_appspec(archive, spec.appspec_filename) is None:
        message = appspec_not_found_message(archive, spec.appspec_filename)
        shutil.rmtree(archive, ignore_errors=True)
        raise BundleError(message)
    return archive

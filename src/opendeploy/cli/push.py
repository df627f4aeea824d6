"""``opendeploy push``: bundle a revision, upload it to the bundle store, register it (``aws deploy push``).

Takes ``aws deploy push``'s flags (``--application-name``, ``--s3-location s3://bucket/key``, ``--source``,
``--ignore-hidden-files``, ``--description``). The bundle is a zip like ``aws deploy push`` makes (files
relative to the source directory, a symbolic link stored as its target's content), or a tar / gzipped
tar when the key ends in ``.tar`` / ``.tgz`` / ``.tar.gz`` (symbolic links kept as links). Before
anything is uploaded it checks that the application exists and that the source has a valid AppSpec
file. Bundles of 8 MiB or more are uploaded in parts. The revision is registered with the object's
ETag (and version, if the store has one), and the command to deploy it is printed.

The AWS profile written by ``opendeploy init`` (``opendeploy``) says where the server is.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click

# The profile ``opendeploy init`` writes (not imported from cli.init: that would load the database layer).
DEFAULT_PROFILE = "opendeploy"
MULTIPART_THRESHOLD = 8 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
APPSPEC_NAMES = ("appspec.yml", "appspec.yaml")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def bundle_type(self) -> str:
        """zip unless the key says tar (``.tar``) or gzipped tar (``.tgz``, ``.tar.gz``)."""
        lower = self.key.lower()
        if lower.endswith((".tgz", ".tar.gz")):
            return "tgz"
        if lower.endswith(".tar"):
            return "tar"
        return "zip"


def parse_s3_location(value: str) -> S3Location:
    """``s3://bucket/key`` -> ``S3Location``; a usage error names what is missing."""
    if not value.startswith("s3://"):
        raise click.BadParameter(
            f"{value!r} must be of the form s3://<bucket>/<key>", param_hint="--s3-location"
        )
    bucket, _, key = value[len("s3://") :].partition("/")
    if not bucket or not key:
        raise click.BadParameter(
            f"{value!r} must name both a bucket and a key: s3://<bucket>/<key>", param_hint="--s3-location"
        )
    return S3Location(bucket, key)


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def source_entries(source: Path, ignore_hidden_files: bool) -> Iterator[tuple[Path, str]]:
    """``(path, name in the bundle)`` for every file (and, for tar, symbolic link) under ``source``.

    Sorted, so the same directory makes the same bundle. Directories reached through symbolic links
    are not descended into (as ``aws deploy push`` does not).
    """
    for root, dirs, files in os.walk(source):
        dirs.sort()
        if ignore_hidden_files:
            dirs[:] = [name for name in dirs if not _is_hidden(name)]
            files = [name for name in files if not _is_hidden(name)]
        linked_dirs = [name for name in dirs if os.path.islink(os.path.join(root, name))]
        for name in sorted([*files, *linked_dirs]):
            path = Path(root, name)
            yield path, path.relative_to(source).as_posix()


def find_appspec(source: Path) -> Path:
    for name in APPSPEC_NAMES:
        if (source / name).is_file():
            return source / name
    raise click.ClickException(
        f"{source / 'appspec.yml'} was not found: the source directory needs an AppSpec file at its top."
    )


def check_appspec(path: Path) -> None:
    """Fail early, naming the problem, if the AppSpec file would make every deployment fail."""
    from opendeploy.appspec.errors import AppSpecError
    from opendeploy.appspec.server_appspec import load_server_appspec

    try:
        load_server_appspec(path.read_text(encoding="utf-8"), path.name)
    except AppSpecError as error:
        raise click.ClickException(f"{path} is not a valid AppSpec file: {error}") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{path} is not UTF-8 text") from None


def write_bundle(source: Path, bundle_type: str, ignore_hidden_files: bool, out: IO[bytes]) -> int:
    """Write the bundle of ``source`` to ``out``; returns the number of entries."""
    count = 0
    if bundle_type == "zip":
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for path, name in source_entries(source, ignore_hidden_files):
                if path.is_dir():  # a symbolic link to a directory: not followed
                    continue
                if not path.exists():
                    raise click.ClickException(f"{path} is a symbolic link to nothing ({os.readlink(path)})")
                archive.write(path, name)
                count += 1
        return count
    mode = "w:gz" if bundle_type == "tgz" else "w"
    with tarfile.open(fileobj=out, mode=mode, format=tarfile.PAX_FORMAT) as archive:  # type: ignore[call-overload]
        for path, name in source_entries(source, ignore_hidden_files):
            info = archive.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                with open(path, "rb") as data:
                    archive.addfile(info, data)
            elif info.issym():
                archive.addfile(info)
            else:
                continue  # devices, FIFOs and sockets have no place in a bundle
            count += 1
    return count


def upload(s3: Any, location: S3Location, bundle: IO[bytes], size: int, *, progress: bool) -> dict[str, Any]:
    """Upload ``bundle`` (one PutObject, or a multipart upload when large); returns the final response."""
    bundle.seek(0)
    if size < MULTIPART_THRESHOLD:
        return s3.put_object(Bucket=location.bucket, Key=location.key, Body=bundle)
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    created = s3.create_multipart_upload(Bucket=location.bucket, Key=location.key)
    upload_id = created["UploadId"]
    parts = []
    try:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            disable=not progress,
            console=None,
            transient=True,
        ) as bar:
            task = bar.add_task(f"uploading s3://{location.bucket}/{location.key}", total=size)
            number = 1
            while data := bundle.read(PART_SIZE):
                sent = s3.upload_part(
                    Bucket=location.bucket, Key=location.key, UploadId=upload_id, PartNumber=number, Body=data
                )
                parts.append({"PartNumber": number, "ETag": sent["ETag"]})
                bar.advance(task, len(data))
                number += 1
        return s3.complete_multipart_upload(
            Bucket=location.bucket, Key=location.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except (BotoCoreError, ClientError, KeyboardInterrupt):
        # The upload's own error is the one worth reporting.
        with suppress(BotoCoreError, ClientError):
            s3.abort_multipart_upload(Bucket=location.bucket, Key=location.key, UploadId=upload_id)
        raise


def create_deployment_hint(application: str, location: S3Location, etag: str, version: str | None) -> str:
    s3_location = f"bucket={location.bucket},key={location.key},bundleType={location.bundle_type},eTag={etag}"
    if version:
        s3_location += f",version={version}"
    return (
        "To deploy with this revision, run:\n"
        f"aws deploy create-deployment --application-name {application} --s3-location {s3_location} "
        "--deployment-group-name <deployment-group-name> --deployment-config-name <deployment-config-name> "
        "--description <description>"
    )


def _clients(profile: str, region: str | None, endpoint_url: str | None) -> tuple[Any, Any]:
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise click.ClickException(
            f"AWS profile {profile!r} not found: run 'opendeploy init' (or pass --profile)"
        ) from None
    return (
        session.client("codedeploy", endpoint_url=endpoint_url),
        session.client("s3", endpoint_url=endpoint_url),
    )


@click.command()
@click.option("--application-name", required=True, help="The application to register the revision with.")
@click.option(
    "--s3-location",
    required=True,
    metavar="s3://<bucket>/<key>",
    help="Where to upload the bundle; a key ending in .tar, .tgz or .tar.gz makes a tar bundle.",
)
@click.option(
    "--source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The directory holding the revision's content and its appspec.yml.",
)
@click.option(
    "--ignore-hidden-files/--no-ignore-hidden-files",
    default=False,
    show_default=True,
    help="Leave out files and directories whose names begin with a dot.",
)
@click.option("--description", default=None, help="A comment for the revision [default: upload time].")
@click.option(
    "--profile",
    envvar="OPENDEPLOY_PROFILE",
    default=DEFAULT_PROFILE,
    show_default=True,
    help="AWS profile naming the server.",
)
@click.option("--region", default=None, help="[default: the profile's]")
@click.option("--endpoint-url", default=None, help="The server's URL [default: the profile's].")
def push(
    application_name: str,
    s3_location: str,
    source: Path,
    ignore_hidden_files: bool,
    description: str | None,
    profile: str,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Bundle the --source directory, upload it to --s3-location and register it as a revision."""
    from botocore.exceptions import BotoCoreError, ClientError

    location = parse_s3_location(s3_location)
    source = source.resolve()
    check_appspec(find_appspec(source))
    codedeploy, s3 = _clients(profile, region, endpoint_url)
    description = description or f"Uploaded by opendeploy push {datetime.now(UTC).isoformat()} UTC"
    try:
        codedeploy.get_application(applicationName=application_name)
        with tempfile.TemporaryFile("w+b") as bundle:
            entries = write_bundle(source, location.bundle_type, ignore_hidden_files, bundle)
            size = bundle.tell()
            click.echo(
                f"Bundled {entries} files from {source} ({size} bytes, {location.bundle_type}); uploading "
                f"to s3://{location.bucket}/{location.key}",
                err=True,
            )
            uploaded = upload(s3, location, bundle, size, progress=sys.stderr.isatty())
        etag = uploaded["ETag"].strip('"')
        version = uploaded.get("VersionId")
        s3_revision: dict[str, str] = {
            "bucket": location.bucket,
            "key": location.key,
            "bundleType": location.bundle_type,
            "eTag": etag,
        }
        if version:
            s3_revision["version"] = version
        codedeploy.register_application_revision(
            applicationName=application_name,
            revision={"revisionType": "S3", "s3Location": s3_revision},
            description=description,
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        raise click.ClickException(
            f"{error.operation_name} failed: {details.get('Code', 'Error')}: {details.get('Message', error)}"
        ) from None
    except BotoCoreError as error:
        raise click.ClickException(str(error)) from None
    click.echo(create_deployment_hint(application_name, location, etag, version))

"""``opendeploy local``'s own behaviour: the codedeploy-local flags, --events, and argument errors
(issue 2, item 8; guide L19943–L20082)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_factory import file, write_tree

from conftest import Local
from opendeploy.agent.local_deployment import LocalDeploymentError, plan_events


def _trail_bundle(base: Path, trail: Path, events: list[str]) -> Path:
    hooks = "".join(f"  {event}:\n    - location: record.sh\n" for event in events)
    appspec = f"version: 0.0\nos: linux\nhooks:\n{hooks}"
    record = f'#!/bin/sh\necho "$LIFECYCLE_EVENT" >> {trail}\n'
    return write_tree(base / "bundle", [file("appspec.yml", appspec), file("record.sh", record, 0o755)])


ALL_SCRIPTABLE = ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService", "AfterAllowTraffic"]


def test_events_replace_the_default_list(local: Local, tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    result = local.deploy(
        _trail_bundle(tmp_path, trail, ALL_SCRIPTABLE), "--events", "ApplicationStart,AfterInstall"
    )
    assert trail.read_text().splitlines() == ["ApplicationStart", "AfterInstall"]
    # DownloadBundle and Install run first when not listed.
    assert result.events_run() == ["DownloadBundle", "Install", "ApplicationStart", "AfterInstall"]


def test_custom_event_defined_by_the_appspec(local: Local, tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    bundle = _trail_bundle(tmp_path, trail, ["HealthCheck", "ApplicationStart"])
    local.deploy(bundle, "--events", "DownloadBundle,Install,ApplicationStart,HealthCheck")
    assert trail.read_text().splitlines() == ["ApplicationStart", "HealthCheck"]


def test_custom_event_the_appspec_does_not_define(local: Local, tmp_path: Path) -> None:
    bundle = _trail_bundle(tmp_path, tmp_path / "trail", ["ApplicationStart"])
    result = local.deploy(bundle, "--events", "HelathCheck", expect=1)
    assert "not a default one and doesn't exist in your appspec.yml file: HelathCheck" in result.output


@pytest.mark.parametrize(
    ("events", "planned"),
    [
        (None, None),
        (["ApplicationStop"], ("DownloadBundle", "Install", "ApplicationStop")),
        (
            ["ApplicationStop", "DownloadBundle", "BeforeInstall"],
            ("ApplicationStop", "DownloadBundle", "Install", "BeforeInstall"),
        ),
        (
            ["DownloadBundle", "BeforeInstall", "Install", "X"],
            ("DownloadBundle", "BeforeInstall", "Install", "X"),
        ),
    ],
)
def test_event_planning(events: list[str] | None, planned: tuple[str, ...] | None) -> None:
    result = plan_events(events)
    if planned is None:
        assert result[0] == "BeforeBlockTraffic" and len(result) == 11
    else:
        assert result == planned


@pytest.mark.parametrize(
    ("events", "message"),
    [
        (["Install", "DownloadBundle"], "Install cannot run before DownloadBundle"),
        (["DownloadBundle", "AfterInstall", "Install"], "AfterInstall cannot run before Install"),
        (["ValidateService", "ValidateService"], "lists ValidateService more than once"),
    ],
)
def test_event_order_errors(events: list[str], message: str) -> None:
    with pytest.raises(LocalDeploymentError, match=message):
        plan_events(events)


def test_bad_event_order_is_an_error_before_anything_runs(local: Local, tmp_path: Path) -> None:
    bundle = _trail_bundle(tmp_path, tmp_path / "trail", ["ApplicationStart"])
    result = local.deploy(bundle, "--events", "AfterInstall,Install", expect=1)
    assert result.output.startswith("ERROR: --events: AfterInstall cannot run before Install")
    assert not local.root_dir.exists()


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d: ["--bundle-location", str(d / "missing")], "does not exist"),
        (lambda d: ["--bundle-location", str(d), "--type", "zip"], "is a directory, not a zip file"),
        (
            lambda d: ["--bundle-location", str(d / "appspec.yml")],
            "--type is required with an archive bundle",
        ),
        (
            lambda d: ["--bundle-location", "s3://bucket/key.zip", "--type", "zip"],
            "only bundles on this host's disk",
        ),
        (
            lambda d: ["--bundle-location", str(d), "--deployment-group", "../escape"],
            "must be a single folder name",
        ),
    ],
)
def test_argument_errors(local: Local, tmp_path: Path, make_args, message: str) -> None:
    bundle = _trail_bundle(tmp_path, tmp_path / "trail", ["ApplicationStart"])
    result = local.run(*make_args(bundle))
    assert result.returncode == 1
    assert result.output.startswith("ERROR: ") and message in result.output, result.output


def test_directory_without_appspec(local: Local, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = local.run("--bundle-location", str(empty))
    assert result.returncode == 1
    assert "has no appspec.yml" in result.output


def test_appspec_filename_option(local: Local, tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    bundle = _trail_bundle(tmp_path, trail, ["ApplicationStart"])
    (bundle / "appspec.yml").rename(bundle / "custom-appspec.yml")
    local.deploy(bundle, "--appspec-filename", "custom-appspec.yml")
    assert trail.read_text() == "ApplicationStart\n"


def test_appspec_yaml_extension_is_found(local: Local, tmp_path: Path) -> None:
    """Guide L9784: the AppSpec file may be named appspec.yaml; its hooks run too (decision: the
    hooks use the same lookup as Install, unlike AWS's agent v1)."""
    trail = tmp_path / "trail"
    bundle = _trail_bundle(tmp_path, trail, ["ApplicationStart"])
    (bundle / "appspec.yml").rename(bundle / "appspec.yaml")
    local.deploy(bundle)
    assert trail.read_text() == "ApplicationStart\n"


def test_bundle_location_defaults_to_the_current_directory(local: Local, tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    bundle = _trail_bundle(tmp_path, trail, ["ApplicationStart"])
    local.base = bundle  # run from inside the bundle
    local.deploy(bundle)
    result = local.run()
    assert result.returncode == 0, result.output
    assert trail.read_text() == "ApplicationStart\nApplicationStart\n"


def test_configuration_warnings_and_errors(local: Local, tmp_path: Path) -> None:
    bundle = _trail_bundle(tmp_path, tmp_path / "trail", ["ApplicationStart"])
    local.configure(no_such_key="1")
    result = local.deploy(bundle)
    assert "warning: " in result.output and "unknown key 'no_such_key' ignored" in result.output
    local.configure(max_revisions=0)
    result = local.deploy(bundle, expect=1)
    assert "max_revisions must be at least 1" in result.output
    missing = local.run("-c", str(tmp_path / "nope.yml"), "--bundle-location", str(bundle), config=False)
    assert missing.returncode == 1 and "cannot read agent configuration file" in missing.output


def test_local_log_records_each_event(local: Local, tmp_path: Path) -> None:
    bundle = _trail_bundle(tmp_path, tmp_path / "trail", ["ApplicationStart"])
    result = local.deploy(bundle)
    log = (local.log_dir / "opendeploy-local.log").read_text()
    assert f"[{result.deployment_id}] ApplicationStart: Success" in log

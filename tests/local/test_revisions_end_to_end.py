"""Deployments one after another through ``opendeploy local``: file_exists_behavior (with the guide's
three-deployment RETAIN example), ApplicationStop from the previous revision, cleanup of the previous
deployment's files, max_revisions, and hostile bundles (issue 2, items 4, 5, 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_factory import Entry, file, write_tar, write_tree

from conftest import Local


def _bundle(base: Path, name: str, appspec: str, entries: list[Entry]) -> Path:
    return write_tree(base / name, [file("appspec.yml", appspec), *entries])


def _files_appspec(destination: Path, extra: str = "") -> str:
    return f"version: 0.0\nos: linux\nfiles:\n  - source: content\n    destination: {destination}\n{extra}"


# -- file_exists_behavior ---------------------------------------------------------------------------------


@pytest.fixture
def occupied(tmp_path: Path) -> Path:
    """A destination that already holds a file the deployment also brings, put there by hand."""
    destination = tmp_path / "site"
    destination.mkdir()
    (destination / "index.html").write_text("hand-made")
    return destination


def test_default_disallow_fails_install_and_keeps_the_file(
    local: Local, tmp_path: Path, occupied: Path
) -> None:
    bundle = _bundle(tmp_path, "b", _files_appspec(occupied), [file("content/index.html", "from revision")])
    result = local.deploy(bundle, expect=1)
    assert "failed: UnknownError" in result.event_line("Install")
    message = "The deployment failed because a specified file already exists at this location"
    assert f"{message}: {occupied}/index.html" in result.output
    assert (occupied / "index.html").read_text() == "hand-made"


@pytest.mark.parametrize(("option", "expected"), [("OVERWRITE", "from revision"), ("RETAIN", "hand-made")])
def test_cli_option(local: Local, tmp_path: Path, occupied: Path, option: str, expected: str) -> None:
    bundle = _bundle(tmp_path, "b", _files_appspec(occupied), [file("content/index.html", "from revision")])
    local.deploy(bundle, "--file-exists-behavior", option)
    assert (occupied / "index.html").read_text() == expected


def test_appspec_value_wins_over_the_cli_option(local: Local, tmp_path: Path, occupied: Path) -> None:
    appspec = _files_appspec(occupied, "file_exists_behavior: RETAIN\n")
    bundle = _bundle(tmp_path, "b", appspec, [file("content/index.html", "from revision")])
    local.deploy(bundle, "--file-exists-behavior", "OVERWRITE")
    assert (occupied / "index.html").read_text() == "hand-made"


def test_guides_three_deployment_retain_example(local: Local, tmp_path: Path, occupied: Path) -> None:
    """Guide L19498–L19643: deployment 1 (RETAIN) keeps a hand-made file and records it as part of the
    deployment; deployment 2 (OVERWRITE) removes everything deployment 1 installed — the retained file
    included — and then fails; deployment 3, the rollback to revision 1 with RETAIN, can no longer retain
    it: the hand-made content is gone."""
    revision_1 = _bundle(
        tmp_path, "rev1", _files_appspec(occupied), [file("content/index.html", "revision 1")]
    )
    failing_start = "hooks:\n  ApplicationStart:\n    - location: fail.sh\n"
    revision_2 = _bundle(
        tmp_path,
        "rev2",
        _files_appspec(occupied, failing_start),
        [file("content/index.html", "revision 2"), file("fail.sh", "#!/bin/sh\nexit 1\n", 0o755)],
    )
    local.deploy(revision_1, "--file-exists-behavior", "RETAIN")
    assert (occupied / "index.html").read_text() == "hand-made"
    second = local.deploy(revision_2, "--file-exists-behavior", "OVERWRITE", expect=1)
    assert "failed" in second.event_line("ApplicationStart")
    assert (occupied / "index.html").read_text() == "revision 2"
    local.deploy(revision_1, "--file-exists-behavior", "RETAIN")
    assert (occupied / "index.html").read_text() == "revision 1", "the retained content cannot be retrieved"


# -- one revision after another ---------------------------------------------------------------------------


def _stop_appspec(destination: Path, proof: Path, revision: str) -> str:
    return f"""\
version: 0.0
os: linux
files:
  - source: content
    destination: {destination}
hooks:
  BeforeBlockTraffic:
    - location: scripts/record.sh
  ApplicationStop:
    - location: scripts/record.sh
  AfterBlockTraffic:
    - location: scripts/record.sh
  ValidateService:
    - location: scripts/record.sh
"""


def _stop_bundle(base: Path, revision: str, destination: Path, proof: Path) -> Path:
    record = f'#!/bin/sh\necho "$LIFECYCLE_EVENT by {revision} during $DEPLOYMENT_ID" >> {proof}\n'
    entries = [file("scripts/record.sh", record, 0o755), file(f"content/{revision}.txt", revision)]
    return _bundle(base, revision, _stop_appspec(destination, proof, revision), entries)


def test_application_stop_runs_the_previous_revisions_script(local: Local, tmp_path: Path) -> None:
    """Guide L24279–L24289, L26918–L26921: ApplicationStop, BeforeBlockTraffic and AfterBlockTraffic run
    from the last successful revision; not at all on the first deployment."""
    destination, proof = tmp_path / "app", tmp_path / "proof"
    first = local.deploy(_stop_bundle(tmp_path, "rev1", destination, proof))
    assert proof.read_text().splitlines() == [f"ValidateService by rev1 during {first.deployment_id}"]
    proof.unlink()
    second = local.deploy(_stop_bundle(tmp_path, "rev2", destination, proof))
    assert proof.read_text().splitlines() == [
        f"BeforeBlockTraffic by rev1 during {second.deployment_id}",
        f"AfterBlockTraffic by rev1 during {second.deployment_id}",
        f"ApplicationStop by rev1 during {second.deployment_id}",
        f"ValidateService by rev2 during {second.deployment_id}",
    ]


def test_previous_deployments_files_are_removed_but_not_script_made_ones(
    local: Local, tmp_path: Path
) -> None:
    destination, proof = tmp_path / "app", tmp_path / "proof"
    local.deploy(_stop_bundle(tmp_path, "rev1", destination, proof))
    (destination / "made-by-a-script.log").write_text("keep me")
    local.deploy(_stop_bundle(tmp_path, "rev2", destination, proof))
    assert sorted(p.name for p in destination.iterdir()) == ["made-by-a-script.log", "rev2.txt"]


def _deployment_dirs(local: Local) -> list[str]:
    return sorted(p.name for p in local.group_dir().iterdir())


def test_max_revisions_keeps_that_many_besides_the_current_and_always_the_last_successful(
    local: Local, tmp_path: Path
) -> None:
    local.configure(max_revisions=1)
    good = _bundle(tmp_path, "good", "version: 0.0\nos: linux\n", [])
    failing = _bundle(
        tmp_path,
        "bad",
        "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: no.sh\n",
        [file("no.sh", "#!/bin/sh\nexit 1\n", 0o755)],
    )
    ids = [local.deploy(good).deployment_id]
    ids += [local.deploy(failing, expect=1).deployment_id for _ in range(3)]
    # Kept: the current (4th), the most recent other (3rd) and the last successful (1st).
    assert _deployment_dirs(local) == sorted([ids[0], ids[2], ids[3]])


def test_max_revisions_unset_keeps_five_besides_the_current(local: Local, tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, "b", "version: 0.0\nos: linux\n", [])
    ids = [local.deploy(bundle).deployment_id for _ in range(8)]
    assert _deployment_dirs(local) == sorted(ids[-6:])


# -- hostile bundles --------------------------------------------------------------------------------------


def test_hostile_archive_fails_download_and_writes_nothing_outside(local: Local, tmp_path: Path) -> None:
    target = tmp_path / "planted"
    relative = "../" * 8 + str(target).lstrip("/")
    archive = write_tar(
        tmp_path / "evil.tgz",
        [file("appspec.yml", "version: 0.0\nos: linux\n"), file(relative, "x")],
        gzip=True,
    )
    result = local.deploy(archive, "--type", "tgz", expect=1)
    assert "failed: UnknownError" in result.event_line("DownloadBundle")
    assert "refusing to unpack entry" in result.output
    assert "'..' component" in result.output
    assert not target.exists()
    deployment = local.group_dir() / result.deployment_id
    assert not (deployment / "deployment-archive").exists()


def test_bundle_without_appspec_at_its_root(local: Local, tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "b.tar", [file("nested/deeper/appspec.yml", "version: 0.0\nos: linux\n")])
    result = local.deploy(archive, "--type", "tar", expect=1)
    assert "did not find an AppSpec file within the unpacked revision directory" in result.output


def test_invalid_appspec_names_file_key_and_line(local: Local, tmp_path: Path) -> None:
    bundle = _bundle(
        tmp_path, "b", "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - timeout: 5\n", []
    )
    result = local.deploy(bundle, expect=1)
    # The first event that reads the new revision's AppSpec reports it, as on AWS.
    assert "failed: UnknownError" in result.event_line("BeforeInstall")
    assert "appspec.yml: hooks.AfterInstall[0].location" in result.output
    assert "(line 5)" in result.output

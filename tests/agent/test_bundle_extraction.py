"""Unpacking bundles: what a good bundle turns into, and every kind of hostile entry refused with nothing
written outside the deployment archive (issue 2, item 4)."""

from __future__ import annotations

import gzip
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from bundle_factory import (
    Entry,
    directory,
    file,
    hardlink,
    listing,
    symlink,
    write_tar,
    write_tree,
    write_zip,
)

from opendeploy.agent.bundle_extraction import BundleError, copy_directory, extract_tar, extract_zip

GOOD = [
    file("appspec.yml", "version: 0.0\nos: linux\n"),
    directory("scripts", 0o750),
    file("scripts/start.sh", "#!/bin/sh\necho start\n", 0o755),
    file("config/app.conf", "port=80\n", 0o640),
    symlink("current.conf", "config/app.conf"),
    directory("empty"),
]


def _tar(tmp_path: Path, entries: list[Entry]) -> Callable[[Path], None]:
    bundle = write_tar(tmp_path / "bundle.tar", entries)
    return lambda dest: extract_tar(bundle, dest)


def _tgz(tmp_path: Path, entries: list[Entry]) -> Callable[[Path], None]:
    bundle = write_tar(tmp_path / "bundle.tgz", entries, gzip=True)
    return lambda dest: extract_tar(bundle, dest)


def _zip(tmp_path: Path, entries: list[Entry]) -> Callable[[Path], None]:
    bundle = write_zip(tmp_path / "bundle.zip", entries)
    return lambda dest: extract_zip(bundle, dest)


def _dir(tmp_path: Path, entries: list[Entry]) -> Callable[[Path], None]:
    source = write_tree(tmp_path / "bundle-dir", entries)
    return lambda dest: copy_directory(source, dest)


KINDS = {"tar": _tar, "tgz": _tgz, "zip": _zip, "directory": _dir}


@pytest.mark.parametrize("kind", KINDS)
def test_good_bundle_unpacks_with_modes_times_and_links(tmp_path: Path, kind: str) -> None:
    unpack = KINDS[kind](tmp_path, GOOD)
    archive = tmp_path / "deployment-archive"
    unpack(archive)
    assert listing(archive) == {
        "appspec.yml": "version: 0.0\nos: linux\n",
        "scripts": "dir",
        "scripts/start.sh": "#!/bin/sh\necho start\n",
        "config": "dir",
        "config/app.conf": "port=80\n",
        "current.conf": "link:config/app.conf",
        "empty": "dir",
    }
    assert stat.S_IMODE(os.stat(archive / "scripts/start.sh").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(archive / "config/app.conf").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(archive / "scripts").st_mode) == 0o750
    if kind != "directory":
        assert int(os.stat(archive / "config/app.conf").st_mtime) in (1_700_000_000, 1_700_000_000 - 1)


def test_archive_owners_are_not_restored(tmp_path: Path) -> None:
    """Decision: the uid/gid a build machine recorded mean nothing here; files belong to the agent's user
    (the AppSpec's permissions section sets owners)."""
    extract_tar(write_tar(tmp_path / "b.tar", [file("a.txt", "a")]), tmp_path / "out")
    assert os.stat(tmp_path / "out/a.txt").st_uid == os.geteuid()


def test_special_mode_bits_are_dropped(tmp_path: Path) -> None:
    """Decision: setuid/setgid/sticky bits in an archive are not reproduced (use permissions: mode 4755)."""
    extract_tar(write_tar(tmp_path / "b.tar", [file("tool", "x", 0o4755)]), tmp_path / "out")
    assert stat.S_IMODE(os.stat(tmp_path / "out/tool").st_mode) == 0o755


def test_hard_link_inside_the_archive(tmp_path: Path) -> None:
    entries = [file("a.txt", "same"), hardlink("b.txt", "a.txt")]
    extract_tar(write_tar(tmp_path / "b.tar", entries), tmp_path / "out")
    assert (tmp_path / "out/b.txt").read_text() == "same"


def test_read_only_directory_still_receives_its_entries(tmp_path: Path) -> None:
    entries = [directory("ro", 0o555), file("ro/inside.txt", "x")]
    extract_tar(write_tar(tmp_path / "b.tar", entries), tmp_path / "out")
    assert (tmp_path / "out/ro/inside.txt").read_text() == "x"
    assert stat.S_IMODE(os.stat(tmp_path / "out/ro").st_mode) == 0o555


# -- hostile bundles -------------------------------------------------------------------------------------

HOSTILE: dict[str, tuple[list[str], list[Entry], str]] = {
    # name: (bundle kinds, entries, words the error must contain)
    "absolute path": (["tar", "tgz", "zip"], [file("/tmp/planted.txt", "x")], "absolute path"),
    "dot-dot component": (["tar", "tgz", "zip"], [file("a/../../planted.txt", "x")], "'..'"),
    "zip-slip with backslashes": (["zip"], [file("..\\..\\planted.txt", "x")], "'..'"),
    "drive letter": (["zip"], [file("C:/planted.txt", "x")], "absolute path"),
    "absolute symlink": (["tar", "tgz", "zip", "directory"], [symlink("etc", "/etc")], "absolute path"),
    "symlink leaving the archive": (
        ["tar", "tgz", "zip", "directory"],
        [directory("a"), symlink("a/up", "../../outside")],
        "outside the archive",
    ),
    "symlink escaping through another link": (
        ["tar", "tgz", "zip", "directory"],
        [directory("d"), symlink("d/y", ".."), symlink("x", "d/y/..")],
        "leads outside the archive",
    ),
    "write through a symlink": (
        ["tar", "tgz", "zip"],
        [directory("real"), symlink("alias", "real"), file("alias/planted.txt", "x")],
        "through the symbolic link",
    ),
    "hard link to a path outside": (["tar", "tgz"], [hardlink("passwd", "../../etc/passwd")], "'..'"),
    "hard link to a link": (
        ["tar", "tgz"],
        [symlink("l", "a"), file("a", "x"), hardlink("h", "l")],
        "not a regular file",
    ),
    "character device": (["tar", "tgz", "zip"], [Entry("null", "chr")], "device file"),
    "fifo": (["tar", "tgz", "zip", "directory"], [Entry("pipe", "fifo")], "FIFO"),
}

CASES = [(name, kind) for name, (kinds, _, _) in HOSTILE.items() for kind in kinds]


@pytest.mark.parametrize(("case", "kind"), CASES, ids=[f"{kind}-{name}" for name, kind in CASES])
def test_hostile_bundle_is_refused_and_nothing_is_written_outside(
    tmp_path: Path, case: str, kind: str
) -> None:
    _, entries, words = HOSTILE[case]
    work = tmp_path / "work"
    work.mkdir()
    unpack = KINDS[kind](work, [file("appspec.yml", "version: 0.0\n"), *entries])
    # The archive sits three levels down, so '../../' lands inside tmp_path where we can look.
    archive = tmp_path / "root" / "dg" / "deployment-archive"
    before = sorted(p for p in tmp_path.rglob("*") if "root" not in p.parts)
    with pytest.raises(BundleError) as raised:
        unpack(archive)
    assert words in str(raised.value)
    assert not archive.exists(), "a refused bundle leaves no partial archive behind"
    after = sorted(p for p in tmp_path.rglob("*") if "root" not in p.parts)
    assert after == before, "nothing may be written outside the archive"
    assert not Path("/tmp/planted.txt").exists()


def test_error_names_the_entry(tmp_path: Path) -> None:
    bundle = write_tar(tmp_path / "b.tar", [file("ok.txt"), file("../evil.sh", "x")])
    with pytest.raises(BundleError, match=r"refusing to unpack entry '\.\./evil\.sh'"):
        extract_tar(bundle, tmp_path / "out")


def test_corrupt_archive_is_a_clear_error(tmp_path: Path) -> None:
    bundle = tmp_path / "b.tgz"
    bundle.write_bytes(b"this is not a tar file at all" * 40)
    with pytest.raises(BundleError, match="cannot unpack the bundle"):
        extract_tar(bundle, tmp_path / "out")
    not_zip = tmp_path / "b.zip"
    not_zip.write_bytes(b"PK but not really")
    with pytest.raises(BundleError, match="cannot unpack the bundle"):
        extract_zip(not_zip, tmp_path / "out")


def test_truncated_or_corrupt_tgz_is_a_clear_error(tmp_path: Path) -> None:
    whole = write_tar(tmp_path / "b.tgz", [file("a.txt", "a" * 200_000), file("b.txt", "b")], gzip=True)
    truncated = tmp_path / "truncated.tgz"
    truncated.write_bytes(whole.read_bytes()[:-200])
    with pytest.raises(BundleError, match="cannot unpack the bundle"):
        extract_tar(truncated, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    garbage = tmp_path / "garbage.tgz"
    garbage.write_bytes(b"\x1f\x8b" + b"\x00garbage" * 100)
    with pytest.raises(BundleError, match="cannot unpack the bundle"):
        extract_tar(garbage, tmp_path / "out")


def test_concatenated_gzip_members_read_as_one_stream(tmp_path: Path) -> None:
    plain = write_tar(tmp_path / "b.tar", [file("a.txt", "first"), file("b.txt", "second")]).read_bytes()
    bundle = tmp_path / "b.tgz"
    bundle.write_bytes(gzip.compress(plain[:700]) + gzip.compress(plain[700:]))
    extract_tar(bundle, tmp_path / "out")
    assert listing(tmp_path / "out") == {"a.txt": "first", "b.txt": "second"}


@pytest.mark.parametrize("kind", ["tar", "tgz"])
def test_long_names_and_many_members(tmp_path: Path, kind: str) -> None:
    """Names past tar's 100-character field travel in extended headers; data must still line up."""
    deep = "/".join(["a-rather-long-directory-name"] * 6)
    entries = [file(f"{deep}/{n:03d}-{'x' * 80}.txt", f"content {n}\n" * (n + 1)) for n in range(40)]
    KINDS[kind](tmp_path, entries)(tmp_path / "out")
    for n in range(40):
        assert (tmp_path / "out" / deep / f"{n:03d}-{'x' * 80}.txt").read_text() == f"content {n}\n" * (n + 1)

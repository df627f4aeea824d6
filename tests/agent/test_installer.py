"""Install: the ``files`` semantics of the guide's examples, file_exists_behavior, the cleanup file and the
install instructions file (issue 2, item 5; guide L23287–L23507, L19419–L19643)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from bundle_factory import file, listing, symlink, write_tree

from opendeploy.agent.deployment_root import DeploymentRoot
from opendeploy.agent.installer import InstallError, effective_file_exists_behavior, install
from opendeploy.appspec import load_server_appspec
from opendeploy.appspec.model import FileExistsBehavior, FileMapping, ServerAppSpec

LAYOUT_A = [file("my-file.txt", "1"), file("my-file-2.txt", "2"), file("my-file-3.txt", "3")]
LAYOUT_B = [
    file("my-folder/my-file.txt", "1"),
    file("my-folder/my-file-2.txt", "2"),
    file("my-folder/my-file-3.txt", "3"),
]


def _appspec(files_yaml: str, extra: str = "") -> str:
    return f"version: 0.0\nos: linux\nfiles:\n{files_yaml}{extra}"


class Host:
    """A deployment root, a destination directory and a helper to install a revision there."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.root = DeploymentRoot(tmp_path / "root")
        self.dest = tmp_path / "dest"
        self.count = 0

    def install(
        self,
        appspec_text: str,
        entries: list,
        option: FileExistsBehavior | None = None,
        group: str = "dg-1",
    ) -> Path:
        self.count += 1
        text = appspec_text.replace("DEST", str(self.dest))
        archive = write_tree(self.tmp / f"archive-{self.count}", [file("appspec.yml", text), *entries])
        install(load_server_appspec(text), archive, self.root, group, option)
        return archive


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


# The guide's examples 1–9 (L23374–L23507), with / for \ and DEST for c:\temp.
GUIDE_EXAMPLES = {
    "1 one file": (LAYOUT_A, "  - source: ./my-file.txt\n    destination: DEST\n", {"my-file.txt"}),
    "2 two files": (
        LAYOUT_A,
        "  - source: my-file-2.txt\n    destination: DEST\n"
        "  - source: my-file-3.txt\n    destination: DEST\n",
        {"my-file-2.txt", "my-file-3.txt"},
    ),
    "3 whole bundle": (
        LAYOUT_A,
        "  - source: /\n    destination: DEST\n",
        {"appspec.yml", "my-file.txt", "my-file-2.txt", "my-file-3.txt"},
    ),
    "4 folder contents": (
        LAYOUT_B,
        "  - source: ./my-folder\n    destination: DEST\n",
        {"my-file.txt", "my-file-2.txt", "my-file-3.txt"},
    ),
    "5 folder kept by naming it": (
        LAYOUT_B,
        "  - source: ./my-folder\n    destination: DEST/my-folder\n",
        {"my-folder", "my-folder/my-file.txt", "my-folder/my-file-2.txt", "my-folder/my-file-3.txt"},
    ),
    "6 folder renamed": (
        LAYOUT_B,
        "  - source: ./my-folder\n    destination: DEST/other-folder\n",
        {
            "other-folder",
            "other-folder/my-file.txt",
            "other-folder/my-file-2.txt",
            "other-folder/my-file-3.txt",
        },
    ),
    "7 files into a new folder": (
        LAYOUT_B,
        "  - source: ./my-folder/my-file-2.txt\n    destination: DEST/my-folder\n"
        "  - source: ./my-folder/my-file-3.txt\n    destination: DEST/my-folder\n",
        {"my-folder", "my-folder/my-file-2.txt", "my-folder/my-file-3.txt"},
    ),
    "9 whole bundle with overwrite": (
        LAYOUT_B,
        "  - source: /\n    destination: DEST\nfile_exists_behavior: OVERWRITE\n",
        {
            "appspec.yml",
            "my-folder",
            "my-folder/my-file.txt",
            "my-folder/my-file-2.txt",
            "my-folder/my-file-3.txt",
        },
    ),
}


@pytest.mark.parametrize("example", GUIDE_EXAMPLES)
def test_files_section_examples_from_the_guide(host: Host, example: str) -> None:
    entries, files_yaml, expected = GUIDE_EXAMPLES[example]
    host.install(_appspec(files_yaml), entries)
    assert set(listing(host.dest)) == expected


def test_linux_example_zero_file_into_directory_and_directory_contents(host: Host) -> None:
    """Guide L23338–L23352: Config/config.txt goes *into* /webapps/Config; source/ is copied recursively."""
    entries = [
        file("Config/config.txt", "cfg"),
        file("source/index.html", "<h1/>"),
        file("source/css/a.css", "a"),
    ]
    files_yaml = (
        "  - source: Config/config.txt\n    destination: DEST/webapps/Config\n"
        "  - source: source\n    destination: DEST/webapps/myApp\n"
    )
    host.install(_appspec(files_yaml), entries)
    assert listing(host.dest / "webapps") == {
        "Config": "dir",
        "Config/config.txt": "cfg",
        "myApp": "dir",
        "myApp/index.html": "<h1/>",
        "myApp/css": "dir",
        "myApp/css/a.css": "a",
    }


def test_copied_files_keep_mode_and_links_stay_links(host: Host) -> None:
    entries = [file("bin/run", "#!/bin/sh\n", 0o750), symlink("bin/latest", "run")]
    host.install(_appspec("  - source: bin\n    destination: DEST\n"), entries)
    assert os.stat(host.dest / "run").st_mode & 0o777 == 0o750
    assert os.readlink(host.dest / "latest") == "run"


def test_disallow_fails_naming_the_file_and_copies_nothing(host: Host) -> None:
    host.dest.mkdir()
    (host.dest / "my-file-3.txt").write_text("hand-made")
    with pytest.raises(InstallError) as raised:
        host.install(_appspec("  - source: /\n    destination: DEST\n"), LAYOUT_A)
    assert str(raised.value) == (
        f"The deployment failed because a specified file already exists at this location: "
        f"{host.dest / 'my-file-3.txt'}"
    )
    assert listing(host.dest) == {"my-file-3.txt": "hand-made"}, "a refused Install changes nothing"


def test_overwrite_replaces_the_file_and_replaces_a_link_instead_of_writing_through_it(host: Host) -> None:
    host.dest.mkdir()
    (host.dest / "my-file.txt").write_text("old")
    victim = host.tmp / "victim.txt"
    victim.write_text("must stay")
    os.symlink(victim, host.dest / "my-file-2.txt")
    host.install(_appspec("  - source: /\n    destination: DEST\n"), LAYOUT_A, FileExistsBehavior.OVERWRITE)
    assert (host.dest / "my-file.txt").read_text() == "1"
    assert not (host.dest / "my-file-2.txt").is_symlink()
    assert (host.dest / "my-file-2.txt").read_text() == "2"
    assert victim.read_text() == "must stay"


def test_retain_keeps_the_file_and_lists_it_as_part_of_the_deployment(host: Host) -> None:
    """Guide L19504–L19643: retained files are 'recorded as part of the current deployment package'."""
    host.dest.mkdir()
    (host.dest / "my-file.txt").write_text("uploaded by hand")
    host.install(_appspec("  - source: /\n    destination: DEST\n"), LAYOUT_A, FileExistsBehavior.RETAIN)
    assert (host.dest / "my-file.txt").read_text() == "uploaded by hand"
    assert (host.dest / "my-file-2.txt").read_text() == "2"
    cleanup = host.root.cleanup_file("dg-1").read_text().splitlines()
    assert str(host.dest / "my-file.txt") in cleanup


@pytest.mark.parametrize(
    ("in_appspec", "option", "expected"),
    [
        (None, None, FileExistsBehavior.DISALLOW),
        (None, FileExistsBehavior.RETAIN, FileExistsBehavior.RETAIN),
        (FileExistsBehavior.OVERWRITE, FileExistsBehavior.DISALLOW, FileExistsBehavior.OVERWRITE),
        (FileExistsBehavior.DISALLOW, FileExistsBehavior.OVERWRITE, FileExistsBehavior.DISALLOW),
    ],
)
def test_file_exists_behavior_precedence_appspec_then_deployment_then_disallow(
    in_appspec: FileExistsBehavior | None, option: FileExistsBehavior | None, expected: FileExistsBehavior
) -> None:
    extra = f"file_exists_behavior: {in_appspec.value}\n" if in_appspec else ""
    appspec = load_server_appspec(_appspec("  - source: /\n    destination: /srv/x\n", extra))
    assert effective_file_exists_behavior(appspec, option) == expected


def test_appspec_overwrite_wins_over_deployment_disallow_on_disk(host: Host) -> None:
    host.dest.mkdir()
    (host.dest / "my-file.txt").write_text("old")
    files_yaml = "  - source: my-file.txt\n    destination: DEST\nfile_exists_behavior: OVERWRITE\n"
    host.install(_appspec(files_yaml), LAYOUT_A, FileExistsBehavior.DISALLOW)
    assert (host.dest / "my-file.txt").read_text() == "1"


def test_next_install_removes_previous_files_but_never_script_made_files(host: Host) -> None:
    """Guide L19434–L19459: only what CodeDeploy copied is listed in the cleanup file and removed."""
    files_yaml = "  - source: app\n    destination: DEST/app\n"
    host.install(
        _appspec(files_yaml), [file("app/a.txt", "a"), file("app/old/b.txt", "b"), file("app/gone/c", "c")]
    )
    # Scripts of the first deployment made files of their own, one inside a directory Install made.
    (host.dest / "app/e.txt").write_text("made by a script")
    (host.dest / "app/old/f.txt").write_text("made by a script")
    host.install(_appspec(files_yaml), [file("app/a.txt", "a2")])
    assert listing(host.dest) == {
        "app": "dir",
        "app/a.txt": "a2",
        "app/e.txt": "made by a script",
        "app/old": "dir",  # kept: a script's file is in it
        "app/old/f.txt": "made by a script",
    }


def test_cleanup_file_is_per_deployment_group(host: Host) -> None:
    host.install(_appspec("  - source: my-file.txt\n    destination: DEST/one\n"), LAYOUT_A, group="dg-one")
    host.install(_appspec("  - source: my-file.txt\n    destination: DEST/two\n"), LAYOUT_A, group="dg-two")
    assert (host.dest / "one/my-file.txt").exists()
    assert (host.dest / "two/my-file.txt").exists()


def test_interrupted_install_is_cleaned_up_next_time(host: Host) -> None:
    """An Install killed mid-way leaves a cleanup file whose last line may be cut short."""
    host.dest.mkdir()
    (host.dest / "partial.txt").write_text("x")
    host.root.instructions_dir.mkdir(parents=True)
    host.root.cleanup_file("dg-1").write_text(f"{host.dest / 'partial.txt'}\n{host.dest}/half-writ")
    host.install(_appspec("  - source: my-file.txt\n    destination: DEST\n"), LAYOUT_A)
    assert listing(host.dest) == {"my-file.txt": "1"}


def test_install_instructions_file_lists_the_commands(host: Host) -> None:
    host.install(_appspec("  - source: my-folder\n    destination: DEST/new\n"), LAYOUT_B)
    instructions = json.loads(host.root.install_instructions_file("dg-1").read_text())["instructions"]
    assert {"type": "mkdir", "directory": str(host.dest)} in instructions
    assert {"type": "mkdir", "directory": str(host.dest / "new")} in instructions
    copies = [i for i in instructions if i["type"] == "copy"]
    assert [c["destination"] for c in copies] == [
        str(host.dest / "new" / n) for n in sorted(["my-file.txt", "my-file-2.txt", "my-file-3.txt"])
    ]
    assert all(c["source"].endswith("my-folder/" + Path(c["destination"]).name) for c in copies)


@pytest.mark.parametrize(
    ("files_yaml", "message"),
    [
        (
            "  - source: nope.txt\n    destination: DEST\n",
            "files[0]: source 'nope.txt' does not exist in the revision",
        ),
        (
            "  - source: my-file.txt\n    destination: DEST\n"
            "  - source: my-file.txt\n    destination: DEST\n",
            "two sources are copied to",
        ),
    ],
)
def test_bad_files_entries_fail_before_anything_is_copied(host: Host, files_yaml: str, message: str) -> None:
    with pytest.raises(InstallError, match=message.replace("[", r"\[").replace("]", r"\]")):
        host.install(_appspec(files_yaml), LAYOUT_A)
    assert not host.dest.exists()


def test_source_outside_the_revision_is_refused_even_if_the_parser_let_it_through(host: Host) -> None:
    archive = write_tree(host.tmp / "archive", [file("appspec.yml"), *LAYOUT_A])
    appspec = ServerAppSpec("0.0", "linux", files=(FileMapping("../../etc/passwd", str(host.dest)),))
    with pytest.raises(
        InstallError, match=r"files\[0\]: source '\.\./\.\./etc/passwd' is outside the revision"
    ):
        install(appspec, archive, host.root, "dg-1", None)
    assert not host.dest.exists()


def test_a_file_in_the_way_of_a_destination_directory(host: Host) -> None:
    host.dest.write_text("I am a file")
    with pytest.raises(InstallError, match="a file is in the way"):
        host.install(_appspec("  - source: my-file.txt\n    destination: DEST/sub\n"), LAYOUT_A)

"""The ``permissions`` section: the guide's example result table reproduced exactly, and the decisions
taken where the guide is ambiguous (issue 2, item 5; guide L23713–L23977; spec §15.4)."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from bundle_factory import directory, file, write_tree

from opendeploy.agent.deployment_root import DeploymentRoot
from opendeploy.agent.installer import install
from opendeploy.agent.permissions import PermissionsError, installed_objects, plan_permissions
from opendeploy.appspec import load_server_appspec
from opendeploy.appspec.model import Permission

# The guide's example 1, verbatim but for its comments (L23862–L23938).
GUIDE_EXAMPLE = """\
version: 0.0
os: linux
files:
  - source: ./my-file-1.txt
    destination: /tmp/my-app
  - source: ./my-file-2.txt
    destination: /tmp/my-app
  - source: ./my-file-3.txt
    destination: /tmp/my-app
  - source: ./my-folder-1
    destination: /tmp/my-app/my-folder-1
  - source: ./my-folder-2
    destination: /tmp/my-app/my-folder-2
permissions:
  - object: /tmp/my-app
    pattern: "*-3.txt"
    owner: adm
    group: wheel
    mode: 464
    type:
      - file
  - object: /tmp/my-app
    pattern: "*.txt"
    except: [my-file-3.txt]
    owner: ec2-user
    mode: 444
    type:
      - file
  - object: /tmp/my-app/my-folder-1
    pattern: "**"
    except: [my-file-4.txt, my-file-5.txt]
    owner: operator
    mode: 646
    type:
      - file
  - object: /tmp/my-app/my-folder-2
    pattern: "**"
    except: [my-file-8.txt]
    owner: ec2-user
    mode: 777
    type:
      - file
  - object: /tmp/my-app
    pattern: "*my-folder*"
    except: [tmp/my-app/my-folder-2/my-folder-3]
    owner: ec2-user
    mode: 555
    type:
      - directory
  - object: /tmp/my-app/my-folder-2/my-folder-3
    group: wheel
    mode: 564
    type:
      - directory
"""

# The result the guide shows (L23942–L23955), verbatim.
GUIDE_RESULT = """\
-r--r--r-- ec2-user root  my-file-1.txt
-r--r--r-- ec2-user root  my-file-2.txt
-r--rw-r-- adm      wheel my-file-3.txt

dr-xr-xr-x ec2-user root  my-folder-1
-rw-r--r-- root     root  my-file-4.txt
-rw-r--r-- root     root  my-file-5.txt
-rw-r--rw- operator root  my-file-6.txt

dr-xr-xr-x ec2-user root  my-folder-2
-rwxrwxrwx ec2-user root  my-file-7.txt
-rw-r--r-- root     root  my-file-8.txt
-rwxrwxrwx ec2-user root  my-file-9.txt
dr-xrw-r-- root     wheel my-folder-3
"""

BUNDLE = [
    file("my-file-1.txt", "1"),
    file("my-file-2.txt", "2"),
    file("my-file-3.txt", "3"),
    file("my-folder-1/my-file-4.txt", "4"),
    file("my-folder-1/my-file-5.txt", "5"),
    file("my-folder-1/my-file-6.txt", "6"),
    file("my-folder-2/my-file-7.txt", "7"),
    file("my-folder-2/my-file-8.txt", "8"),
    file("my-folder-2/my-file-9.txt", "9"),
    directory("my-folder-2/my-folder-3"),
]

APP = "/tmp/my-app"
INSTALLED = installed_objects(
    [f"{APP}/{e.name}" for e in BUNDLE if e.kind == "file"],
    [APP, f"{APP}/my-folder-1", f"{APP}/my-folder-2", f"{APP}/my-folder-2/my-folder-3"],
)


def _selected(permissions: tuple[Permission, ...]) -> dict[int, list[str]]:
    plan = plan_permissions(permissions, INSTALLED)
    return {index: [p.removeprefix(APP + "/") for p in paths] for index, _, paths in plan.selections}


def test_guide_example_selects_what_each_rules_comment_says() -> None:
    appspec = load_server_appspec(GUIDE_EXAMPLE)
    assert _selected(appspec.permissions) == {
        0: ["my-file-3.txt"],
        1: ["my-file-1.txt", "my-file-2.txt"],
        2: ["my-folder-1/my-file-6.txt"],
        3: ["my-folder-2/my-file-7.txt", "my-folder-2/my-file-9.txt"],
        4: ["my-folder-1", "my-folder-2"],
        5: ["my-folder-2/my-folder-3"],
    }


def test_decision_rule_6_a_directory_entry_applies_to_its_object_when_install_made_it() -> None:
    """Guide L23828–L23833 says ``type: directory`` never applies to ``object`` itself, yet its own
    example (rule 6, L23951–L23955) shows my-folder-3 changed to ``dr-xrw-r-- root wheel``. Decision: the
    result table wins — a ``directory`` entry with the default pattern ``"**"`` also applies to ``object``
    when this deployment created that directory. A narrower pattern only selects what is inside."""
    inside_only = Permission(object=f"{APP}/my-folder-2", pattern="*", types=("directory",), mode="700")
    with_object = Permission(object=f"{APP}/my-folder-2", types=("directory",), mode="700")
    assert _selected((inside_only,)) == {0: ["my-folder-2/my-folder-3"]}
    assert _selected((with_object,)) == {0: ["my-folder-2", "my-folder-2/my-folder-3"]}
    preexisting = Permission(object="/tmp", types=("directory",), mode="700")
    assert "/tmp" not in plan_permissions((preexisting,), INSTALLED).selections[0][2]


def test_decision_double_star_reaches_every_depth_other_patterns_immediate_children() -> None:
    """Guide L23749–L23753 leaves depth open. Decision (as AWS's agent): ``"**"`` matches at any depth,
    for files too (``object: /var/www, owner: apache`` bundles rely on it); ``*`` matches within one path
    component, so ``"*.txt"`` selects only the object's own files — which rule 2 of the example needs."""
    everything = Permission(object=APP, types=("file",), mode="600")
    txt = Permission(object=APP, pattern="*.txt", types=("file",), mode="600")
    nested = Permission(object=APP, pattern="*/*.txt", types=("file",), mode="600")
    assert len(_selected((everything,))[0]) == 9
    assert _selected((txt,))[0] == ["my-file-1.txt", "my-file-2.txt", "my-file-3.txt"]
    assert _selected((nested,))[0] == [
        f"my-folder-{f}/my-file-{n}.txt" for f, n in [(1, 4), (1, 5), (1, 6)]
    ] + [f"my-folder-2/my-file-{n}.txt" for n in (7, 8, 9)]


def test_decision_except_matches_relative_names_and_absolute_paths() -> None:
    """Spec §15.4 item 17: the guide writes except items as bare names (``my-file-3.txt``), as paths
    without a leading slash (``tmp/my-app/...``) and as absolute paths (``/var/www/.../ReadMe.txt``).
    Decision: an item excludes a candidate if it matches the path relative to ``object`` or the
    candidate's absolute path, with or without the leading ``/``."""
    for item in [
        "my-folder-2/my-file-8.txt",
        "tmp/my-app/my-folder-2/my-file-8.txt",
        "/tmp/my-app/my-folder-2/my-file-8.txt",
    ]:
        entry = Permission(object=APP, except_=(item,), types=("file",), mode="600")
        assert "my-folder-2/my-file-8.txt" not in _selected((entry,))[0], item
        assert "my-folder-2/my-file-7.txt" in _selected((entry,))[0]


def test_only_objects_this_install_created_are_candidates() -> None:
    entry = Permission(object="/tmp", types=("file", "directory"), mode="600")
    ((_, _, paths),) = plan_permissions((entry,), INSTALLED).selections
    assert set(paths) == INSTALLED.files | INSTALLED.directories


def test_object_naming_a_file_applies_to_that_file_and_refuses_a_pattern() -> None:
    single = Permission(object=f"{APP}/my-file-1.txt", types=("file",), mode="600")
    assert _selected((single,)) == {0: ["my-file-1.txt"]}
    patterned = Permission(object=f"{APP}/my-file-1.txt", pattern="*.txt", types=("file",), mode="600")
    with pytest.raises(
        PermissionsError, match=r"permissions\[0\]: object /tmp/my-app/my-file-1.txt is a file"
    ):
        plan_permissions((patterned,), INSTALLED)


# -- on disk, as root ------------------------------------------------------------------------------------


def _ls(path: Path) -> str:
    st = os.lstat(path)
    owner, group = pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name
    return f"{stat.filemode(st.st_mode)} {owner} {group} {path.name}"


def _normalise(table: str) -> list[str]:
    return [" ".join(line.split()) for line in table.splitlines() if line.strip()]


@pytest.mark.root
def test_guide_example_result_table_reproduced_exactly(tmp_path: Path, accounts: Callable[..., None]) -> None:
    accounts(users=("adm", "ec2-user", "operator"), groups=("wheel",))
    app = tmp_path / "my-app"
    text = GUIDE_EXAMPLE.replace("tmp/my-app", f"{str(tmp_path)[1:]}/my-app")
    archive = write_tree(tmp_path / "archive", [file("appspec.yml", text), *BUNDLE])
    os.umask(0o022)
    install(load_server_appspec(text), archive, DeploymentRoot(tmp_path / "root"), "dg", None)
    rows = [
        *(app / f"my-file-{n}.txt" for n in (1, 2, 3)),
        app / "my-folder-1",
        *(app / f"my-folder-1/my-file-{n}.txt" for n in (4, 5, 6)),
        app / "my-folder-2",
        *(app / f"my-folder-2/my-file-{n}.txt" for n in (7, 8, 9)),
        app / "my-folder-2/my-folder-3",
    ]
    assert [_ls(p) for p in rows] == _normalise(GUIDE_RESULT)


@pytest.mark.root
def test_acls_owner_group_mode_on_every_file_but_the_excepted_one(
    tmp_path: Path, accounts: Callable[..., None]
) -> None:
    """The guide's example 2 (L23961–L23977), on a host without SELinux: the context is skipped with a
    warning, everything else applies."""
    accounts(users=("bob", "mary", "sam"), groups=("writers",))
    wp = tmp_path / "WordPress"
    text = f"""\
version: 0.0
os: linux
files:
  - source: wordpress
    destination: {wp}
permissions:
  - object: {wp}
    pattern: "**"
    except: [{wp}/ReadMe.txt]
    owner: bob
    group: writers
    mode: 644
    acls:
      - u:mary:rw
      - u:sam:rw
      - m::rw
    context:
      user: unconfined_u
      type: httpd_sys_content_t
      range: s0
    type:
      - file
"""
    bundle = [
        file("wordpress/index.php", "<?php", 0o600),
        file("wordpress/ReadMe.txt", "read me", 0o600),
        file("wordpress/wp-content/themes/t.css", "css", 0o600),
    ]
    archive = write_tree(tmp_path / "archive", [file("appspec.yml", text), *bundle])
    result = install(load_server_appspec(text), archive, DeploymentRoot(tmp_path / "root"), "dg", None)
    for changed in (wp / "index.php", wp / "wp-content/themes/t.css"):
        st = os.stat(changed)
        assert (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name) == ("bob", "writers")
        acl = subprocess.run(
            ["getfacl", "-c", "-p", str(changed)], capture_output=True, text=True, check=True
        ).stdout
        assert "user:mary:rw-" in acl and "user:sam:rw-" in acl and "mask::rw-" in acl
        assert "user::rw-" in acl and "other::r--" in acl
    readme = os.stat(wp / "ReadMe.txt")
    assert (readme.st_uid, stat.S_IMODE(readme.st_mode)) == (0, 0o600)
    assert any("SELinux is not enabled" in w for w in result.warnings)


@pytest.mark.root
def test_setuid_mode_survives_a_change_of_owner(tmp_path: Path, accounts: Callable[..., None]) -> None:
    """Owners are set before the mode: a chown clears setuid, so the other order would lose it."""
    accounts(users=("ec2-user",))
    dest = tmp_path / "bin"
    text = f"""\
version: 0.0
os: linux
files:
  - source: tool
    destination: {dest}
permissions:
  - object: {dest}/tool
    owner: ec2-user
    mode: 4755
"""
    archive = write_tree(tmp_path / "archive", [file("appspec.yml", text), file("tool", "#!/bin/sh\n")])
    install(load_server_appspec(text), archive, DeploymentRoot(tmp_path / "root"), "dg", None)
    st = os.stat(dest / "tool")
    assert stat.filemode(st.st_mode) == "-rwsr-xr-x"
    assert pwd.getpwuid(st.st_uid).pw_name == "ec2-user"


def test_unknown_owner_fails_naming_the_entry_before_anything_is_copied(tmp_path: Path) -> None:
    dest = tmp_path / "d"
    text = f"""\
version: 0.0
os: linux
files:
  - source: a.txt
    destination: {dest}
permissions:
  - object: {dest}
    owner: no-such-user-here
"""
    archive = write_tree(tmp_path / "archive", [file("appspec.yml", text), file("a.txt", "a")])
    with pytest.raises(
        Exception, match=r"permissions\[0\]: owner 'no-such-user-here' is not a user on this host"
    ):
        install(load_server_appspec(text), archive, DeploymentRoot(tmp_path / "root"), "dg", None)
    assert not dest.exists(), "the entry is checked before anything is copied"

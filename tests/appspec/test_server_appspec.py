"""EC2/On-Premises AppSpec: the guide's examples load into the objects they describe, and the grammar's
types, defaults and error reporting behave as a user of appspec.yml expects."""

from __future__ import annotations

import pytest
from appspec_fixtures import fixture_text, whole_server_appspec

from opendeploy.appspec import (
    AppSpecError,
    FileExistsBehavior,
    FileMapping,
    HookScript,
    Permission,
    SELinuxContext,
    load_server_appspec,
)


def test_full_linux_example_loads_as_the_guide_describes_it() -> None:
    """Guide L25062–L25082 and its sequence L25087–L25106."""
    spec = load_server_appspec(fixture_text("ec2_appspec_full_linux.yml"))
    assert (spec.version, spec.os) == ("0.0", "linux")
    assert spec.files == (
        FileMapping("Config/config.txt", "/webapps/Config"),
        FileMapping("source", "/webapps/myApp"),
    )
    assert spec.scripts_for("BeforeInstall") == (
        HookScript("Scripts/UnzipResourceBundle.sh", 3600),
        HookScript("Scripts/UnzipDataBundle.sh", 3600),
    )
    assert spec.scripts_for("AfterInstall") == (HookScript("Scripts/RunResourceTests.sh", 180),)
    assert spec.scripts_for("ApplicationStart") == (HookScript("Scripts/RunFunctionalTests.sh", 3600),)
    assert spec.scripts_for("ValidateService") == (
        HookScript("Scripts/MonitorService.sh", 3600, runas="codedeployuser"),
    )
    assert spec.scripts_for("ApplicationStop") == ()
    assert list(spec.hooks) == ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]
    assert spec.permissions == ()
    assert spec.file_exists_behavior is None


def test_spacing_example_loads_with_scripts_in_file_order() -> None:
    """Guide L25143–L25165: the correctly spaced WordPress example."""
    spec = load_server_appspec(fixture_text("ec2_appspec_spacing_example.yml"))
    assert spec.files == (FileMapping("/", "/var/www/html/WordPress"),)
    assert spec.scripts_for("ApplicationStart") == (
        HookScript("scripts/start_server.sh", 3600),
        HookScript("scripts/create_test_db.sh", 300, runas="root"),
    )
    assert spec.scripts_for("ApplicationStop") == (HookScript("scripts/stop_server.sh", 300, runas="root"),)
    assert list(spec.hooks) == ["BeforeInstall", "AfterInstall", "ApplicationStart", "ApplicationStop"]


def test_hooks_example_fragment_loads() -> None:
    """Guide L24841–L24846: two AfterInstall scripts of 180 s each, indented by 3 and 5 spaces."""
    spec = load_server_appspec(whole_server_appspec(fixture_text("ec2_hooks_example.yml")))
    assert spec.scripts_for("AfterInstall") == (
        HookScript("Scripts/RunResourceTests.sh", 180),
        HookScript("Scripts/PostDeploy.sh", 180),
    )
    assert spec.event_timeout("AfterInstall") == 360


def test_linux_files_section_loads() -> None:
    """Guide L23340–L23344."""
    spec = load_server_appspec(whole_server_appspec(fixture_text("ec2_files_section_linux.yml")))
    assert spec.files == (
        FileMapping("Config/config.txt", "/webapps/Config"),
        FileMapping("source", "/webapps/myApp"),
    )


@pytest.mark.parametrize(
    ("fixture", "files"),
    [
        ("ec2_files_win_ex1.yml", [(".\\my-file.txt", "c:\\temp")]),
        ("ec2_files_win_ex2.yml", [("my-file-2.txt", "c:\\temp"), ("my-file-3.txt", "c:\\temp")]),
        ("ec2_files_win_ex3.yml", [("\\", "c:\\temp")]),
        ("ec2_files_win_ex4.yml", [(".\\my-folder", "c:\\temp")]),
        ("ec2_files_win_ex5.yml", [(".\\my-folder", "c:\\temp\\my-folder")]),
        ("ec2_files_win_ex6.yml", [(".\\my-folder", "c:\\temp\\other-folder")]),
        (
            "ec2_files_win_ex7.yml",
            [
                (".\\my-folder\\my-file-2.txt", "c:\\temp\\my-folder"),
                (".\\my-folder\\my-file-3.txt", "c:\\temp\\my-folder"),
            ],
        ),
        (
            "ec2_files_win_ex8.yml",
            [
                (".\\my-folder\\my-file-2.txt", "c:\\temp\\other-folder"),
                (".\\my-folder\\my-file-3.txt", "c:\\temp\\other-folder"),
            ],
        ),
        ("ec2_files_win_ex9.yml", [("\\", "c:\\temp")]),
    ],
)
def test_windows_files_examples_load_with_paths_as_written(
    fixture: str, files: list[tuple[str, str]]
) -> None:
    """Guide L23374–L23507, examples 1–9: backslashes and drive letters are kept exactly as written."""
    spec = load_server_appspec(whole_server_appspec(fixture_text(fixture), "windows"))
    assert spec.os == "windows"
    assert spec.files == tuple(FileMapping(source, destination) for source, destination in files)


def test_file_exists_behavior_is_read_at_the_top_level() -> None:
    """Guide L23498–L23501 (example 9): file_exists_behavior is a sibling of files."""
    spec = load_server_appspec(whole_server_appspec(fixture_text("ec2_files_win_ex9.yml"), "windows"))
    assert spec.file_exists_behavior is FileExistsBehavior.OVERWRITE


def test_permissions_example_loads_every_rule_as_written() -> None:
    """Guide L23862–L23938: the six rules in order, with the guide's defaults for what is left out."""
    spec = load_server_appspec(fixture_text("ec2_permissions_full_appspec.yml"))
    assert len(spec.files) == 5
    assert spec.permissions == (
        Permission("/tmp/my-app", "*-3.txt", (), "adm", "wheel", "464", types=("file",)),
        Permission("/tmp/my-app", "*.txt", ("my-file-3.txt",), "ec2-user", None, "444", types=("file",)),
        Permission(
            "/tmp/my-app/my-folder-1",
            "**",
            ("my-file-4.txt", "my-file-5.txt"),
            "operator",
            None,
            "646",
            types=("file",),
        ),
        Permission(
            "/tmp/my-app/my-folder-2", "**", ("my-file-8.txt",), "ec2-user", None, "777", types=("file",)
        ),
        Permission(
            "/tmp/my-app",
            "*my-folder*",
            ("tmp/my-app/my-folder-2/my-folder-3",),
            "ec2-user",
            None,
            "555",
            types=("directory",),
        ),
        Permission("/tmp/my-app/my-folder-2/my-folder-3", group="wheel", mode="564", types=("directory",)),
    )


def test_permissions_acls_and_context_example_loads() -> None:
    """Guide L23961–L23977: acls (including the unnamed mask m::rw) and an SELinux context."""
    spec = load_server_appspec(whole_server_appspec(fixture_text("ec2_permissions_acls_context.yml")))
    (permission,) = spec.permissions
    assert permission == Permission(
        object="/var/www/html/WordPress",
        pattern="**",
        except_=("/var/www/html/WordPress/ReadMe.txt",),
        owner="bob",
        group="writers",
        mode="644",
        acls=("u:mary:rw", "u:sam:rw", "m::rw"),
        context=SELinuxContext(type="httpd_sys_content_t", user="unconfined_u", range="s0"),
        types=("file",),
    )


def test_permission_defaults_when_only_object_is_given() -> None:
    """Guide L23749–L23835: pattern "**", no exceptions, ownership and mode left as copied, both types."""
    spec = load_server_appspec(whole_server_appspec("permissions:\n  - object: /srv/app\n"))
    assert spec.permissions == (
        Permission("/srv/app", "**", (), None, None, None, (), None, ("file", "directory")),
    )


@pytest.mark.parametrize(
    ("written", "mode"),
    [
        ("0644", "0644"),  # unquoted: YAML 1.1 would read the octal integer 420
        ('"0644"', "0644"),
        ("'0755'", "0755"),
        ("0755", "0755"),  # YAML 1.1: 493
        ("644", "644"),
        ("4755", "4755"),
        ("0600", "0600"),  # YAML 1.1: 384
        ("7", "7"),
    ],
)
def test_mode_is_kept_exactly_as_written(written: str, mode: str) -> None:
    """Guide L23770–L23795: mode: "0644" and mode: 644 mean the same; an unquoted 0644 must not become 420."""
    spec = load_server_appspec(whole_server_appspec(f"permissions:\n  - object: /srv\n    mode: {written}\n"))
    assert spec.permissions[0].mode == mode


def test_timeout_written_with_a_leading_zero_is_decimal_seconds() -> None:
    """A YAML 1.1 loader reads ``timeout: 0600`` as octal 384; the user means 600 seconds."""
    spec = load_server_appspec(
        whole_server_appspec("hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 0600\n")
    )
    assert spec.scripts_for("AfterInstall")[0].timeout == 600


def test_quoted_timeout_is_accepted_as_aws_agent_does() -> None:
    spec = load_server_appspec(
        whole_server_appspec('hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: "90"\n')
    )
    assert spec.scripts_for("AfterInstall")[0].timeout == 90


def test_error_names_file_key_path_line_and_what_is_wrong() -> None:
    text = (
        "version: 0.0\n"
        "os: linux\n"
        "files:\n"
        "  - source: /\n"
        "    destination: /srv/app\n"
        "hooks:\n"
        "  BeforeInstall:\n"
        "    - location: scripts/a.sh\n"
        "  AfterInstall:\n"
        "    - location: scripts/b.sh\n"
        "      runas: root\n"
        "      timeout: ten\n"
    )
    with pytest.raises(AppSpecError) as caught:
        load_server_appspec(text, "bundle/appspec.yml")
    error = caught.value
    assert (error.source_name, error.key_path, error.line) == (
        "bundle/appspec.yml",
        "hooks.AfterInstall[0].timeout",
        12,
    )
    assert str(error).startswith("bundle/appspec.yml: hooks.AfterInstall[0].timeout (line 12): ")
    assert "positive integer number of seconds" in str(error)
    assert "got 'ten'" in str(error)


def test_every_problem_is_reported_in_file_order() -> None:
    text = "version: 1.0\nos: macos\nfile_exists_behavior: MERGE\n"
    with pytest.raises(AppSpecError) as caught:
        load_server_appspec(text)
    problems = caught.value.problems
    assert [(p.key_path, p.line) for p in problems] == [
        ("version", 1),
        ("os", 2),
        ("file_exists_behavior", 3),
    ]
    assert "0.0" in problems[0].message
    assert "linux, windows" in problems[1].message
    assert "DISALLOW, OVERWRITE, RETAIN" in problems[2].message
    assert all(f"line {p.line}" in str(caught.value) for p in problems)


def test_missing_required_keys_are_named() -> None:
    with pytest.raises(AppSpecError) as caught:
        load_server_appspec("files:\n  - source: /\n    destination: /srv\n")
    assert [(p.key_path, p.message) for p in caught.value.problems] == [
        ("version", "is required but missing"),
        ("os", "is required but missing"),
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_is_rejected(text: str) -> None:
    with pytest.raises(AppSpecError, match="empty; it must define at least 'version' and 'os'"):
        load_server_appspec(text)


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(AppSpecError, match="must be a mapping with the keys version, os"):
        load_server_appspec("- version: 0.0\n")


def test_keys_are_lower_case_and_case_sensitive() -> None:
    """Guide L23226–L23276 writes every EC2 key in lower case; AWS's agent matches them exactly."""
    with pytest.raises(AppSpecError) as caught:
        load_server_appspec("version: 0.0\nos: linux\nHooks:\n  AfterInstall:\n    - location: a.sh\n")
    assert caught.value.key_path == "Hooks"
    assert "did you mean 'hooks'?" in str(caught.value)


def test_a_duplicated_event_is_rejected_rather_than_silently_dropping_scripts() -> None:
    text = whole_server_appspec(
        "hooks:\n  AfterInstall:\n    - location: a.sh\n  AfterInstall:\n    - location: b.sh\n"
    )
    with pytest.raises(AppSpecError) as caught:
        load_server_appspec(text)
    assert (caught.value.key_path, caught.value.line) == ("hooks.AfterInstall", 6)
    assert "more than once (first at line 4)" in str(caught.value)


def test_a_duplicated_top_level_key_is_rejected() -> None:
    with pytest.raises(AppSpecError) as caught:
        load_server_appspec("version: 0.0\nos: linux\nos: windows\n")
    assert (caught.value.key_path, caught.value.line) == ("os", 3)


def test_events_without_scripts_are_ignored() -> None:
    """AWS's agent ignores a hook with no scripts; so does opendeploy."""
    spec = load_server_appspec(whole_server_appspec("hooks:\n  AfterInstall:\n  BeforeInstall: []\n"))
    assert spec.hooks == {}


def test_empty_sections_are_the_same_as_absent_ones() -> None:
    spec = load_server_appspec(whole_server_appspec("files:\npermissions:\nhooks:\n"))
    assert (spec.files, spec.permissions, spec.hooks) == ((), (), {})


def test_custom_events_are_allowed_when_asked_for() -> None:
    """codedeploy-local --events may name events of the user's own, which the AppSpec then hooks."""
    text = whole_server_appspec("hooks:\n  CustomEvent:\n    - location: custom.sh\n")
    with pytest.raises(AppSpecError, match="unknown lifecycle event 'CustomEvent'"):
        load_server_appspec(text)
    spec = load_server_appspec(text, custom_events=["CustomEvent"])
    assert spec.scripts_for("CustomEvent") == (HookScript("custom.sh"),)


def test_sudo_flag_is_read() -> None:
    """AWS's agent accepts ``sudo: true`` on a script entry next to runas."""
    spec = load_server_appspec(
        whole_server_appspec(
            "hooks:\n  AfterInstall:\n    - location: a.sh\n      runas: app\n      sudo: true\n"
        )
    )
    assert spec.scripts_for("AfterInstall") == (HookScript("a.sh", 3600, "app", True),)


def test_yaml_anchors_and_merge_keys_work() -> None:
    text = whole_server_appspec(
        "hooks:\n"
        "  BeforeInstall:\n"
        "    - &common\n"
        "      location: scripts/common.sh\n"
        "      timeout: 60\n"
        "  AfterInstall:\n"
        "    - *common\n"
        "    - <<: *common\n"
        "      location: scripts/after.sh\n"
    )
    spec = load_server_appspec(text)
    assert spec.scripts_for("BeforeInstall") == (HookScript("scripts/common.sh", 60),)
    assert spec.scripts_for("AfterInstall") == (
        HookScript("scripts/common.sh", 60),
        HookScript("scripts/after.sh", 60),
    )


def test_alias_explosion_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    with pytest.raises(AppSpecError, match="expands to more than"):
        load_server_appspec("\n".join(lines) + "\n")


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(AppSpecError, match="alias refers to a value that contains it"):
        load_server_appspec("version: 0.0\nos: linux\nhooks: &h\n  AfterInstall: *h\n")


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(AppSpecError) as caught:
        load_server_appspec("version: 0.0\nos: linux\nfiles:\n  - source: /\n   destination: /srv\n")
    assert caught.value.line == 5
    assert "not valid YAML" in str(caught.value)


def test_tab_indentation_gets_a_hint() -> None:
    with pytest.raises(AppSpecError, match="tabs"):
        load_server_appspec("version: 0.0\nos: linux\nhooks:\n\tAfterInstall: []\n")


def test_several_yaml_documents_are_refused() -> None:
    with pytest.raises(AppSpecError, match="one document"):
        load_server_appspec("version: 0.0\nos: linux\n---\nversion: 0.0\nos: linux\n")


def test_python_specific_yaml_tags_are_refused() -> None:
    with pytest.raises(AppSpecError, match="unsupported YAML tag"):
        load_server_appspec("version: 0.0\nos: !!python/name:os.system linux\n")


def test_byte_order_mark_is_ignored() -> None:
    assert load_server_appspec("\ufeffversion: 0.0\nos: linux\n").os == "linux"


def test_event_timeout_is_the_sum_capped_at_an_hour() -> None:
    """Guide L24624–L24629: 3600 s is the most all scripts of one event may run."""
    spec = load_server_appspec(
        whole_server_appspec(
            "hooks:\n  AfterInstall:\n    - location: a.sh\n      timeout: 5\n    - location: b.sh\n"
        )
    )
    assert spec.event_timeout("AfterInstall") == 3600
    assert spec.event_timeout("BeforeInstall") == 0


def test_custom_events_never_open_up_reserved_ones() -> None:
    text = whole_server_appspec("hooks:\n  Install:\n    - location: a.sh\n")
    with pytest.raises(AppSpecError, match="reserved for CodeDeploy"):
        load_server_appspec(text, custom_events=["Install"])

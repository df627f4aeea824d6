"""Every negative case of Appendix A of the AppSpec reference digest, and the other ways an EC2/On-Premises
AppSpec can be wrong, is refused with an error naming the key path, the line and what is wrong."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from opendeploy.appspec import AppSpecError, load_ecs_appspec, load_lambda_appspec, load_server_appspec

LINUX = "version: 0.0\nos: linux\n"
WINDOWS = "version: 0.0\nos: windows\n"


def hook(*entries: str, event: str = "AfterInstall") -> str:
    """A hooks section whose ``event`` has one script per entry (each entry's lines under '- ')."""
    lines = [f"hooks:\n  {event}:\n"]
    for entry in entries:
        first, *rest = entry.splitlines()
        lines.append(f"    - {first}\n" + "".join(f"      {line}\n" for line in rest))
    return "".join(lines)


def permission(*lines: str) -> str:
    """A permissions section with one entry."""
    first, *rest = lines
    return f"permissions:\n  - {first}\n" + "".join(f"    {line}\n" for line in rest)


SERVER_CASES = [
    # Appendix A
    pytest.param("version: 1.0\nos: linux\n", "version", 1, "must be 0.0", id="version-1.0"),
    pytest.param("version: 0.0\nos: macos\n", "os", 2, "must be one of linux, windows", id="os-macos"),
    pytest.param(
        LINUX + "file_exists_behavior: MERGE\n",
        "file_exists_behavior",
        3,
        "must be one of DISALLOW, OVERWRITE, RETAIN, got 'MERGE'",
        id="file-exists-behavior-merge",
    ),
    pytest.param(
        WINDOWS + permission("object: c:\\temp", "mode: 644"),
        "permissions",
        3,
        "applies to Linux instances only",
        id="permissions-on-windows",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "mode: u+x"),
        "permissions[0].mode",
        5,
        "symbolic modes such as u+x are not supported), got 'u+x'",
        id="mode-symbolic",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "mode: 99999"),
        "permissions[0].mode",
        5,
        "1 to 4 octal digits",
        id="mode-99999",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "acls: [u::rw]"),
        "permissions[0].acls[0]",
        5,
        "unnamed user entry; use mode",
        id="acl-unnamed-user",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "type: [symlink]"),
        "permissions[0].type[0]",
        5,
        "must be one of file, directory, got 'symlink'",
        id="type-symlink",
    ),
    pytest.param(
        LINUX + hook("timeout: 60"),
        "hooks.AfterInstall[0].location",
        5,
        "is required but missing",
        id="no-location",
    ),
    pytest.param(
        LINUX + hook("location: a.sh\ntimeout: 0"),
        "hooks.AfterInstall[0].timeout",
        6,
        "positive integer number of seconds",
        id="timeout-0",
    ),
    pytest.param(
        LINUX + hook("location: a.sh\ntimeout: 1800", "location: b.sh\ntimeout: 1801"),
        "hooks.AfterInstall",
        4,
        "add up to 3601 seconds",
        id="timeouts-sum-3601",
    ),
    pytest.param(
        LINUX + hook("location: a.sh", event="Install"),
        "hooks.Install",
        4,
        "Install is reserved for CodeDeploy and cannot run scripts",
        id="hook-on-install",
    ),
    pytest.param(
        LINUX + hook("location: a.sh", event="DownloadBundle"),
        "hooks.DownloadBundle",
        4,
        "DownloadBundle is reserved for CodeDeploy",
        id="hook-on-download-bundle",
    ),
    pytest.param(
        WINDOWS + hook("location: a.ps1\nrunas: Administrator"),
        "hooks.AfterInstall[0].runas",
        6,
        "Linux instances only",
        id="runas-on-windows",
    ),
    # Top level
    pytest.param(
        LINUX + "resources: []\n", "resources", 3, "unknown key 'resources'", id="unknown-top-level-key"
    ),
    pytest.param(LINUX + "Files: []\n", "Files", 3, "did you mean 'files'?", id="capitalised-key"),
    pytest.param("os: linux\n", "version", None, "is required but missing", id="no-version"),
    pytest.param("version: 0.0\n", "os", None, "is required but missing", id="no-os"),
    pytest.param("version: 0.0\nos: Linux\n", "os", 2, "did you mean 'linux'?", id="os-capitalised"),
    pytest.param("version: '1'\nos: linux\n", "version", 1, "got '1'", id="version-string-1"),
    pytest.param("version: true\nos: linux\n", "version", 1, "got true", id="version-bool"),
    pytest.param("version: [0.0]\nos: linux\n", "version", 1, "got a list", id="version-list"),
    pytest.param(
        LINUX + "file_exists_behavior: overwrite\n",
        "file_exists_behavior",
        3,
        "did you mean 'OVERWRITE'?",
        id="file-exists-behavior-lower-case",
    ),
    # files
    pytest.param(LINUX + "files: /srv\n", "files", 3, "must be a list", id="files-not-a-list"),
    pytest.param(
        LINUX + "files:\n  - source: /\n",
        "files[0].destination",
        4,
        "is required but missing",
        id="no-destination",
    ),
    pytest.param(
        LINUX + "files:\n  - destination: /srv\n",
        "files[0].source",
        4,
        "is required but missing",
        id="no-source",
    ),
    pytest.param(
        LINUX + "files:\n  - source: app\n    destination: srv/app\n",
        "files[0].destination",
        5,
        "fully qualified path",
        id="relative-destination",
    ),
    pytest.param(
        WINDOWS + "files:\n  - source: app\n    destination: \\temp\n",
        "files[0].destination",
        5,
        "fully qualified path such as c:",
        id="windows-destination-without-drive",
    ),
    pytest.param(
        LINUX + "files:\n  - source: ../../etc\n    destination: /srv\n",
        "files[0].source",
        4,
        "must stay inside the revision",
        id="source-leaves-revision",
    ),
    pytest.param(
        LINUX + "files:\n  - source: a\n    destination: /srv\n    mode: 644\n",
        "files[0].mode",
        6,
        "unknown key 'mode' in a files entry",
        id="unknown-files-key",
    ),
    pytest.param(
        LINUX + "files:\n  - source: [a, b]\n    destination: /srv\n",
        "files[0].source",
        4,
        "got a list",
        id="source-list",
    ),
    # hooks
    pytest.param(LINUX + "hooks:\n  - AfterInstall\n", "hooks", 4, "must be a mapping", id="hooks-list"),
    pytest.param(
        LINUX + hook("location: a.sh", event="AfterInstal"),
        "hooks.AfterInstal",
        4,
        "did you mean 'AfterInstall'?",
        id="unknown-event",
    ),
    pytest.param(
        LINUX + hook("location: a.sh", event="afterinstall"),
        "hooks.afterinstall",
        4,
        "did you mean 'AfterInstall'?",
        id="event-lower-case",
    ),
    pytest.param(
        LINUX + hook("location: a.sh", event="AllowTraffic"),
        "hooks.AllowTraffic",
        4,
        "reserved for CodeDeploy",
        id="hook-on-allow-traffic",
    ),
    pytest.param(
        LINUX + hook("location: a.sh", event="BlockTraffic"),
        "hooks.BlockTraffic",
        4,
        "reserved for CodeDeploy",
        id="hook-on-block-traffic",
    ),
    pytest.param(
        LINUX + "hooks:\n  AfterInstall: scripts/a.sh\n",
        "hooks.AfterInstall",
        4,
        "must be a list of scripts",
        id="event-value-not-a-list",
    ),
    pytest.param(
        LINUX + "hooks:\n  AfterInstall:\n    - scripts/a.sh\n",
        "hooks.AfterInstall[0]",
        5,
        "must be a script entry",
        id="script-not-a-mapping",
    ),
    pytest.param(
        LINUX + hook("location: a.sh\ntimeout: ten"),
        "hooks.AfterInstall[0].timeout",
        6,
        "got 'ten'",
        id="timeout-ten",
    ),
    pytest.param(
        LINUX + hook("location: a.sh\ntimeout: -5"),
        "hooks.AfterInstall[0].timeout",
        6,
        "positive integer",
        id="timeout-negative",
    ),
    pytest.param(
        LINUX + hook("location: a.sh\ntimeout: 1.5"),
        "hooks.AfterInstall[0].timeout",
        6,
        "got 1.5",
        id="timeout-fraction",
    ),
    pytest.param(
        LINUX + hook("location: a.sh\ntimeout: 3601"),
        "hooks.AfterInstall[0].timeout",
        6,
        "at most 3600",
        id="timeout-over-an-hour",
    ),
    pytest.param(
        LINUX + hook("location: a.sh\ntimeout: true"),
        "hooks.AfterInstall[0].timeout",
        6,
        "(a boolean)",
        id="timeout-bool",
    ),
    pytest.param(
        LINUX + hook("location: a.sh\ntimeout: 0x10"),
        "hooks.AfterInstall[0].timeout",
        6,
        "got 0x10",
        id="timeout-hex",
    ),
    pytest.param(
        LINUX + hook("location: a.sh\nrunas: two users"),
        "hooks.AfterInstall[0].runas",
        6,
        "single user name",
        id="runas-with-space",
    ),
    pytest.param(
        LINUX + hook("location: a.sh\nrunas: [root]"),
        "hooks.AfterInstall[0].runas",
        6,
        "got a list",
        id="runas-list",
    ),
    pytest.param(
        LINUX + hook("location: a.sh\nsudo: maybe"),
        "hooks.AfterInstall[0].sudo",
        6,
        "true or false",
        id="sudo-not-bool",
    ),
    pytest.param(
        LINUX + hook("location: a.sh\nuser: root"),
        "hooks.AfterInstall[0].user",
        6,
        "unknown key 'user' in a script entry",
        id="unknown-script-key",
    ),
    pytest.param(
        LINUX + hook("location: ../../bin/rm"),
        "hooks.AfterInstall[0].location",
        5,
        "inside the revision",
        id="location-leaves-revision",
    ),
    pytest.param(
        LINUX + hook("location: ''"), "hooks.AfterInstall[0].location", 5, "empty string", id="location-empty"
    ),
    # permissions
    pytest.param(
        LINUX + "permissions:\n  object: /srv\n", "permissions", 4, "must be a list", id="permissions-map"
    ),
    pytest.param(
        LINUX + permission("mode: 644"), "permissions[0].object", 4, "is required but missing", id="no-object"
    ),
    pytest.param(
        LINUX + permission("object: srv/app"),
        "permissions[0].object",
        4,
        "absolute path",
        id="relative-object",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "mode: 0o644"),
        "permissions[0].mode",
        5,
        "got '0o644'",
        id="mode-0o",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "mode: 0x1A4"),
        "permissions[0].mode",
        5,
        "got '0x1A4'",
        id="mode-hex",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "mode: 0800"), "permissions[0].mode", 5, "got '0800'", id="mode-8"
    ),
    pytest.param(
        LINUX + permission("object: /srv", "mode: rwxr-xr-x"),
        "permissions[0].mode",
        5,
        "octal digits",
        id="mode-ls-style",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "acls: u:bob:rw"),
        "permissions[0].acls",
        5,
        "must be a list of setfacl entries",
        id="acls-not-a-list",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "acls: [g::r]"),
        "permissions[0].acls[0]",
        5,
        "unnamed group entry",
        id="acl-unnamed-group",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "acls: ['o::r']"),
        "permissions[0].acls[0]",
        5,
        "unnamed other entry",
        id="acl-other",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "acls: ['m:bob:rw']"),
        "permissions[0].acls[0]",
        5,
        "a mask entry takes no name",
        id="acl-named-mask",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "acls: ['u:bob:rwz']"),
        "permissions[0].acls[0]",
        5,
        "permissions as r, w, x",
        id="acl-bad-perms",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "acls: ['x:bob:rw']"),
        "permissions[0].acls[0]",
        5,
        "must start with user (u), group (g), mask (m) or other (o)",
        id="acl-bad-tag",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "acls: ['u:bob:rw:x']"),
        "permissions[0].acls[0]",
        5,
        "[default:]{user|group|mask|other}:[name]:permissions",
        id="acl-too-many-parts",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "acls: ['d:u:bob:rw']", "type: [file]"),
        "permissions[0].acls[0]",
        5,
        "default ACL entry, which applies to directories only",
        id="default-acl-on-files",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "context:", "  user: unconfined_u"),
        "permissions[0].context.type",
        6,
        "is required but missing",
        id="context-without-type",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "context:", "  type: httpd_t", "  range: s2-s1"),
        "permissions[0].context.range",
        7,
        "high sensitivity below its low one",
        id="context-range-reversed",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "context:", "  type: httpd_t", "  range: s0:c1024"),
        "permissions[0].context.range",
        7,
        "categories up to c1023",
        id="context-category-too-big",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "context:", "  type: httpd_t", "  range: s0:c1,c1"),
        "permissions[0].context.range",
        7,
        "must not repeat a category",
        id="context-category-repeated",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "context:", "  type: httpd_t", "  range: high"),
        "permissions[0].context.range",
        7,
        "must be an SELinux range",
        id="context-range-garbage",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "context:", "  type: httpd_t", "  role: object_r"),
        "permissions[0].context.role",
        7,
        "unknown key 'role' in a context",
        id="context-role",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "context: httpd_t"),
        "permissions[0].context",
        5,
        "must be a mapping with the SELinux labels",
        id="context-not-a-mapping",
    ),
    pytest.param(
        LINUX + permission("object: /srv", 'pattern: "/srv/logs/*.log"'),
        "permissions[0].pattern",
        5,
        "must be relative to object",
        id="pattern-absolute",
    ),
    pytest.param(
        LINUX + permission("object: /srv", 'pattern: ""'),
        "permissions[0].pattern",
        5,
        "empty",
        id="pattern-empty",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "pattern: [a, b]"),
        "permissions[0].pattern",
        5,
        "got a list",
        id="pattern-list",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "except: my-file.txt"),
        "permissions[0].except",
        5,
        "must be a list of names",
        id="except-not-a-list",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "except: [a, [b]]"),
        "permissions[0].except[1]",
        5,
        "got a list",
        id="except-nested",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "type: file"),
        "permissions[0].type",
        5,
        "must be a list of object types",
        id="type-not-a-list",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "type: []"),
        "permissions[0].type",
        5,
        "at least one object type",
        id="type-empty",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "owner: 'bob smith'"),
        "permissions[0].owner",
        5,
        "single user name",
        id="owner-with-space",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "group: 'a:b'"),
        "permissions[0].group",
        5,
        "single group name",
        id="group-with-colon",
    ),
    pytest.param(
        LINUX + permission("object: /srv", "recursive: true"),
        "permissions[0].recursive",
        5,
        "unknown key 'recursive' in a permission entry",
        id="unknown-permission-key",
    ),
]


@pytest.mark.parametrize(("text", "key_path", "line", "gist"), SERVER_CASES)
def test_server_appspec_negative_case(text: str, key_path: str, line: int | None, gist: str) -> None:
    with pytest.raises(AppSpecError) as caught:
        load_server_appspec(text, "appspec.yml")
    error = caught.value
    assert (error.key_path, error.line) == (key_path, line), str(error)
    assert gist in error.reason, str(error)
    where = f"appspec.yml: {key_path}" + (f" (line {line})" if line is not None else "")
    assert str(error).startswith(f"{where}: {error.reason}")


LAMBDA = """\
version: 0.0
Resources:
  - myLambdaFunction:
      Type: AWS::Lambda::Function
      Properties:
        Name: myLambdaFunction
        Alias: live
        CurrentVersion: "{current}"
        TargetVersion: "2"
"""
ECS = """\
version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: arn:aws:ecs:us-east-1:111222333444:task-definition/web:3
        LoadBalancerInfo:
          ContainerName: web
          ContainerPort: 80
"""
VPC = "Resources[0].TargetService.Properties.NetworkConfiguration.AwsvpcConfiguration"


@pytest.mark.parametrize(
    ("loader", "text", "key_path", "line", "gist"),
    [
        pytest.param(
            load_lambda_appspec,
            LAMBDA.format(current="0"),
            "Resources[0].myLambdaFunction.Properties.CurrentVersion",
            8,
            "positive integer",
            id="lambda-currentversion-0",
        ),
        pytest.param(
            load_lambda_appspec,
            LAMBDA.format(current="abc"),
            "Resources[0].myLambdaFunction.Properties.CurrentVersion",
            8,
            "got 'abc'",
            id="lambda-currentversion-abc",
        ),
        pytest.param(
            load_lambda_appspec,
            LAMBDA.format(current="1") + "Hooks:\n  - BeforeInstall: check\n",
            "Hooks[0].BeforeInstall",
            11,
            "BeforeInstall is not a lifecycle event of AWS Lambda deployments",
            id="lambda-hook-before-install",
        ),
        pytest.param(
            load_ecs_appspec,
            ECS + "        NetworkConfiguration:\n          AwsvpcConfiguration:\n"
            "            Subnets: [subnet-1]\n",
            f"{VPC}.SecurityGroups",
            12,
            "all or none of Subnets, SecurityGroups and AssignPublicIp",
            id="ecs-only-subnets",
        ),
        pytest.param(
            load_ecs_appspec,
            ECS + "        NetworkConfiguration:\n          AwsvpcConfiguration:\n"
            "            Subnets: [subnet-1]\n            SecurityGroups: [sg-1]\n"
            "            AssignPublicIp: YES\n",
            f"{VPC}.AssignPublicIp",
            14,
            "must be one of ENABLED, DISABLED",
            id="ecs-assign-public-ip-yes",
        ),
        pytest.param(
            load_ecs_appspec,
            ECS + "Hooks:\n  - AfterAllowTestTrafic: check\n",
            "Hooks[0].AfterAllowTestTrafic",
            11,
            "did you mean 'AfterAllowTestTraffic'?",
            id="ecs-hook-typo",
        ),
        pytest.param(
            load_ecs_appspec,
            "version: 0.0\nResources: []\n",
            "Resources",
            2,
            "exactly one resource",
            id="ecs-no-resources",
        ),
        pytest.param(
            load_ecs_appspec,
            ECS.replace("version: 0.0", "version: 0.1"),
            "version",
            1,
            "must be 0.0",
            id="ecs-version",
        ),
        pytest.param(
            load_lambda_appspec,
            LAMBDA.format(current="1") + "os: linux\n",
            "os",
            10,
            "unknown key 'os' at the top level of an AWS Lambda AppSpec",
            id="lambda-os",
        ),
    ],
)
def test_lambda_and_ecs_negative_case(
    loader: Callable[[str], object], text: str, key_path: str, line: int, gist: str
) -> None:
    with pytest.raises(AppSpecError) as caught:
        loader(text)
    assert (caught.value.key_path, caught.value.line) == (key_path, line), str(caught.value)
    assert gist in caught.value.reason, str(caught.value)

"""The EC2/On-Premises AppSpec (``appspec.yml``): parse the YAML and check every key into a ServerAppSpec.

Keys are lower-case and matched exactly, as in the guide and AWS's agent (guide L23226–L23276).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from opendeploy.appspec.checks import Checker, child, item, suggestion
from opendeploy.appspec.document import Node, is_null, parse_yaml
from opendeploy.appspec.lifecycle_events import (
    SERVER_ALL_EVENTS,
    SERVER_RESERVED_EVENTS,
    SERVER_SCRIPTABLE_EVENTS,
)
from opendeploy.appspec.model import (
    DEFAULT_SCRIPT_TIMEOUT,
    MAX_EVENT_SECONDS,
    FileExistsBehavior,
    FileMapping,
    HookScript,
    ServerAppSpec,
)
from opendeploy.appspec.permissions import check_permissions

TOP_LEVEL_KEYS = ("version", "os", "files", "permissions", "hooks", "file_exists_behavior")
FILE_KEYS = ("source", "destination")
SCRIPT_KEYS = ("location", "timeout", "runas", "sudo")
OPERATING_SYSTEMS = ("linux", "windows")

_WINDOWS_ABSOLUTE = re.compile(r"[A-Za-z]:[\\/]|\\\\[^\\]")


def load_server_appspec(
    text: str, source_name: str = "appspec.yml", *, custom_events: Iterable[str] = ()
) -> ServerAppSpec:
    """Parse and check an EC2/On-Premises AppSpec file (YAML).

    ``custom_events`` are extra lifecycle event names the AppSpec may hook scripts to, as
    ``codedeploy-local --events`` allows; the nine scriptable events are always allowed, the four
    reserved ones never.
    Raises AppSpecError naming every problem.
    """
    checker = Checker(source_name)
    fields = checker.top_level(
        parse_yaml(text, source_name),
        TOP_LEVEL_KEYS,
        required=("version", "os"),
        document="the AppSpec file",
        where="at the top level of an EC2/On-Premises AppSpec",
    )

    def value(key: str) -> Node | None:
        return fields[key][1] if key in fields and not is_null(fields[key][1]) else None

    version = checker.version(value("version"), "version") if value("version") is not None else None
    os_name = None
    if (node := value("os")) is not None:
        os_name = checker.choice(node, "os", OPERATING_SYSTEMS)
    files = _check_files(checker, value("files"), os_name)
    behavior = None
    if (node := value("file_exists_behavior")) is not None:
        text_ = checker.choice(node, "file_exists_behavior", [b.value for b in FileExistsBehavior])
        behavior = FileExistsBehavior(text_) if text_ is not None else None
    permissions = ()
    if (node := value("permissions")) is not None:
        if os_name == "windows":
            checker.report(
                "permissions",
                fields["permissions"][0],
                "applies to Linux instances only; remove it for os: windows",
            )
        else:
            permissions = check_permissions(checker, node, "permissions")
    hooks = _check_hooks(checker, value("hooks"), os_name, frozenset(custom_events))
    checker.raise_if_any()
    assert version is not None and os_name is not None
    return ServerAppSpec(
        version=version,
        os=os_name,
        files=files,
        permissions=permissions,
        hooks=hooks,
        file_exists_behavior=behavior,
        source_name=source_name,
    )


def _check_files(checker: Checker, node: Node | None, os_name: str | None) -> tuple[FileMapping, ...]:
    if is_null(node):
        return ()
    sequence = checker.sequence(node, "files", "a list of '- source: … destination: …' entries")
    if sequence is None:
        return ()
    mappings = []
    for index, entry in enumerate(sequence.items):
        path = item("files", index)
        mapping = checker.mapping(entry, path, "a mapping with source and destination")
        if mapping is None:
            continue
        fields = checker.fields(mapping, path, FILE_KEYS, required=FILE_KEYS, where="in a files entry")
        source = destination = None
        if "source" in fields and not is_null(fields["source"][1]):
            source_node = fields["source"][1]
            source = checker.string(source_node, child(path, "source"), "a path in the revision")
            if source is not None and _escapes_root(source, os_name):
                checker.report(
                    child(path, "source"),
                    source_node,
                    f"must stay inside the revision, got {source!r} (leaves it)",
                )
                source = None
        if "destination" in fields and not is_null(fields["destination"][1]):
            dest_node = fields["destination"][1]
            destination = checker.string(dest_node, child(path, "destination"), "a fully qualified path")
            if destination is not None and not _is_absolute(destination, os_name):
                example = "c:\\\\destination\\\\folder" if os_name == "windows" else "/destination/directory"
                checker.report(
                    child(path, "destination"),
                    dest_node,
                    f"must be a fully qualified path such as {example}, got {destination!r}",
                )
                destination = None
        if source is not None and destination is not None:
            mappings.append(FileMapping(source=source, destination=destination))
    return tuple(mappings)


def _parts(path: str, os_name: str | None) -> list[str]:
    return re.split(r"[\\/]", path) if os_name == "windows" else path.split("/")


def _escapes_root(path: str, os_name: str | None) -> bool:
    """Whether a revision-relative path climbs out of the revision with ``..``."""
    depth = 0
    for part in _parts(path, os_name):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _is_absolute(path: str, os_name: str | None) -> bool:
    if os_name == "windows":
        return _WINDOWS_ABSOLUTE.match(path) is not None
    if os_name == "linux":
        return path.startswith("/")
    return True  # the os is missing or wrong, which is reported already


def _check_hooks(
    checker: Checker, node: Node | None, os_name: str | None, custom_events: frozenset[str]
) -> dict[str, tuple[HookScript, ...]]:
    if is_null(node):
        return {}
    mapping = checker.mapping(node, "hooks", "a mapping of lifecycle event names to lists of scripts")
    if mapping is None:
        return {}
    hooks: dict[str, tuple[HookScript, ...]] = {}
    seen: dict[str, int | None] = {}
    allowed = SERVER_SCRIPTABLE_EVENTS | custom_events
    for key, value in mapping.entries:
        event = key.text
        path = child("hooks", event)
        if event in seen:
            first = seen[event]
            where = f" (first at line {first})" if first is not None else ""
            checker.report(path, key, f"the lifecycle event {event!r} appears more than once{where}")
            continue
        seen[event] = key.line
        if event in SERVER_RESERVED_EVENTS:
            checker.report(
                path,
                key,
                f"{event} is reserved for CodeDeploy and cannot run scripts; "
                "use BeforeInstall or AfterInstall (and the files section for what Install copies)",
            )
            continue
        if event not in allowed:
            hint = suggestion(event, sorted(allowed) + list(SERVER_ALL_EVENTS))
            known = ", ".join(e for e in SERVER_ALL_EVENTS if e in SERVER_SCRIPTABLE_EVENTS)
            checker.report(path, key, f"unknown lifecycle event {event!r}{hint} (scriptable events: {known})")
            continue
        if is_null(value):
            continue  # an event with no scripts runs nothing, as AWS's agent ignores it
        scripts = _check_scripts(checker, value, path, os_name, key.line)
        if scripts:
            hooks[event] = scripts
    return hooks


def _check_scripts(
    checker: Checker, node: Node, path: str, os_name: str | None, event_line: int | None
) -> tuple[HookScript, ...]:
    sequence = checker.sequence(node, path, "a list of scripts ('- location: …')")
    if sequence is None:
        return ()
    scripts = []
    explicit_total = 0
    for index, entry in enumerate(sequence.items):
        entry_path = item(path, index)
        mapping = checker.mapping(
            entry, entry_path, "a script entry (a mapping with location, timeout, runas)"
        )
        if mapping is None:
            continue
        before = len(checker.problems)
        fields = checker.fields(
            mapping, entry_path, SCRIPT_KEYS, required=("location",), where="in a script entry"
        )

        def value(key: str, fields: dict = fields) -> Node | None:
            return fields[key][1] if key in fields and not is_null(fields[key][1]) else None

        location = None
        if (node_ := value("location")) is not None:
            location = checker.string(
                node_, child(entry_path, "location"), "the script's path in the revision"
            )
            if location is not None and _escapes_root(location, os_name):
                checker.report(
                    child(entry_path, "location"),
                    node_,
                    f"must be a path inside the revision, got {location!r} (leaves it)",
                )
        timeout = DEFAULT_SCRIPT_TIMEOUT
        if (node_ := value("timeout")) is not None:
            checked = checker.integer(
                node_,
                child(entry_path, "timeout"),
                minimum=1,
                maximum=MAX_EVENT_SECONDS,
                what=f"a positive integer number of seconds, at most {MAX_EVENT_SECONDS}",
            )
            if checked is not None:
                timeout = checked
                explicit_total += checked
        runas = None
        if (node_ := value("runas")) is not None:
            runas = checker.string(node_, child(entry_path, "runas"), "a user name")
            if runas is not None and os_name == "windows":
                checker.report(
                    child(entry_path, "runas"),
                    node_,
                    "is for Linux instances only; remove it for os: windows",
                )
            elif runas is not None and not re.fullmatch(r"[^\s:]+", runas):
                checker.report(
                    child(entry_path, "runas"), node_, f"must be a single user name, got {runas!r}"
                )
        sudo = False
        if (node_ := value("sudo")) is not None:
            sudo = bool(checker.boolean(node_, child(entry_path, "sudo")))
            if sudo and os_name == "windows":
                checker.report(
                    child(entry_path, "sudo"), node_, "is for Linux instances only; remove it for os: windows"
                )
        if len(checker.problems) == before and location is not None:
            scripts.append(HookScript(location=location, timeout=timeout, runas=runas, sudo=sudo))
    if explicit_total > MAX_EVENT_SECONDS:
        checker.report(
            path,
            event_line,
            f"the scripts' timeouts add up to {explicit_total} seconds, but one lifecycle event may run "
            f"at most {MAX_EVENT_SECONDS} seconds in all",
        )
    return tuple(scripts)

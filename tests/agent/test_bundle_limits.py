"""Size limits on the agent (issue 8, item 8): a bundle that unpacks to more than
``:archive_max_extraction_size:`` (a zip bomb, a tgz of zeros, a zip whose headers lie), or that would
leave less than ``:extraction_free_space_reserve:`` free, is refused by DownloadBundle with a message
naming the bundle, the size, the limit and the key to change — and leaves no partial archive and nothing
outside the deployment directory. An AppSpec file over ``:appspec_max_size:`` is refused the same way,
and a deployment's AppSpec is parsed once, not at every event.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from bundle_factory import Entry, file, write_tar, write_tree

import opendeploy.agent.command_executor as command_executor
from opendeploy.agent.agent_config import AgentConfig
from opendeploy.agent.command_executor import execute_command, is_command_noop
from opendeploy.agent.deployment_specification import (
    BundleType,
    DeploymentSpecification,
    local_specification_document,
    parse_deployment_specification,
)
from opendeploy.agent.diagnostics import Diagnostics

MIB = 1024 * 1024
GROUP = "dg-limits"
APPSPEC = "version: 0.0\nos: linux\n"


def spec_for(location: Path, bundle_type: str, deployment_id: str = "d-LIMITS001") -> DeploymentSpecification:
    return parse_deployment_specification(
        local_specification_document(
            deployment_id=deployment_id,
            deployment_group_id=GROUP,
            deployment_group_name="Limits",
            application_name="LimitsApp",
            location=str(location),
            bundle_type=BundleType(bundle_type),
            file_exists_behavior=None,
            appspec_filename="appspec.yml",
        )
    )


def make_bundle(where: Path, kind: str, entries: list[Entry]) -> Path:
    if kind == "zip":
        # Compressed, as a real zip bomb is (bundle_factory's zips store their data).
        with zipfile.ZipFile(where / "bundle.zip", "w", zipfile.ZIP_DEFLATED) as archive:
            for entry in entries:
                archive.writestr(entry.name, entry.data)
        return where / "bundle.zip"
    if kind in ("tar", "tgz"):
        return write_tar(where / f"bundle.{kind}", entries, gzip=kind == "tgz")
    return write_tree(where / "bundle-dir", entries)


def zeros(size: int, name: str = "data/zeros.bin") -> list[Entry]:
    """A revision whose one big file is all zeros: a few kilobytes compressed, ``size`` unpacked."""
    return [file("appspec.yml", APPSPEC), file(name, bytes(size))]


def everything_under(root: Path) -> set[Path]:
    return {Path(directory, name) for directory, dirs, files in os.walk(root) for name in dirs + files}


def download(config: AgentConfig, bundle: Path, kind: str, deployment_id: str = "d-LIMITS001") -> Diagnostics:
    bundle_type = "directory" if kind == "directory" else kind
    return execute_command("DownloadBundle", spec_for(bundle, bundle_type, deployment_id), config)


def assert_nothing_left(
    config: AgentConfig, outside_before: set[Path], deployment_id: str = "d-LIMITS001"
) -> None:
    """No deployment archive (whole or partial), and nothing new outside the deployment directory."""
    deployment_dir = Path(config.root_dir) / GROUP / deployment_id
    assert not (deployment_dir / "deployment-archive").exists()
    assert not (deployment_dir / "deployment-archive-temp").exists()
    left = {path for path in deployment_dir.iterdir() if path.name != "bundle.tar"}
    assert left == set(), left
    root = Path(config.root_dir)
    new = everything_under(root.parent) - outside_before
    outside = {path for path in new if path != deployment_dir and deployment_dir not in path.parents}
    instructions = root / "deployment-instructions"  # the agent's own bookkeeping: the group's lock file
    assert {path for path in outside if path.parent != instructions} <= {root, root / GROUP, instructions}
    assert all(path.is_dir() or path.stat().st_size == 0 for path in outside)


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    (tmp_path / "bundles").mkdir()
    return AgentConfig(
        root_dir=tmp_path / "root",
        log_dir=tmp_path / "log",
        archive_max_extraction_size=1 * MIB,
        extraction_free_space_reserve=0,
    )


# -- the unpacked size -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "found"),
    [
        # A zip's central directory declares the sizes: refused before anything is written.
        ("zip", "its entries declare 3.0 MiB"),
        # A tar says each entry's size in its header; a gzip stream says nothing until it is read.
        ("tar", "entry 'data/zeros.bin' is 3.0 MiB (3145728 bytes), bringing it to at least 3.0 MiB"),
        ("tgz", "entry 'data/zeros.bin' is 3.0 MiB (3145728 bytes), bringing it to at least 3.0 MiB"),
        ("directory", "entry 'data/zeros.bin' is 3.0 MiB (3145728 bytes), bringing it to at least 3.0 MiB"),
    ],
)
def test_a_bundle_that_unpacks_beyond_the_limit_is_refused(
    tmp_path: Path, config: AgentConfig, kind: str, found: str
) -> None:
    bundle = make_bundle(tmp_path / "bundles", kind, zeros(3 * MIB))
    if kind in ("zip", "tgz"):
        assert bundle.stat().st_size < 64 * 1024  # a bomb: small packed, big unpacked
    before = everything_under(tmp_path)

    diagnostics = download(config, bundle, kind)

    assert not diagnostics.succeeded
    message = diagnostics.message
    assert message.startswith(
        f"{bundle} ({'directory' if kind == 'directory' else kind}): refusing to unpack"
    )
    assert found in message
    assert "more than the limit of 1.0 MiB (1048576 bytes)" in message
    assert ":archive_max_extraction_size: in codedeployagent.yml" in message
    assert_nothing_left(config, before)


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz", "directory"])
def test_many_files_that_together_pass_the_limit_are_refused_at_the_one_that_passes_it(
    tmp_path: Path, config: AgentConfig, kind: str
) -> None:
    entries = [file("appspec.yml", APPSPEC)] + [file(f"part-{n}.bin", bytes(300 * 1024)) for n in range(5)]
    bundle = make_bundle(tmp_path / "bundles", kind, entries)
    before = everything_under(tmp_path)

    diagnostics = download(config, bundle, kind)

    assert not diagnostics.succeeded
    assert "more than the limit of 1.0 MiB" in diagnostics.message
    if kind != "zip":
        assert "entry 'part-3.bin' is 300.0 KiB" in diagnostics.message  # the fourth 300 KiB passes 1 MiB
    assert_nothing_left(config, before)


def _zip_with_declared_size(path: Path, data: bytes, declared: int) -> Path:
    """A zip holding appspec.yml and zeros.bin, whose headers (local and central) say zeros.bin unpacks
    to ``declared`` bytes whatever its data really holds."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("appspec.yml", APPSPEC)
        archive.writestr("zeros.bin", data)
    raw = bytearray(buffer.getvalue())
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        name_offset = 30 if signature == b"PK\x03\x04" else 46
        at = raw.find(signature)
        while at != -1:
            name_length = struct.unpack_from("<H", raw, at + (26 if name_offset == 30 else 28))[0]
            if raw[at + name_offset : at + name_offset + name_length] == b"zeros.bin":
                struct.pack_into("<I", raw, at + size_offset, declared)
            at = raw.find(signature, at + 4)
    path.write_bytes(bytes(raw))
    return path


def test_a_zip_whose_headers_lie_about_sizes_gets_no_more_than_it_declares(
    tmp_path: Path, config: AgentConfig
) -> None:
    cases = [
        # Headers that say 100 bytes over 3 MiB of zeros: nothing past 100 bytes is written, and the
        # entry is found corrupt.
        (bytes(3 * MIB), 100, "cannot unpack the bundle: Bad CRC-32 for file 'zeros.bin'"),
        # Headers that claim 2 GiB: believed, and refused before anything is written.
        (bytes(1000), 2 * 1024**3, "its entries declare 2.0 GiB"),
    ]
    for number, (data, declared, found) in enumerate(cases):
        bundle = _zip_with_declared_size(tmp_path / "bundles" / f"lying-{number}.zip", data, declared)
        deployment_id = f"d-LYING000{number}"
        before = everything_under(tmp_path)

        diagnostics = download(config, bundle, "zip", deployment_id)

        assert not diagnostics.succeeded, (declared, diagnostics)
        assert diagnostics.message.startswith(f"{bundle} (zip): ")
        assert found in diagnostics.message
        assert_nothing_left(config, before, deployment_id)


def test_the_limit_is_read_from_the_configuration_file(tmp_path: Path) -> None:
    from opendeploy.agent.agent_config import parse_agent_config

    bundle = make_bundle(tmp_path, "tgz", zeros(3 * MIB))
    text = f":root_dir: {tmp_path / 'root'}\n:archive_max_extraction_size: 2MiB\n"
    refused = download(parse_agent_config(text), bundle, "tgz", "d-CONFIG0001")
    assert "more than the limit of 2.0 MiB (2097152 bytes)" in refused.message

    allowed = download(parse_agent_config(text.replace("2MiB", "4MB")), bundle, "tgz", "d-CONFIG0002")
    assert allowed.succeeded, allowed


# -- free disk space ---------------------------------------------------------------------------------


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs to hold the deployment root."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs for the deployment root")
    mount_point = tmp_path / "small-fs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.mark.parametrize(
    ("kind", "found"),
    [
        ("zip", "its entries declare 10.0 MiB"),  # from the central directory, before any write
        ("tar", "entry 'data/zeros.bin' needs 10.0 MiB"),
        ("tgz", "entry 'data/zeros.bin' needs 10.0 MiB"),
        ("directory", "entry 'data/zeros.bin' needs 10.0 MiB"),
    ],
)
def test_unpacking_keeps_the_free_space_reserve(
    tmp_path: Path, small_filesystem: Path, kind: str, found: str
) -> None:
    config = AgentConfig(
        root_dir=small_filesystem / "root", log_dir=tmp_path / "log", extraction_free_space_reserve=8 * MIB
    )
    bundles = tmp_path / "bundles"  # the bundles themselves are elsewhere
    (bundles / "big").mkdir(parents=True)
    (bundles / "small").mkdir()
    before = everything_under(small_filesystem)

    diagnostics = download(config, make_bundle(bundles / "big", kind, zeros(10 * MIB)), kind)

    assert not diagnostics.succeeded
    message = diagnostics.message
    assert found in message
    assert "which would leave 6.0 MiB (" in message
    assert f"of the 16.0 MiB now free on the filesystem holding {small_filesystem}/root/" in message
    assert "less than the reserve of 8.0 MiB (8388608 bytes)" in message
    assert ":extraction_free_space_reserve: in codedeployagent.yml" in message
    assert_nothing_left(config, before)
    assert free_bytes(small_filesystem) > 15 * MIB  # the space is given back

    # What leaves the reserve free unpacks.
    fits = download(config, make_bundle(bundles / "small", kind, zeros(2 * MIB)), kind, "d-LIMITS002")
    assert fits.succeeded, fits


# -- the AppSpec file --------------------------------------------------------------------------------

PADDED_APPSPEC = APPSPEC + "# padding\n" * (2 * MIB // 10)  # 2 MiB: valid YAML, mostly comments


def test_an_oversized_appspec_is_refused_at_download_unless_configured(
    tmp_path: Path, config: AgentConfig
) -> None:
    bundle = write_tree(tmp_path / "bundles" / "big-appspec", [file("appspec.yml", PADDED_APPSPEC)])
    config = replace(config, archive_max_extraction_size=64 * MIB)

    diagnostics = download(config, bundle, "directory")

    archive = Path(config.root_dir) / GROUP / "d-LIMITS001" / "deployment-archive"
    assert diagnostics.message == (
        f"The AppSpec file {archive}/appspec.yml is 2.0 MiB ({len(PADDED_APPSPEC)} bytes), more than the "
        f"limit of 1.0 MiB (1048576 bytes); an AppSpec file is normally a few kilobytes. Raise "
        f":appspec_max_size: in codedeployagent.yml if it really must be this big"
    )
    assert not archive.exists()

    allowed = download(replace(config, appspec_max_size=4 * MIB), bundle, "directory", "d-LIMITS002")
    assert allowed.succeeded, allowed


def test_an_appspec_that_grew_after_download_is_refused_when_read(
    tmp_path: Path, config: AgentConfig
) -> None:
    bundle = write_tree(tmp_path / "bundles" / "app", [file("appspec.yml", APPSPEC)])
    spec = spec_for(bundle, "directory")
    assert execute_command("DownloadBundle", spec, config).succeeded
    appspec = Path(config.root_dir) / GROUP / "d-LIMITS001" / "deployment-archive" / "appspec.yml"
    appspec.write_text(PADDED_APPSPEC)

    install = execute_command("Install", spec, config)

    assert not install.succeeded
    assert install.message.startswith(f"The AppSpec file {appspec} is 2.0 MiB")
    assert ":appspec_max_size:" in install.message


# -- the AppSpec parsed once -------------------------------------------------------------------------

EVENTS = ("ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart",
          "ValidateService")  # fmt: skip


def _hooked_appspec(destination: Path, extra: str = "") -> str:
    hooks = "".join(
        f"  {event}:\n    - location: scripts/ok.sh\n"
        for event in ("BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")
    )
    return (
        f"version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {destination}\n"
        f"hooks:\n{hooks}{extra}"
    )


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AppSpec text the agent parses, in order."""
    seen: list[str] = []
    real: Callable[..., Any] = command_executor.load_server_appspec

    def counting(text: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(command_executor, "load_server_appspec", counting)
    return seen


def test_the_appspec_is_parsed_once_per_deployment_and_again_when_it_changes(
    tmp_path: Path, config: AgentConfig, parses: list[str]
) -> None:
    bundle = write_tree(
        tmp_path / "bundles" / "app",
        [
            file("appspec.yml", _hooked_appspec(tmp_path / "www")),
            file("scripts/ok.sh", "#!/bin/sh\nexit 0\n", 0o755),
            file("site/index.html", "<h1>hi</h1>\n"),
        ],
    )
    spec = spec_for(bundle, "directory")

    for event in EVENTS:
        is_command_noop(event, spec, config)  # what the agent asks before acknowledging each event
        diagnostics = execute_command(event, spec, config)
        assert diagnostics.succeeded, (event, diagnostics)

    assert len(parses) == 1
    assert (tmp_path / "www" / "index.html").read_text() == "<h1>hi</h1>\n"

    # Once more: still the one parse. A changed file is read again.
    assert execute_command("ValidateService", spec, config).succeeded
    assert len(parses) == 1
    appspec = Path(config.root_dir) / GROUP / "d-LIMITS001" / "deployment-archive" / "appspec.yml"
    appspec.write_text(appspec.read_text() + "# changed\n")
    assert execute_command("ValidateService", spec, config).succeeded
    assert len(parses) == 2 and parses[-1].endswith("# changed\n")

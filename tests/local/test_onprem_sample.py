"""The guide's on-premises sample application (guide L5960–L6104) through ``opendeploy local``.

The sample writes to /tmp/CodeDeployExample; the test deploys a copy whose appspec.yml and scripts name a
directory under the test's tmp directory instead, and otherwise leaves the sample as the guide wrote it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import EXAMPLES, Local

SAMPLE = EXAMPLES / "CodeDeployDemo-OnPrem"

EXPECTED = {
    "install.txt": "The Install deployment lifecycle event successfully completed.\n",
    "after-install.txt": "The AfterInstall deployment lifecycle event successfully completed.\n",
    "application-start.txt": "The ApplicationStart deployment lifecycle event successfully completed.\n",
    "validate-service.txt": "The ValidateService deployment lifecycle event successfully completed.\n",
}


def _sample_copy(tmp_path: Path) -> tuple[Path, Path]:
    """The sample bundle, pointed at ``<tmp>/CodeDeployExample``; returns (bundle, destination)."""
    bundle = tmp_path / "CodeDeployDemo-OnPrem"
    shutil.copytree(SAMPLE, bundle)
    destination = tmp_path / "CodeDeployExample"
    for path in [bundle / "appspec.yml", *sorted((bundle / "scripts").iterdir())]:
        text = path.read_text()
        assert "/tmp/CodeDeployExample" in text, path
        path.write_text(text.replace("/tmp/CodeDeployExample", str(destination)))
    return bundle, destination


def _contents(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


def test_sample_deploys_exactly_the_four_files_and_again_the_same(local: Local, tmp_path: Path) -> None:
    bundle, destination = _sample_copy(tmp_path)
    first = local.deploy(bundle)
    assert _contents(destination) == EXPECTED
    assert "AppSpec file valid. Local deployment successful" in first.output
    second = local.deploy(bundle)
    assert _contents(destination) == EXPECTED
    assert first.deployment_id != second.deployment_id


def test_sample_leaves_the_agents_layout_under_root_dir(local: Local, tmp_path: Path) -> None:
    bundle, _ = _sample_copy(tmp_path)
    result = local.deploy(bundle, "--deployment-group", "acde1916-9099-7caf-fd21-012345abcdef")
    group = "acde1916-9099-7caf-fd21-012345abcdef"
    deployment = local.root_dir / group / result.deployment_id
    assert sorted(p.name for p in (deployment / "deployment-archive").iterdir()) == [
        "appspec.yml",
        "install.txt",
        "scripts",
    ]
    scripts_log = (deployment / "logs" / "scripts.log").read_text()
    for event in ("BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"):
        assert f"LifecycleEvent - {event}" in scripts_log
    instructions = local.root_dir / "deployment-instructions"
    assert sorted(p.name for p in instructions.iterdir() if not p.name.startswith(".")) == [
        f"{group}-cleanup",
        f"{group}-install.json",
        f"{group}_last_successful_install",
        f"{group}_most_recent_install",
    ]
    assert (instructions / f"{group}_last_successful_install").read_text() == str(deployment)
    deployments_log = local.root_dir / "deployment-logs" / "codedeploy-agent-deployments.log"
    assert f"[{result.deployment_id}]Script - ./scripts/validate-service.sh" in deployments_log.read_text()
    assert "Starting to execute deployment from within folder " + str(deployment) in result.output


@pytest.mark.parametrize(
    ("bundle_type", "command"),
    [
        ("tgz", ["tar", "-czf", "{out}", "-C", "{src}", "."]),
        ("tar", ["tar", "-cf", "{out}", "-C", "{src}", "."]),
        ("zip", ["zip", "-qr", "{out}", "."]),
        # Zipping the folder itself gives a single top-level directory, which is unwrapped.
        ("zip", ["zip", "-qr", "{out}", "CodeDeployDemo-OnPrem"]),
    ],
    ids=["tgz", "tar", "zip", "zip-with-top-folder"],
)
def test_sample_as_an_archive(local: Local, tmp_path: Path, bundle_type: str, command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        pytest.skip(f"needs the {command[0]} command to build the archive")
    bundle, destination = _sample_copy(tmp_path)
    archive = tmp_path / f"sample.{bundle_type}"
    cwd = bundle.parent if "CodeDeployDemo-OnPrem" in command else bundle
    argv = [part.format(out=archive, src=bundle) for part in command]
    subprocess.run(argv, cwd=cwd, check=True)
    shutil.rmtree(bundle)
    local.deploy(archive, "--type", bundle_type)
    assert _contents(destination) == EXPECTED


def test_sample_runs_without_root_with_the_default_root_dir(local: Local, tmp_path: Path) -> None:
    """Not root and no configuration file: deployments go under the user's own data directory."""
    if Path("/etc/codedeploy-agent/conf/codedeployagent.yml").exists():
        pytest.skip("a system-wide agent configuration exists and would be used")
    bundle, destination = _sample_copy(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_DATA_HOME": "", "XDG_STATE_HOME": ""}
    result = local.run("--bundle-location", str(bundle), config=False, unprivileged=True, env=env)
    assert result.returncode == 0, result.output
    assert _contents(destination) == EXPECTED
    root = home / ".local/share/opendeploy/deployment-root/default-local-deployment-group"
    assert (root / result.deployment_id / "logs/scripts.log").exists()

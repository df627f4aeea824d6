"""End-to-end tests of ``opendeploy local``: each test runs the real command as a subprocess.

Every deployment writes under the test's tmp directory: the agent configuration points ``root_dir`` and
``log_dir`` there, and the bundles' destinations are tmp paths too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# The bundle builders live with the agent's unit tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "agent"))
from host_accounts import ensure_accounts

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@dataclass
class Result:
    returncode: int
    output: str

    @property
    def deployment_id(self) -> str:
        match = re.search(r"/(d-[A-Z0-9]{9}-local)\b", self.output)
        assert match, self.output
        return match.group(1)

    def events_run(self) -> list[str]:
        """The lifecycle events the command reported, in order."""
        return re.findall(r"^  (\w+) +(?:succeeded|skipped|failed)", self.output, re.MULTILINE)

    def event_line(self, event: str) -> str:
        for line in self.output.splitlines():
            if line.strip().startswith(event + " "):
                return line
        raise AssertionError(f"no line for {event} in:\n{self.output}")


class Local:
    """Runs ``opendeploy local`` with an agent configuration whose directories are in ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root_dir = base / "deployment-root"
        self.log_dir = base / "log"
        self.config = base / "codedeployagent.yml"
        self.configure()

    def configure(self, **extra: object) -> None:
        lines = [f":root_dir: {self.root_dir}", f":log_dir: {self.log_dir}", ":hook_kill_grace_seconds: 1"]
        lines += [f":{key}: {value}" for key, value in extra.items()]
        self.config.write_text("\n".join(lines) + "\n")

    def run(
        self,
        *args: str,
        config: bool = True,
        timeout: float = 120,
        unprivileged: bool = False,
        env: dict[str, str] | None = None,
    ) -> Result:
        """Run the command; ``unprivileged``: as a user that is not root (in a user namespace when
        the tests run as root, so the interpreter under /root stays reachable)."""
        command = [sys.executable, "-m", "opendeploy", "local"]
        if config:
            command += ["-c", str(self.config)]
        command += list(args)
        if unprivileged and os.geteuid() == 0:
            command = ["unshare", "--user", *command]
        completed = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            cwd=self.base,
            env={**os.environ, "COLUMNS": "200", **(env or {})},
            check=False,
        )
        return Result(completed.returncode, completed.stdout)

    def deploy(self, bundle: Path, *args: str, expect: int = 0, **kwargs: object) -> Result:
        result = self.run("--bundle-location", str(bundle), *args, **kwargs)  # type: ignore[arg-type]
        assert result.returncode == expect, result.output
        return result

    def group_dir(self, group: str = "default-local-deployment-group") -> Path:
        return self.root_dir / group


@pytest.fixture
def local(tmp_path: Path) -> Local:
    return Local(tmp_path)


@pytest.fixture(scope="session")
def accounts() -> Callable[..., None]:
    """``accounts(users=[...], groups=[...])`` creates what is missing (idempotent); skips when not root."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates users and runs scripts as them")
    return ensure_accounts


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A tmp directory every user can reach (for runas and non-root runs; pytest's is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="opendeploy-local-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def needs_root(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.geteuid() != 0, reason=f"needs root: {reason}")

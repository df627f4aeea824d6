"""Helpers shared by the AppSpec tests: the guide's example fixtures and a way to make fragments whole."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
"""Copies of /work/shared/spec/fixtures: the guide's AppSpec examples with the repairs listed in Appendix A of
the AppSpec reference digest (stray PDF indentation removed, wrapped ARNs re-joined, JSON fragments
wrapped)."""


def fixture_text(name: str) -> str:
    """The text of one guide fixture."""
    return (FIXTURES / name).read_text()


def whole_server_appspec(fragment: str, os_name: str = "linux") -> str:
    """A fragment of the guide (a files:, hooks: or permissions: section alone) as a whole EC2 AppSpec."""
    return f"version: 0.0\nos: {os_name}\n{fragment}"

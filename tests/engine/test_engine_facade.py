"""The API uses the engine through one entry point: ``opendeploy.engine``'s namespace (DESIGN: "used by
the API through one narrow entry point"), and the engine's process parts through ``opendeploy.runtime``."""

from __future__ import annotations

import ast
from pathlib import Path

import opendeploy.api

API = Path(opendeploy.api.__file__).parent


def test_the_api_imports_no_engine_module_but_the_package() -> None:
    reaching_in = []
    for path in sorted(API.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            reaching_in += [
                f"{path.relative_to(API)}: {name}" for name in names if name.startswith("opendeploy.engine.")
            ]
    assert reaching_in == []

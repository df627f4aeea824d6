"""Engine tests reuse the simulated agents of the command service tests."""

from __future__ import annotations

import sys
from pathlib import Path

# command_agents lives with the command service tests; both suites drive agents the same way.
sys.path.insert(0, str(Path(__file__).parent.parent / "commands"))

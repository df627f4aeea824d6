"""For ``bench/api.py`` only: Python loads this module at start-up when its directory is on
``PYTHONPATH``. It lets the bench start servers from this very code (or a baseline's) with two
switches, set in the server's environment:

- ``OPENDEPLOY_BENCH_UNCHECKED=1`` turns the server's authorization and audit trail off, so that the
  same code can be measured with and without them in one run. It replaces, in
  ``opendeploy.api.awsjson``, the three calls that do that work for the CodeDeploy API: reading the
  caller's policies (``principal_for``: every caller is allowed everything), recording a request's
  event after its answer (``record_in_trail``) and inside a write's transaction (``insert_events``).
  The bench checks that a server started this way lets a user without policies in; if these names
  move, that check fails instead of the figures quietly measuring the checks.
- ``OPENDEPLOY_BENCH_ENGINE_GATE=<path>``: while a file exists at ``path``, the engine worker does not
  start its next cycle. The bench holds the engine back while it measures CreateDeployment, so the
  figure is the API call's cost, not however many of the engine's rounds fell inside the measurement;
  it measures the engine's run of the new deployments afterwards, on its own.

Never put this directory on the path of a server anyone uses.
"""

from __future__ import annotations

import os
import time
from typing import Any

if os.environ.get("OPENDEPLOY_BENCH_UNCHECKED") == "1":
    from opendeploy.api import authorization, awsjson

    for _name in ("principal_for", "record_in_trail", "insert_events"):
        if not hasattr(awsjson, _name):
            raise RuntimeError(f"bench/server_hooks: opendeploy.api.awsjson has no {_name} to replace")

    def _everyone_may_do_everything(session: Any, caller: Any, now: float) -> authorization.Principal:
        return authorization.Principal((), {}, unrestricted=True)

    async def _record_nothing(request: Any, call: Any) -> None:
        return None

    def _insert_nothing(session: Any, events: Any) -> None:
        return None

    awsjson.principal_for = _everyone_may_do_everything
    awsjson.record_in_trail = _record_nothing
    awsjson.insert_events = _insert_nothing

_GATE = os.environ.get("OPENDEPLOY_BENCH_ENGINE_GATE")
if _GATE:
    from opendeploy.engine.worker import EngineWorker

    _cycle = EngineWorker._cycle

    def _gated_cycle(self: Any) -> float:
        while os.path.exists(_GATE):  # in the engine's worker thread: the event loop serves on
            time.sleep(0.02)
        return _cycle(self)

    EngineWorker._cycle = _gated_cycle  # type: ignore[method-assign]

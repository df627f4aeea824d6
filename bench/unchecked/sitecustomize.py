"""For ``bench/api.py --unchecked`` only: Python loads this module at start-up when its directory is on
``PYTHONPATH``, and it turns the server's authorization and audit trail off, so that the same code can
be measured with and without them in one run.

It replaces, in ``opendeploy.api.awsjson``, the three calls that do that work for the CodeDeploy API:
reading the caller's policies (``principal_for``: every caller is allowed everything), recording a
request's event after its answer (``record_in_trail``) and inside a write's transaction
(``insert_events``). The bench checks that the server it starts this way lets a user without policies
in; if these names move, that check fails instead of the figures quietly measuring the checks.
Never put this directory on the path of a server anyone uses.
"""

from __future__ import annotations

from typing import Any

from opendeploy.api import authorization, awsjson

for _name in ("principal_for", "record_in_trail", "insert_events"):
    if not hasattr(awsjson, _name):
        raise RuntimeError(f"bench/unchecked: opendeploy.api.awsjson has no {_name} to replace")


def _everyone_may_do_everything(session: Any, caller: Any, now: float) -> authorization.Principal:
    return authorization.Principal((), {}, unrestricted=True)


async def _record_nothing(request: Any, call: Any) -> None:
    return None


def _insert_nothing(session: Any, events: Any) -> None:
    return None


awsjson.principal_for = _everyone_may_do_everything
awsjson.record_in_trail = _record_nothing
awsjson.insert_events = _insert_nothing

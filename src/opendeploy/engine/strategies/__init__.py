"""The one dispatch point from a deployment to the strategy that carries it out.

The strategies this server runs are the modules in ``STRATEGY_MODULES``; each registers itself for the
keys it serves (``base.register``). They are imported on first use rather than with this package,
because they build on engine modules (the end transition, host commands) that themselves ask for
strategies. A key no strategy serves is the one failure path for what is not built yet: the deployment
fails at start with INTERNAL_ERROR and a message saying what this server does not run.
"""

from __future__ import annotations

import importlib
from functools import cache

from opendeploy.engine.strategies.base import (
    Strategy,
    StrategyKey,
    not_supported_message,
    registered,
)
from opendeploy.store.models import Deployment

__all__ = ["NoStrategy", "Strategy", "StrategyKey", "find_strategy", "strategy_for"]

STRATEGY_MODULES = (
    "opendeploy.engine.strategies.server_in_place",
    "opendeploy.engine.strategies.server_blue_green",
)


class NoStrategy(LookupError):
    """No strategy is registered for a deployment's key (the message says what is not supported)."""

    def __init__(self, key: StrategyKey) -> None:
        super().__init__(not_supported_message(key))
        self.key = key


@cache
def _load() -> None:
    for name in STRATEGY_MODULES:
        importlib.import_module(name)


def find_strategy(key: StrategyKey) -> Strategy | None:
    """The strategy registered for ``key``, if any."""
    _load()
    return registered(key)


def strategy_for(deployment: Deployment) -> Strategy:
    """The strategy that carries out ``deployment``; ``NoStrategy`` if this server runs none for it."""
    key = StrategyKey.of_deployment(deployment)
    strategy = find_strategy(key)
    if strategy is None:
        raise NoStrategy(key)
    return strategy

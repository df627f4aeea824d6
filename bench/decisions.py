"""Benchmark: how long one batching decision (``domain/batching.next_dispatch``) takes over a large fleet.

The engine calls ``next_dispatch`` at every state change of a deployment, so its cost over the whole
fleet bounds how fast a large deployment can move. Prints, per fleet size, the median time of one
decision over a fleet where nothing has started yet (AllAtOnce: every host is dispatched) and over one
half-way through (HalfAtATime, half the hosts succeeded), next to the same-run baseline of the least any
decision must do: one pass over the targets building the list of hosts to start.

    .venv/bin/python bench/decisions.py                   # 1,000, 5,000 and 20,000 hosts, 21 repeats
    .venv/bin/python bench/decisions.py --hosts 5000 --repeat 51
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from opendeploy.domain.batching import FleetTarget, next_dispatch
from opendeploy.domain.deployment_config import PREDEFINED_CONFIGS
from opendeploy.domain.statuses import TargetStatus


def median_seconds(run: Callable[..., object], *args: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        run(*args)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def pending_names(targets: list[FleetTarget]) -> list[str]:
    """The baseline: one pass over the targets, as any decision must make."""
    return [target.name for target in targets if target.status is TargetStatus.PENDING]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    all_at_once = PREDEFINED_CONFIGS["CodeDeployDefault.AllAtOnce"].minimum_healthy_hosts
    half = PREDEFINED_CONFIGS["CodeDeployDefault.HalfAtATime"].minimum_healthy_hosts
    print(f"{'hosts':>7} {'scenario':<22} {'decision':>10} {'baseline':>10} {'ratio':>7}")
    for hosts in args.hosts:
        fresh = [FleetTarget(f"host-{k:06d}") for k in range(hosts)]
        halfway = [
            FleetTarget(target.name, TargetStatus.SUCCEEDED) if k % 2 else target
            for k, target in enumerate(fresh)
        ]
        scenarios = (("nothing started", fresh, all_at_once), ("half succeeded", halfway, half))
        for scenario, targets, config in scenarios:
            decision = median_seconds(next_dispatch, targets, config, repeat=args.repeat)
            baseline = median_seconds(pending_names, targets, repeat=args.repeat)
            print(
                f"{hosts:>7} {scenario:<22} {decision * 1000:>8.2f}ms {baseline * 1000:>8.2f}ms "
                f"{decision / baseline:>6.1f}x"
            )


if __name__ == "__main__":
    main()

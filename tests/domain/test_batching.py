"""The dispatch decision on the guide's worked examples: batch sizes, order, final statuses, skipped ones.

Guide references are lines of /work/shared/guide/codedeploy-user-guide.txt.
"""

from __future__ import annotations

import pytest
from fleet_simulation import names, simulate

from opendeploy.domain.batching import FleetTarget, next_dispatch
from opendeploy.domain.deployment_config import PREDEFINED_CONFIGS
from opendeploy.domain.instance_health import HealthStatus, InstanceHealth, RevisionHealth
from opendeploy.domain.minimum_healthy_hosts import MinimumHealthyHosts, MinimumHealthyHostsType
from opendeploy.domain.statuses import DeploymentStatus, ErrorCode, TargetStatus

ALL_AT_ONCE = PREDEFINED_CONFIGS["CodeDeployDefault.AllAtOnce"].minimum_healthy_hosts
HALF_AT_A_TIME = PREDEFINED_CONFIGS["CodeDeployDefault.HalfAtATime"].minimum_healthy_hosts
ONE_AT_A_TIME = PREDEFINED_CONFIGS["CodeDeployDefault.OneAtATime"].minimum_healthy_hosts


def hosts(value: int) -> MinimumHealthyHosts:
    return MinimumHealthyHosts(MinimumHealthyHostsType.HOST_COUNT, value)


def percent(value: int) -> MinimumHealthyHosts:
    return MinimumHealthyHosts(MinimumHealthyHostsType.FLEET_PERCENT, value)


def sizes(batches: list[tuple[str, ...]]) -> list[int]:
    return [len(b) for b in batches]


# --- batch size = total − minimum (guide L14490–14512) ---------------------------------------------------


@pytest.mark.parametrize(
    ("minimum", "expected"),
    [(9, [1] * 10), (3, [7, 3]), (0, [10])],
    ids=["M=9: one at a time", "M=3: 7 then the remaining 3", "M=0: all 10 at once"],
)
def test_ten_hosts_batch_sizes(minimum: int, expected: list[int]) -> None:
    """Guide L14500–14512: 10 instances with minimum 9 -> 1 at a time; 3 -> 7, then the remaining 3;
    0 -> all 10 at once. Instances that take equally long finish batch by batch."""
    run = simulate(10, hosts(minimum), together=True)
    assert sizes(run.batches) == expected
    assert run.status is DeploymentStatus.SUCCEEDED
    assert run.with_status(TargetStatus.SUCCEEDED) == names(10)


def test_a_finished_instance_frees_its_slot_at_once() -> None:
    """Decision (guide L14490–14493, "as many instances as it can without any risk"): the batch size is the
    most instances offline at a time, not a wave. When one of the first 7 finishes, the next starts
    while the other 6 are still being deployed to; never more than 7 at once."""
    run = simulate(10, hosts(3), together=False)
    assert sizes(run.batches) == [7, 1, 1, 1]
    assert run.max_offline == 7
    assert run.status is DeploymentStatus.SUCCEEDED


# --- the 10-instance examples (guide L14514–14547) -------------------------------------------------------


def test_95_percent_of_10_fails_at_once_without_deploying() -> None:
    """Guide L14517–14521: 95% of 10 rounds up to 10, which equals the number of instances: the deployment
    fails immediately (HEALTH_CONSTRAINTS_INVALID, L14482–14488) and no instance is deployed to."""
    run = simulate(10, percent(95))
    assert run.status is DeploymentStatus.FAILED
    assert run.decision.error_code is ErrorCode.HEALTH_CONSTRAINTS_INVALID
    assert run.started == []
    assert run.with_status(TargetStatus.SKIPPED) == names(10)
    assert "10 of 10" in (run.decision.message or "")


@pytest.mark.parametrize("failing", [f"i{k:02d}" for k in range(1, 10)])
def test_minimum_9_any_failure_but_the_last_fails_at_once(failing: str) -> None:
    """Guide L14523–14530: minimum 9 of 10 deploys one at a time; a failure on any instance fails the
    deployment immediately, and no further instance is deployed to (they are Skipped)."""
    run = simulate(10, hosts(9), {failing})
    assert run.status is DeploymentStatus.FAILED
    assert run.decision.error_code is ErrorCode.HEALTH_CONSTRAINTS
    assert run.started[-1] == failing
    position = names(10).index(failing)
    assert run.with_status(TargetStatus.SKIPPED) == names(10)[position + 1 :]
    assert run.with_status(TargetStatus.SUCCEEDED) == names(10)[:position]


def test_minimum_9_a_failure_on_the_last_instance_still_succeeds() -> None:
    """Guide L14527–14528: "if the last instance fails, the deployment still succeeds"."""
    run = simulate(10, hosts(9), {"i10"})
    assert run.status is DeploymentStatus.SUCCEEDED
    assert run.with_status(TargetStatus.FAILED) == ["i10"]
    assert run.with_status(TargetStatus.SUCCEEDED) == names(9)


def test_minimum_9_all_succeed_leaves_ten_healthy() -> None:
    """Guide L14529–14531: one at a time until done; all 10 succeed."""
    run = simulate(10, hosts(9))
    assert sizes(run.batches) == [1] * 10
    assert run.status is DeploymentStatus.SUCCEEDED
    assert run.with_status(TargetStatus.SUCCEEDED) == names(10)


def test_minimum_8_deploys_two_at_a_time() -> None:
    """Guide L14536: minimum 8 of 10 deploys to two instances at a time."""
    run = simulate(10, hosts(8), together=True)
    assert sizes(run.batches) == [2, 2, 2, 2, 2]
    assert run.status is DeploymentStatus.SUCCEEDED


@pytest.mark.parametrize("together", [True, False], ids=["same speed", "different speeds"])
def test_minimum_8_two_failures_fail_at_once(together: bool) -> None:
    """Guide L14536–14538: if two deployments fail, the overall deployment fails immediately; the
    instances not yet deployed to are Skipped."""
    run = simulate(10, hosts(8), {"i03", "i06"}, together=together)
    assert run.status is DeploymentStatus.FAILED
    assert run.decision.error_code is ErrorCode.HEALTH_CONSTRAINTS
    assert run.started[-1] in ("i06", "i07")  # nothing starts after the second failure
    assert set(run.with_status(TargetStatus.SKIPPED)) == set(names(10)) - set(run.started)
    assert run.with_status(TargetStatus.FAILED) == ["i03", "i06"]


def test_minimum_8_two_failures_in_one_batch_fail_at_once() -> None:
    """Guide L14536–14538: both instances of the first batch fail -> the deployment fails, 8 Skipped."""
    run = simulate(10, hosts(8), {"i01", "i02"}, together=True)
    assert run.status is DeploymentStatus.FAILED
    assert run.with_status(TargetStatus.SKIPPED) == names(10)[2:]


@pytest.mark.parametrize("together", [True, False], ids=["same speed", "different speeds"])
def test_minimum_8_second_failure_on_the_last_instance_succeeds(together: bool) -> None:
    """Guide L14537–14538: "if the last instance is the second to fail, the deployment still succeeds"."""
    run = simulate(10, hosts(8), {"i03", "i10"}, together=together)
    assert run.status is DeploymentStatus.SUCCEEDED
    assert run.with_status(TargetStatus.FAILED) == ["i03", "i10"]
    assert len(run.with_status(TargetStatus.SUCCEEDED)) == 8


def test_minimum_8_after_one_failure_only_one_more_at_a_time() -> None:
    """Guide L14446–14447: never below the minimum. After one failure only one instance may be offline
    besides it, so the rest go one at a time (8 healthy must remain)."""
    run = simulate(10, hosts(8), {"i01"}, together=True)
    assert sizes(run.batches) == [2] + [1] * 8
    assert run.status is DeploymentStatus.SUCCEEDED
    assert run.max_offline == 2


def test_minimum_0_deploys_all_at_once_and_needs_one_success() -> None:
    """Guide L14540–14546: minimum 0 deploys to the whole group at once; it succeeds with one success."""
    run = simulate(10, hosts(0), set(names(10)[1:]))
    assert sizes(run.batches) == [10]
    assert run.status is DeploymentStatus.SUCCEEDED
    assert run.with_status(TargetStatus.SUCCEEDED) == ["i01"]


def test_minimum_0_with_no_success_fails() -> None:
    """Guide L14542–14546 and L14315–14319: with 0 healthy instances at the end the deployment fails,
    even though the minimum is 0."""
    run = simulate(10, hosts(0), set(names(10)))
    assert run.status is DeploymentStatus.FAILED
    assert run.decision.error_code is ErrorCode.HEALTH_CONSTRAINTS
    assert run.with_status(TargetStatus.FAILED) == names(10)
    assert run.with_status(TargetStatus.SKIPPED) == []


def test_85_percent_of_10_one_failure_fails() -> None:
    """Guide L14303–14309: 85% of 10 instances (rounded up: 9) - a single failed instance fails the
    deployment, because one more offline instance would leave 80%. (As in the minimum-9 example, the
    failure of the last instance is the exception: L14527.)"""
    run = simulate(10, percent(85), {"i04"})
    assert sizes(run.batches) == [1] * 4
    assert run.status is DeploymentStatus.FAILED
    assert run.with_status(TargetStatus.SKIPPED) == names(10)[4:]
    assert simulate(10, percent(85), {"i10"}).status is DeploymentStatus.SUCCEEDED


# --- predefined configurations (guide L14649–14797) ------------------------------------------------------


def test_all_at_once_nine_instances() -> None:
    """Guide L14661–14672: AllAtOnce deploys to all nine at once; succeeds if one succeeds; fails only if
    all nine fail."""
    run = simulate(9, ALL_AT_ONCE, set(names(9)[:8]))
    assert sizes(run.batches) == [9]
    assert run.status is DeploymentStatus.SUCCEEDED
    assert simulate(9, ALL_AT_ONCE, set(names(9))).status is DeploymentStatus.FAILED


def test_half_at_a_time_nine_instances_four_at_a_time() -> None:
    """Guide L14690–14711: HalfAtATime on nine instances deploys to up to four at a time (half, rounded
    down) and needs five successes (half, rounded up)."""
    run = simulate(9, HALF_AT_A_TIME, together=True)
    assert sizes(run.batches) == [4, 4, 1]
    assert run.decision.minimum_healthy_hosts == 5
    assert run.status is DeploymentStatus.SUCCEEDED


def test_half_at_a_time_nine_instances_five_successes_suffice() -> None:
    """Guide L14700–14705: five or more succeed -> Succeeded (here the last four fail)."""
    run = simulate(9, HALF_AT_A_TIME, {"i06", "i07", "i08", "i09"}, together=True)
    assert run.status is DeploymentStatus.SUCCEEDED
    assert len(run.with_status(TargetStatus.SUCCEEDED)) == 5


def test_half_at_a_time_nine_instances_fewer_than_five_fails() -> None:
    """Guide L14700–14705: fewer than five can succeed once four failed with instances left -> Failed,
    the rest Skipped (L14473–14477: the healthy count has fallen to the minimum)."""
    run = simulate(9, HALF_AT_A_TIME, {"i01", "i02", "i03", "i04"}, together=True)
    assert run.status is DeploymentStatus.FAILED
    assert run.decision.error_code is ErrorCode.HEALTH_CONSTRAINTS
    assert run.with_status(TargetStatus.SKIPPED) == names(9)[4:]


def test_half_at_a_time_across_auto_scaling_groups_counts_the_whole_deployment() -> None:
    """Guide L14713–14722: 2 groups of 10; half of the whole deployment at a time, and 10 successes in
    just one group count as success."""
    asg1 = [f"asg1-{k:02d}" for k in range(10)]
    asg2 = [f"asg2-{k:02d}" for k in range(10)]
    run = simulate(asg1 + asg2, HALF_AT_A_TIME, set(asg2), together=True)
    assert sizes(run.batches) == [10, 10]
    assert run.status is DeploymentStatus.SUCCEEDED
    assert run.with_status(TargetStatus.SUCCEEDED) == asg1


def test_one_at_a_time_nine_instances() -> None:
    """Guide L14736–14768: OneAtATime deploys to one instance at a time; succeeds if the first eight
    succeed (the last may fail); fails at a failure among the first eight."""
    run = simulate(9, ONE_AT_A_TIME, together=True)
    assert sizes(run.batches) == [1] * 9
    assert run.status is DeploymentStatus.SUCCEEDED
    assert simulate(9, ONE_AT_A_TIME, {"i09"}).status is DeploymentStatus.SUCCEEDED
    for failing in names(8):
        run = simulate(9, ONE_AT_A_TIME, {failing})
        assert run.status is DeploymentStatus.FAILED, failing
        assert run.started[-1] == failing
        assert run.with_status(TargetStatus.SKIPPED) == names(9)[names(9).index(failing) + 1 :]


def test_one_at_a_time_single_instance() -> None:
    """Guide L14765–14767: a group of one instance succeeds only if that instance succeeds."""
    assert simulate(1, ONE_AT_A_TIME).status is DeploymentStatus.SUCCEEDED
    run = simulate(1, ONE_AT_A_TIME, {"i01"})
    assert run.status is DeploymentStatus.FAILED
    assert run.decision.error_code is ErrorCode.HEALTH_CONSTRAINTS


def test_half_at_a_time_single_instance_cannot_start() -> None:
    """Decision from the guide's rule (L14440–14442, L14482–14488): half of one instance rounds up to one,
    which is not below the one instance, so HalfAtATime fails at once with HEALTH_CONSTRAINTS_INVALID."""
    run = simulate(1, HALF_AT_A_TIME)
    assert run.decision.error_code is ErrorCode.HEALTH_CONSTRAINTS_INVALID
    assert run.started == []


# --- custom HOST_COUNT / FLEET_PERCENT (API model MinimumHealthyHosts; troubleshooting L28307–28509) ---


def test_custom_host_count_six_of_nine() -> None:
    """botocore MinimumHealthyHosts doc: nine instances, HOST_COUNT 6 -> up to three at a time; succeeds
    if six or more succeed."""
    run = simulate(9, hosts(6), {"i07", "i08", "i09"}, together=True)
    assert sizes(run.batches) == [3, 3, 3]
    assert run.status is DeploymentStatus.SUCCEEDED
    run = simulate(9, hosts(6), {"i01", "i02", "i03"}, together=True)
    assert run.status is DeploymentStatus.FAILED
    assert run.with_status(TargetStatus.SKIPPED) == names(9)[3:]


def test_custom_fleet_percent_forty_of_nine() -> None:
    """botocore MinimumHealthyHosts doc: nine instances, FLEET_PERCENT 40 (3.6 rounds up to 4) -> up to
    five at a time; succeeds if four or more succeed."""
    run = simulate(9, percent(40), {"i06", "i07", "i08", "i09"}, together=True)
    assert sizes(run.batches) == [5, 4]
    assert run.decision.minimum_healthy_hosts == 4
    assert run.status is DeploymentStatus.SUCCEEDED


def test_host_count_above_the_fleet_cannot_start() -> None:
    """Troubleshooting HEALTH_CONSTRAINTS_INVALID (guide L28367–28381): HOST_COUNT 3 with 2 instances
    fails before any instance is deployed to, naming the numbers."""
    decision = next_dispatch([FleetTarget("a"), FleetTarget("b")], hosts(3))
    assert decision.status is DeploymentStatus.FAILED
    assert decision.error_code is ErrorCode.HEALTH_CONSTRAINTS_INVALID
    assert decision.start == ()
    assert decision.skip == ("a", "b")
    assert "3 instances" in (decision.message or "") and "3 of 2" in (decision.message or "")


def test_too_many_failures_skip_the_rest() -> None:
    """Troubleshooting HEALTH_CONSTRAINTS (guide L28350–28365): 4 instances, 75% healthy, two instances
    with failing scripts -> scheduling stops, Failed with HEALTH_CONSTRAINTS, the rest Skipped."""
    run = simulate(4, percent(75), {"i02", "i03"})
    assert run.status is DeploymentStatus.FAILED
    assert run.decision.error_code is ErrorCode.HEALTH_CONSTRAINTS
    assert run.with_status(TargetStatus.SKIPPED) == ["i03", "i04"]
    assert run.started == ["i01", "i02"]


def test_no_instances() -> None:
    """Troubleshooting NO_INSTANCES (guide L28419–28454): nothing to deploy to fails the deployment."""
    decision = next_dispatch([], ONE_AT_A_TIME)
    assert decision.status is DeploymentStatus.FAILED
    assert decision.error_code is ErrorCode.NO_INSTANCES


# --- dispatch order (guide L14352–14360) -------------------------------------------------------------------

HEALTHY_CURRENT = HealthStatus(InstanceHealth.HEALTHY, RevisionHealth.CURRENT)
HEALTHY_OLD = HealthStatus(InstanceHealth.HEALTHY, RevisionHealth.OLD)
HEALTHY_UNKNOWN = HealthStatus(InstanceHealth.HEALTHY, RevisionHealth.UNKNOWN)
UNHEALTHY_CURRENT = HealthStatus(InstanceHealth.UNHEALTHY, RevisionHealth.CURRENT)
UNHEALTHY_OLD = HealthStatus(InstanceHealth.UNHEALTHY, RevisionHealth.OLD)


def test_dispatch_order_unhealthy_unknown_old_current() -> None:
    """Guide L14352–14360: deploy first to Unhealthy instances, then Unknown, Old and Current revision
    health; instances of the same health go by name."""
    health = {
        "a-current": HEALTHY_CURRENT,
        "b-old": HEALTHY_OLD,
        "c-unhealthy-old": UNHEALTHY_OLD,
        "d-unknown": HEALTHY_UNKNOWN,
        "e-current": HEALTHY_CURRENT,
        "f-unhealthy-current": UNHEALTHY_CURRENT,
        "g-old": HEALTHY_OLD,
    }
    run = simulate(sorted(health), ONE_AT_A_TIME, health=health)
    assert run.started == [
        "c-unhealthy-old",
        "f-unhealthy-current",
        "d-unknown",
        "b-old",
        "g-old",
        "a-current",
        "e-current",
    ]


def test_health_orders_but_does_not_widen_the_batch() -> None:
    """Decision (spec digest §9.6): on a group's first deployment every instance is Unhealthy ("nothing
    deployed yet", L14348–14350); they are still deployed N − M at a time, not all at once."""
    run = simulate(6, ONE_AT_A_TIME, together=True)
    assert sizes(run.batches) == [1] * 6


def test_first_batch_takes_the_unhealthy_instances() -> None:
    """Guide L14460–14462: the deployment starts with the unhealthy instances."""
    health = {name: HEALTHY_CURRENT for name in names(6)} | {"i05": UNHEALTHY_OLD, "i06": UNHEALTHY_OLD}
    run = simulate(6, percent(50), health=health, together=True)
    assert run.batches[0] == ("i05", "i06", "i01")


# --- a function of the current state only -----------------------------------------------------------------


def test_same_state_same_decision_and_resumable() -> None:
    """The engine may be restarted at any point: a decision depends only on the state it is given, and
    in-progress instances are not started again."""
    targets = [
        FleetTarget("a", TargetStatus.SUCCEEDED),
        FleetTarget("b", TargetStatus.IN_PROGRESS),
        FleetTarget("c"),
        FleetTarget("d"),
    ]
    first = next_dispatch(targets, hosts(2))
    assert first == next_dispatch(list(reversed(targets)), hosts(2))
    assert first.status is DeploymentStatus.IN_PROGRESS
    assert first.start == ("c",)


def test_after_the_end_the_decision_stays_the_same() -> None:
    """Once the pending instances are Skipped the deployment still reads as Failed, with nothing to do."""
    targets = [FleetTarget("a", TargetStatus.FAILED), FleetTarget("b", TargetStatus.SKIPPED)]
    decision = next_dispatch(targets, hosts(1))
    assert decision.status is DeploymentStatus.FAILED
    assert decision.start == () and decision.skip == ()


def test_plain_strings_from_storage_are_read_as_statuses() -> None:
    """The engine may pass statuses and health as the strings it stored."""
    targets = [
        FleetTarget("a", "Succeeded"),  # type: ignore[arg-type]
        FleetTarget("b", "Failed"),  # type: ignore[arg-type]
        FleetTarget("c", "Pending", HealthStatus("Healthy", "Current")),  # type: ignore[arg-type]
        FleetTarget("d", "Pending", HealthStatus("Unhealthy", "Old")),  # type: ignore[arg-type]
    ]
    decision = next_dispatch(targets, hosts(2))
    assert decision.start == ("d",)
    with pytest.raises(ValueError, match="'Done' is not a valid TargetStatus"):
        FleetTarget("e", "Done")  # type: ignore[arg-type]


def test_bad_state_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        next_dispatch([FleetTarget("a"), FleetTarget("a")], hosts(0))
    with pytest.raises(ValueError, match="Ready"):
        next_dispatch([FleetTarget("a", TargetStatus.READY)], hosts(0))
    with pytest.raises(ValueError, match="negative"):
        next_dispatch([FleetTarget("a")], hosts(-1))


def test_large_fleets_are_decided_whole() -> None:
    """A 5,000-instance AllAtOnce deployment starts every instance in one decision, and a 1,000-instance
    HalfAtATime deployment runs in two batches of 500 (bench/decisions.py measures how long that takes)."""
    targets = [FleetTarget(f"host-{k:05d}") for k in range(5000)]
    decision = next_dispatch(targets, ALL_AT_ONCE)
    assert len(decision.start) == 5000
    run = simulate(1000, HALF_AT_A_TIME, together=True)
    assert sizes(run.batches) == [500, 500]

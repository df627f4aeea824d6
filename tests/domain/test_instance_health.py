"""Instance health and revision health: the guide's scheduling order and update rules (guide L14331–14386)."""

from __future__ import annotations

import pytest

from opendeploy.domain.instance_health import (
    NEW_INSTANCE,
    AttemptResult,
    HealthStatus,
    InstanceHealth,
    RevisionHealth,
    health_after_deployment,
    in_dispatch_order,
)

HEALTHY, UNHEALTHY = InstanceHealth.HEALTHY, InstanceHealth.UNHEALTHY
CURRENT, OLD, UNKNOWN = RevisionHealth.CURRENT, RevisionHealth.OLD, RevisionHealth.UNKNOWN
SUCCEEDED, FAILED, NOT_ATTEMPTED = AttemptResult.SUCCEEDED, AttemptResult.FAILED, AttemptResult.NOT_ATTEMPTED


def test_a_new_instance_is_unhealthy_with_unknown_revision() -> None:
    """Guide L14340 and L14348–14350: nothing deployed yet -> Unhealthy; no revision installed -> Unknown."""
    assert HealthStatus(UNHEALTHY, UNKNOWN) == NEW_INSTANCE


def test_scheduling_order() -> None:
    """Guide L14352–14360: 1. Unhealthy, 2. Unknown revision, 3. Old revision, 4. Current revision;
    ties by name, so the order is the same every time."""
    fleet = [
        ("web-3", HealthStatus(HEALTHY, CURRENT)),
        ("web-1", HealthStatus(HEALTHY, OLD)),
        ("web-2", HealthStatus(HEALTHY, UNKNOWN)),
        ("web-9", HealthStatus(UNHEALTHY, CURRENT)),
        ("web-8", HealthStatus(UNHEALTHY, UNKNOWN)),
        ("web-0", HealthStatus(HEALTHY, CURRENT)),
        ("web-4", HealthStatus(HEALTHY, OLD)),
    ]
    assert in_dispatch_order(fleet) == ["web-8", "web-9", "web-2", "web-1", "web-4", "web-0", "web-3"]
    assert in_dispatch_order(reversed(fleet)) == in_dispatch_order(fleet)


# --- after a successful deployment (guide L14362–14375) ------------------------------------------------


@pytest.mark.parametrize(
    ("before", "result", "after"),
    [
        # "All current instances that had a successful deployment remain current. Otherwise, they become
        # unknown."
        (HealthStatus(HEALTHY, CURRENT), SUCCEEDED, HealthStatus(HEALTHY, CURRENT)),
        (HealthStatus(HEALTHY, CURRENT), FAILED, HealthStatus(UNHEALTHY, UNKNOWN)),
        # "All old or unknown instances that had a successful deployment become current. Otherwise, they
        # remain old or unknown."
        (HealthStatus(HEALTHY, OLD), SUCCEEDED, HealthStatus(HEALTHY, CURRENT)),
        (HealthStatus(UNHEALTHY, UNKNOWN), SUCCEEDED, HealthStatus(HEALTHY, CURRENT)),
        (HealthStatus(HEALTHY, OLD), FAILED, HealthStatus(UNHEALTHY, OLD)),
        (HealthStatus(HEALTHY, UNKNOWN), FAILED, HealthStatus(UNHEALTHY, UNKNOWN)),
        # "All healthy instances that had a successful deployment remain healthy. Otherwise, they become
        # unhealthy." / "All unhealthy instances that had a successful deployment become healthy.
        # Otherwise, they remain unhealthy."
        (HealthStatus(UNHEALTHY, OLD), SUCCEEDED, HealthStatus(HEALTHY, CURRENT)),
        (HealthStatus(UNHEALTHY, OLD), FAILED, HealthStatus(UNHEALTHY, OLD)),
    ],
)
def test_after_a_successful_deployment(
    before: HealthStatus, result: AttemptResult, after: HealthStatus
) -> None:
    """Guide L14362–14375 (e.g. OneAtATime's last instance failed while the deployment succeeded)."""
    assert health_after_deployment(before, result, deployment_succeeded=True) == after


def test_an_instance_left_out_of_a_successful_deployment_keeps_its_health() -> None:
    """Decision: an instance the deployment did not deploy to (e.g. excluded by updateOutdatedInstancesOnly
    because it already runs the revision) keeps both health values."""
    before = HealthStatus(HEALTHY, CURRENT)
    assert health_after_deployment(before, NOT_ATTEMPTED, deployment_succeeded=True) == before


# --- after a failed or stopped deployment (guide L14377–14386) ------------------------------------------


def test_failed_or_stopped_attempted_instances_take_their_own_result() -> None:
    """Guide L14379–14382: each attempted instance becomes healthy or unhealthy by its own attempt."""
    assert (
        health_after_deployment(
            HealthStatus(UNHEALTHY, OLD), SUCCEEDED, deployment_succeeded=False
        ).instance_health
        is HEALTHY
    )
    assert (
        health_after_deployment(
            HealthStatus(HEALTHY, CURRENT), FAILED, deployment_succeeded=False
        ).instance_health
        is UNHEALTHY
    )


@pytest.mark.parametrize("before", [HealthStatus(h, r) for h in InstanceHealth for r in RevisionHealth])
def test_failed_or_stopped_not_attempted_instances_keep_their_health(before: HealthStatus) -> None:
    """Guide L14383–14384: instances not attempted (Skipped) retain their instance health; the group's
    revision is unchanged (L14386), so their revision health is unchanged too."""
    assert health_after_deployment(before, NOT_ATTEMPTED, deployment_succeeded=False) == before


def test_failed_deployment_revision_health_decision() -> None:
    """Decision (the guide leaves revision health open when a deployment fails): the group's revision
    stays the same, so an instance that succeeded with a different revision is Old, one that succeeded
    with the group's own revision (a redeploy) is Current, and a failed Current instance is Unknown as in
    the success case (its previous files were removed before the install)."""
    assert health_after_deployment(
        HealthStatus(HEALTHY, CURRENT), SUCCEEDED, deployment_succeeded=False
    ) == HealthStatus(HEALTHY, OLD)
    assert health_after_deployment(
        HealthStatus(UNHEALTHY, UNKNOWN), SUCCEEDED, deployment_succeeded=False, deployed_group_revision=True
    ) == HealthStatus(HEALTHY, CURRENT)
    assert health_after_deployment(
        HealthStatus(HEALTHY, CURRENT), FAILED, deployment_succeeded=False
    ) == HealthStatus(UNHEALTHY, UNKNOWN)
    assert health_after_deployment(
        HealthStatus(HEALTHY, OLD), FAILED, deployment_succeeded=False
    ) == HealthStatus(UNHEALTHY, OLD)

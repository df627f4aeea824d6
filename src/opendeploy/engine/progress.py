"""A deployment's progress through its strategy, kept on the deployment (migration 0011).

A strategy of several steps records where it is — its ``phase`` (a name of its own choosing), the step
it has reached, the share of traffic shifted, the fleets it works on — in the deployment's transaction,
so after a restart it resumes from the record instead of starting over (Argo Rollouts'
``status.currentStepIndex``). ``progress_of`` reads it typed, ``record_progress`` writes it; nothing else
touches the two columns. What is decided once for the whole deployment (``Progress.fixed``: which group
of a target group pair was the original one) is carried over by every later record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from opendeploy.store.models import Deployment

SHIFT = "Shift"
"""The phase of any strategy that shifts traffic step by step on a schedule (canary, linear): there,
ContinueDeployment promotes the deployment — the remaining steps are skipped."""


@dataclass(frozen=True)
class Progress:
    """Where a deployment is in its strategy. ``extra``: strategy-specific values of the phase, ``fixed``:
    values decided once for the whole deployment, kept by later records (both JSON-compatible)."""

    phase: str | None = None
    step: int = 0
    traffic_percent: float | None = None
    original_targets: tuple[str, ...] = ()
    replacement_targets: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"step": self.step}
        if self.traffic_percent is not None:
            state["trafficPercent"] = self.traffic_percent
        if self.original_targets:
            state["originalTargets"] = list(self.original_targets)
        if self.replacement_targets:
            state["replacementTargets"] = list(self.replacement_targets)
        if self.extra:
            state["extra"] = dict(self.extra)
        if self.fixed:
            state["fixed"] = dict(self.fixed)
        return state

    @classmethod
    def from_record(cls, phase: str | None, state: Mapping[str, Any] | None) -> Progress:
        state = state or {}
        percent = state.get("trafficPercent")
        return cls(
            phase=phase,
            step=int(state.get("step") or 0),
            traffic_percent=float(percent) if percent is not None else None,
            original_targets=tuple(state.get("originalTargets") or ()),
            replacement_targets=tuple(state.get("replacementTargets") or ()),
            extra=dict(state.get("extra") or {}),
            fixed=dict(state.get("fixed") or {}),
        )


def progress_of(deployment: Deployment) -> Progress:
    """The deployment's recorded progress (nothing recorded: no phase, step 0)."""
    return Progress.from_record(deployment.phase, deployment.strategy_state)


def record_progress(deployment: Deployment, progress: Progress) -> None:
    """Record ``progress`` on ``deployment`` (locked), in the caller's transaction; the ``fixed`` values
    recorded before are kept (a phase's own record need not repeat them)."""
    kept = progress_of(deployment).fixed
    if kept:
        progress = replace(progress, fixed={**kept, **progress.fixed})
    deployment.phase = progress.phase
    deployment.strategy_state = progress.to_state()


def promotable(deployment: Deployment) -> bool:
    """Whether ContinueDeployment would promote ``deployment`` now (it is shifting traffic by steps)."""
    return deployment.phase == SHIFT

"""ContinueDeployment and SkipWaitTimeForInstanceTermination wake the engine, as CreateDeployment and
StopDeployment do: the deployment is due at once, in the request's own transaction."""

from __future__ import annotations

import time
from typing import Any

from test_engine_retries import T0, _deployment, _group, _read, database, settings

from opendeploy.api.codedeploy.deployments import continue_deployment, skip_wait_time_for_instance_termination
from opendeploy.api.codedeploy.registry import OperationContext, Principal
from opendeploy.engine.reconciler import Reconciler
from opendeploy.settings import Settings
from opendeploy.store.db import Database

__all__ = ["database", "settings"]  # the fixtures, shared with the retry tests
BLUE_GREEN = {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}


def _call(database: Database, settings: Settings, operation: Any, params: dict[str, Any], now: float) -> None:
    with database.transaction() as session:
        context = OperationContext(
            session=session,
            settings=settings,
            principal=Principal("AKIDEXAMPLE", "arn:aws:iam::000000000000:root", is_admin=True),
            now=now,
            operation=operation.__name__,
        )
        operation(context, params)


def _blue_green(database: Database, **fields: Any) -> str:
    with database.transaction() as session:
        return _deployment(session, _group(session, ["a"]), deployment_style=BLUE_GREEN, **fields)


def test_continue_deployment_wakes_the_engine(database: Database, settings: Settings) -> None:
    deployment_id = _blue_green(database, status="Ready")
    assert _read(database, deployment_id).engine_due_at is None
    now = time.time()
    _call(database, settings, continue_deployment, {"deploymentId": deployment_id}, now)
    deployment = _read(database, deployment_id)
    assert deployment.ready_wait_continue_requested_at == now
    assert deployment.engine_due_at == now
    Reconciler(database, settings).run_once(now=now)  # no strategy runs blue/green yet: left as it is
    assert _read(database, deployment_id).status == "Ready"


def test_skip_wait_time_for_instance_termination_wakes_the_engine(
    database: Database, settings: Settings
) -> None:
    deployment_id = _blue_green(database, status="InProgress", start_time=T0)
    now = time.time()
    _call(database, settings, skip_wait_time_for_instance_termination, {"deploymentId": deployment_id}, now)
    deployment = _read(database, deployment_id)
    assert deployment.termination_wait_skip_requested_at == now
    assert deployment.engine_due_at == now

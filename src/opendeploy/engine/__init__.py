"""Drives deployments: reconciler, persistent timers, one strategy per platform and deployment type.

This package's namespace is the engine's entry point for the API (the one it imports): creating,
stopping and continuing deployments, the wake-ups that make the engine look at once, what follows from
instances joining or leaving, the agent protocol's transitions, and the transaction helper they run in.
The engine's process parts (wake bus, group commit, listener, worker) are assembled in
``opendeploy.runtime``.
"""

from opendeploy.engine.deployment_creation import active_deployment_id, create_deployment
from opendeploy.engine.host_commands import (
    DeliveredCommand,
    Delivery,
    HostCommandNotFound,
    acknowledge,
    complete,
    deliver_next,
    delivery_lost,
    find_command,
    record_update,
)
from opendeploy.engine.instance_health_records import forget_instances
from opendeploy.engine.new_instances import instances_changed
from opendeploy.engine.notifying import triggers_changed
from opendeploy.engine.progress import promotable
from opendeploy.engine.stop import continue_deployment, lock_running_commands, request_stop
from opendeploy.engine.transactions import in_transaction
from opendeploy.engine.wakeups import deployment_changed

__all__ = [
    "DeliveredCommand",
    "Delivery",
    "HostCommandNotFound",
    "acknowledge",
    "active_deployment_id",
    "complete",
    "continue_deployment",
    "create_deployment",
    "deliver_next",
    "delivery_lost",
    "deployment_changed",
    "find_command",
    "forget_instances",
    "in_transaction",
    "instances_changed",
    "lock_running_commands",
    "promotable",
    "record_update",
    "request_stop",
    "triggers_changed",
]

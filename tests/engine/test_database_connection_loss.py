"""PostgreSQL connections lost mid-deployment (a database restart or failover ends every session): the
server notices on the next use, reconnects, and the deployment carries on — nothing hangs or is lost."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from command_agents import create_fleet, wait_for_status
from sqlalchemy.engine import make_url

from support.server import ServerProcess

FAST = ["--poll-hold", "1", "--engine-sweep-interval", "0.5"]

pytestmark = pytest.mark.postgres


def _end_server_sessions(database_url: str) -> int:
    """End every session of the server's database, as a PostgreSQL restart would; how many."""
    url = make_url(database_url)
    admin = url.set(database="postgres", drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.database,),
        ).fetchall()
    return len(rows)


def test_lost_database_connections_mid_deployment(postgres_databases: Any, server_factory: Any) -> None:
    server: ServerProcess = server_factory("postgresql", extra_args=FAST)
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy()
    for _ in range(3):  # ApplicationStop, DownloadBundle, BeforeInstall
        agent.run(agent.poll_until_command())

    assert _end_server_sessions(server.database_url) > 0

    for _ in range(4):  # Install … ValidateService, through new connections
        agent.run(agent.poll_until_command(timeout=30))
    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"})
    assert info["status"] == "Succeeded"
    # The API answers too, and the server is still the one that started.
    assert server.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert server.running
    # The notification channel (LISTEN) noticed and came back by itself.
    assert "database notification channel lost" in server.log_text()
    server.wait_for_log("database notification channel back", timeout=20)

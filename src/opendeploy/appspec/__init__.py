"""Pure: parse and validate AppSpec files for all three compute platforms; lifecycle event catalogue.

Entry points: ``load_server_appspec`` (EC2/On-Premises, YAML), ``load_lambda_appspec`` and
``load_ecs_appspec`` (YAML or JSON), ``load_appspec`` (by compute platform); every problem is raised as
``AppSpecError``.
"""

from opendeploy.appspec.errors import AppSpecError, AppSpecProblem
from opendeploy.appspec.model import (
    FileExistsBehavior,
    FileMapping,
    HookScript,
    Permission,
    SELinuxContext,
    ServerAppSpec,
)
from opendeploy.appspec.server_appspec import load_server_appspec

__all__ = [
    "AppSpecError",
    "AppSpecProblem",
    "FileExistsBehavior",
    "FileMapping",
    "HookScript",
    "Permission",
    "SELinuxContext",
    "ServerAppSpec",
    "load_server_appspec",
]

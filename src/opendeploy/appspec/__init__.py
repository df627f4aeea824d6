"""Pure: parse and validate AppSpec files for all three compute platforms; lifecycle event catalogue.

Entry points: ``load_server_appspec`` (EC2/On-Premises, YAML), ``load_lambda_appspec`` and
``load_ecs_appspec`` (YAML or JSON), ``load_appspec`` (by compute platform); every problem is raised as
``AppSpecError``. The lifecycle event catalogue is ``opendeploy.appspec.lifecycle_events``.
"""

from opendeploy.appspec.ecs_appspec import load_ecs_appspec
from opendeploy.appspec.errors import AppSpecError, AppSpecProblem
from opendeploy.appspec.lambda_appspec import load_lambda_appspec
from opendeploy.appspec.load import APPSPEC_SIZE_LIMIT, COMPUTE_PLATFORMS, AppSpec, load_appspec
from opendeploy.appspec.model import (
    APPSPEC_VERSION,
    DEFAULT_SCRIPT_TIMEOUT,
    MAX_EVENT_SECONDS,
    AwsVpcConfiguration,
    CapacityProviderStrategyItem,
    EcsAppSpec,
    EcsServiceResource,
    FileExistsBehavior,
    FileMapping,
    HookScript,
    LambdaAppSpec,
    LambdaFunctionResource,
    Permission,
    SELinuxContext,
    ServerAppSpec,
)
from opendeploy.appspec.server_appspec import load_server_appspec

__all__ = [
    "APPSPEC_SIZE_LIMIT",
    "APPSPEC_VERSION",
    "COMPUTE_PLATFORMS",
    "DEFAULT_SCRIPT_TIMEOUT",
    "MAX_EVENT_SECONDS",
    "AppSpec",
    "AppSpecError",
    "AppSpecProblem",
    "AwsVpcConfiguration",
    "CapacityProviderStrategyItem",
    "EcsAppSpec",
    "EcsServiceResource",
    "FileExistsBehavior",
    "FileMapping",
    "HookScript",
    "LambdaAppSpec",
    "LambdaFunctionResource",
    "Permission",
    "SELinuxContext",
    "ServerAppSpec",
    "load_appspec",
    "load_ecs_appspec",
    "load_lambda_appspec",
    "load_server_appspec",
]

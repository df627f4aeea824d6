"""Every table's model, imported here so ``Base.metadata`` is complete for migrations and queries.

Each engineer adds one import line for their own models module, re-exporting with ``X as X``.
"""

from opendeploy.store.models.applications import Application as Application
from opendeploy.store.models.audit_events import AuditEvent as AuditEvent
from opendeploy.store.models.audit_events import AuditLookupKey as AuditLookupKey
from opendeploy.store.models.credentials import AccessKey as AccessKey
from opendeploy.store.models.deployment_configs import DeploymentConfigRecord as DeploymentConfigRecord
from opendeploy.store.models.deployment_groups import DeploymentGroup as DeploymentGroup
from opendeploy.store.models.deployments import Deployment as Deployment
from opendeploy.store.models.deployments import DeploymentTarget as DeploymentTarget
from opendeploy.store.models.deployments import HostCommand as HostCommand
from opendeploy.store.models.deployments import HostCommandDelivery as HostCommandDelivery
from opendeploy.store.models.deployments import LifecycleEventRecord as LifecycleEventRecord
from opendeploy.store.models.event_stream import StreamEvent as StreamEvent
from opendeploy.store.models.github_tokens import GitHubAccountToken as GitHubAccountToken
from opendeploy.store.models.iam_policies import IamGroup as IamGroup
from opendeploy.store.models.iam_policies import IamGroupMember as IamGroupMember
from opendeploy.store.models.iam_policies import IamGroupPolicy as IamGroupPolicy
from opendeploy.store.models.iam_policies import IamManagedPolicy as IamManagedPolicy
from opendeploy.store.models.iam_policies import IamPolicyAttachment as IamPolicyAttachment
from opendeploy.store.models.iam_policies import IamPolicyVersion as IamPolicyVersion
from opendeploy.store.models.iam_users import IamUser as IamUser
from opendeploy.store.models.iam_users import IamUserPolicy as IamUserPolicy
from opendeploy.store.models.instance_health import InstanceHealthRecord as InstanceHealthRecord
from opendeploy.store.models.notifications import OutboxNotification as OutboxNotification
from opendeploy.store.models.on_premises_instances import OnPremisesInstance as OnPremisesInstance
from opendeploy.store.models.on_premises_instances import OnPremisesInstanceTag as OnPremisesInstanceTag
from opendeploy.store.models.revisions import Revision as Revision
from opendeploy.store.models.tags import ResourceTag as ResourceTag
from opendeploy.store.models.timers import Timer as Timer

"""New instances: an instance that joins a deployment group gets the group's revision by itself.

AWS deploys the last successful revision to each instance an Auto Scaling group launches into a
deployment group (creator ``autoscaling``), and after a deployment during which instances were launched
it starts a follow-on deployment to bring them up to date (creator ``CodeDeployAutoUpdate``) unless the
group's ``outdatedInstancesStrategy`` is ``IGNORE`` (guide L3165–3172, L17127–17158). On-premises fleets
have no Auto Scaling group: an instance joins a group when it is registered or tagged so that the group's
tags select it. opendeploy treats that moment as the launch (``--no-deploy-to-new-instances`` turns this
off, leaving the guide's rule for EC2 tags: the next deployment includes it, L27469–27477):

- ``instances_changed`` (RegisterOnPremisesInstance, AddTagsToOnPremisesInstances): for each in-place
  Server group that selects some of these instances, has a successful revision, has never deployed to
  them and is idle, a deployment of that revision to just those instances (``autoscaling``).
- ``after_deployment`` (any deployment of the group ended): the instances the group selects now but has
  never deployed to joined while it ran (or found it busy). After a success they get its revision in a
  follow-on deployment (``CodeDeployAutoUpdate``, linked through ``relatedDeployments``) unless the group
  ignores outdated instances; after a failure or stop they get the group's last successful revision
  (``autoscaling``), as new instances do; a rollback already reaches every instance the group selects.

These deployments use ``CodeDeployDefault.AllAtOnce``: the instances are new and serve nothing yet, and
AWS deploys to each launched instance on its own, so one instance's failure must not hold back another.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from opendeploy.domain.statuses import DeploymentCreator, DeploymentStatus
from opendeploy.engine.deployment_creation import (
    active_deployment_id,
    create_deployment,
    last_successful_deployment,
)
from opendeploy.engine.instance_health_records import known_instances
from opendeploy.engine.strategies import StrategyKey, find_strategy
from opendeploy.engine.targets import group_instances, registered_instances, selected_among
from opendeploy.settings import Settings
from opendeploy.store.models import Application, Deployment, DeploymentGroup, DeploymentTarget

NEW_INSTANCES_CONFIG = "CodeDeployDefault.AllAtOnce"
IGNORE = "IGNORE"


def _deploys_to_new_instances(group: DeploymentGroup, compute_platform: str) -> bool:
    """Whether the strategy that runs the group's deployments gives new instances their own."""
    strategy = find_strategy(StrategyKey.of(compute_platform, group.style))
    return strategy is not None and strategy.deploys_to_new_instances


def _groups_with_a_revision(session: Session) -> list[DeploymentGroup]:
    """Groups with a successful deployment whose strategy deploys to new instances."""
    succeeded = exists().where(
        Deployment.deployment_group_id == DeploymentGroup.id, Deployment.status == DeploymentStatus.SUCCEEDED
    )
    groups = session.execute(
        select(DeploymentGroup, Application.compute_platform)
        .join(Application, Application.id == DeploymentGroup.application_id)
        .where(succeeded)
    )
    return [group for group, platform in groups if _deploys_to_new_instances(group, platform)]


def _deploy_revision_of(
    session: Session, group: DeploymentGroup, names: Sequence[str], now: float
) -> Deployment | None:
    last = last_successful_deployment(session, group.id)
    if last is None or last.revision_id is None:
        return None
    return create_deployment(
        session,
        group,
        compute_platform=last.compute_platform,
        revision_id=last.revision_id,
        creator=DeploymentCreator.AUTOSCALING,
        config_name=NEW_INSTANCES_CONFIG,
        file_exists_behavior=last.file_exists_behavior,
        now=now,
        instance_names=names,
        auto_rollback_configuration=group.auto_rollback_configuration,
    )


def instances_changed(session: Session, names: Sequence[str], now: float, settings: Settings) -> list[str]:
    """``names`` were registered or tagged: deploy to those that joined a group with a revision. The ids
    of the deployments created."""
    if not settings.engine.deploy_to_new_instances or not names:
        return []
    instances = [instance for instance in registered_instances(session, names) if instance.tags]
    if not instances:
        return []  # groups select by tags: an instance without any joins none (a fresh registration)
    created = []
    for group in _groups_with_a_revision(session):
        selected = selected_among(group, instances)
        if not selected:
            continue
        new = sorted(set(selected) - known_instances(session, group.id, selected))
        if not new or active_deployment_id(session, group.id) is not None:
            continue  # nothing new, or the group is busy: the running deployment's end takes them on
        deployment = _deploy_revision_of(session, group, new, now)
        if deployment is not None:
            created.append(deployment.id)
    return created


def after_deployment(
    session: Session,
    deployment: Deployment,
    group: DeploymentGroup,
    rolled_back: bool,
    now: float,
    settings: Settings,
) -> Deployment | None:
    """``deployment`` has ended (and its instances' health is recorded): bring the instances that joined
    the group meanwhile to its revision. The deployment created for them, if any."""
    if (
        not settings.engine.deploy_to_new_instances
        or rolled_back
        or not _deploys_to_new_instances(group, deployment.compute_platform)
    ):
        return None
    has_targets = session.scalar(select(exists().where(DeploymentTarget.deployment_id == deployment.id)))
    if not has_targets:
        return None  # it ended before choosing instances: nothing joined "during" it
    selected = group_instances(session, group)
    new = sorted(set(selected) - known_instances(session, group.id, selected))
    if not new:
        return None
    if deployment.status != DeploymentStatus.SUCCEEDED:
        return _deploy_revision_of(session, group, new, now)
    if group.outdated_instances_strategy == IGNORE or deployment.revision_id is None:
        return None
    root = deployment.auto_update_outdated_instances_root_deployment_id or deployment.id
    follow_on = create_deployment(
        session,
        group,
        compute_platform=deployment.compute_platform,
        auto_rollback_configuration=deployment.auto_rollback_configuration,
        revision_id=deployment.revision_id,
        creator=DeploymentCreator.CODEDEPLOY_AUTO_UPDATE,
        config_name=NEW_INSTANCES_CONFIG,
        file_exists_behavior=deployment.file_exists_behavior,
        now=now,
        instance_names=new,
        auto_update_outdated_instances_root_deployment_id=root,
    )
    if follow_on is not None:
        deployment.auto_update_outdated_instances_deployment_ids = [
            *(deployment.auto_update_outdated_instances_deployment_ids or []),
            follow_on.id,
        ]
    return follow_on

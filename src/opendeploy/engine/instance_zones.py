"""Which zone each instance is in, for a deployment configuration with a zonal configuration.

On-premises instances have no EC2 Availability Zone; opendeploy reads an instance's zone from one of
its tags, whose key the server is configured with (``--zone-tag-key``, default ``AvailabilityZone``).
The zone is fixed when the deployment starts; an instance without the tag has no zone (dispatch puts
those instances in one last zone of their own: ``domain.zonal_configuration``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendeploy.domain.zonal_configuration import zone_of
from opendeploy.store.models import OnPremisesInstanceTag

_CHUNK = 500  # names per IN (...) list


def instance_zones(session: Session, names: Sequence[str], zone_tag_key: str) -> dict[str, str | None]:
    """Each instance's zone (None when it has no zone tag)."""
    tags: dict[str, dict[str, str]] = {name: {} for name in names}
    for start in range(0, len(names), _CHUNK):
        rows = session.execute(
            select(OnPremisesInstanceTag.instance_name, OnPremisesInstanceTag.value).where(
                OnPremisesInstanceTag.key == zone_tag_key,
                OnPremisesInstanceTag.instance_name.in_(list(names[start : start + _CHUNK])),
            )
        )
        for name, value in rows:
            tags[name][zone_tag_key] = value or ""
    return {name: zone_of(instance_tags, zone_tag_key) for name, instance_tags in tags.items()}

"""CloudTrail's API over the server's audit trail: LookupEvents, so ``aws cloudtrail lookup-events`` and
boto3's ``cloudtrail`` client read who did what. awsJson 1.1, ``X-Amz-Target:
com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.<Operation>``, signing name ``cloudtrail``.

``SERVICE`` is the ``JsonService`` that ``api.app`` serves; requests are validated against botocore's
own ``cloudtrail`` model, like CodeDeploy's.
"""

from __future__ import annotations

from opendeploy.api.awsjson import JsonService
from opendeploy.api.cloudtrail.lookup_events import OPERATIONS

TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"
_READ_OPERATIONS = frozenset({"LookupEvents"})


class CloudTrailService(JsonService):
    """CloudTrail's operations: LookupEvents reads (a read transaction), though its name says nothing."""

    def is_read_only(self, operation: str) -> bool:
        return operation in _READ_OPERATIONS or super().is_read_only(operation)


SERVICE = CloudTrailService(
    target_prefix=TARGET_PREFIX,
    signing_name="cloudtrail",
    operations=OPERATIONS,
    model_service_name="cloudtrail",
)

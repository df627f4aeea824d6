"""Times as AWS writes them to the second: ``2014-11-27T03:57:36Z`` (ISO 8601, UTC) — CloudTrail's
``eventTime``, EventBridge's ``time``, IAM's dates and the ``aws:CurrentTime`` condition key.

Every request writes at least one of these (its audit event), and most requests of a busy second
write the same text: it is formatted once per second.
"""

from __future__ import annotations

import functools
import math
import time


def iso_second(epoch: float) -> str:
    """``epoch`` (seconds) as ``YYYY-MM-DDThh:mm:ssZ``, its fraction dropped."""
    return _formatted(math.floor(epoch))


@functools.lru_cache(maxsize=8)
def _formatted(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))

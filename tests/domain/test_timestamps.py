"""``domain.timestamps.iso_second``: AWS's to-the-second UTC times, the fraction dropped (never rounded
up into the next second, which would date an event after it happened)."""

from __future__ import annotations

import pytest

from opendeploy.domain.timestamps import iso_second


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1417060656, "2014-11-27T03:57:36Z"),  # the guide's example CloudTrail event
        (1417060656.999, "2014-11-27T03:57:36Z"),
        (1417060657.0, "2014-11-27T03:57:37Z"),
        (-0.5, "1969-12-31T23:59:59Z"),
        (1798761599.5, "2026-12-31T23:59:59Z"),
    ],
)
def test_iso_second(epoch: float, text: str) -> None:
    assert iso_second(epoch) == text

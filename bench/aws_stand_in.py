"""Shared by the benchmarks that need AWS-only services: the environment that points an ``opendeploy
server``'s AWS SDK at moto's server (CloudWatch for alarms, SNS for triggers) the standard way.

The tests' ``ServerProcess`` starts the server with every ``AWS_*`` variable removed, so that nothing on
the machine redirects it; its ``extra_env`` puts back the ones given here:

    moto = MotoServer(workdir / "moto").start()
    server = ServerProcess(workdir / "server", extra_env=moto_environment(moto, ["CLOUDWATCH"])).start()

Not a benchmark itself; ``bench/alarms.py`` and ``bench/notifications.py`` use it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.moto import ACCESS_KEY, SECRET_KEY, MotoServer


def moto_environment(moto: MotoServer, services: Sequence[str]) -> dict[str, str]:
    """The variables that send an SDK's calls to ``services`` (service ids as in
    ``AWS_ENDPOINT_URL_<SERVICE_ID>``: ``CLOUDWATCH``, ``SNS``) to moto, with moto's keys and region; only
    those services, so a call to any other would fail rather than reach moto by accident."""
    environment = {f"AWS_ENDPOINT_URL_{service}": moto.endpoint for service in services}
    environment.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=moto.region,
        AWS_CONFIG_FILE=str(moto.workdir / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(moto.workdir / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",  # a failed call shows as such instead of being hidden by retries
    )
    return environment

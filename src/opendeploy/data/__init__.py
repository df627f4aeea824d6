"""Data files shared by the server and the agent: botocore models for services botocore does not ship.

``BOTOCORE_DATA`` is a botocore data path; add it to a session's loader to get the agent command
service (``codedeploy-commands``) as a normal botocore client and model.
"""

from __future__ import annotations

from pathlib import Path

BOTOCORE_DATA = Path(__file__).parent / "botocore"

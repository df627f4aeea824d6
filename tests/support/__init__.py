"""Test harness: real server processes, AWS clients configured by profile, PostgreSQL databases.

Import as ``from support.server import ServerProcess`` (``tests/`` is on ``sys.path`` via conftest).
"""

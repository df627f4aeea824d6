"""``domain.ids``: request and audit event ids are version-4 UUIDs, never repeated — not even by a
forked child, whose generator starts from the parent's state unless it is seeded again."""

from __future__ import annotations

import os
import uuid

from opendeploy.domain.ids import new_request_id


def test_request_ids_are_version_4_uuids_and_do_not_repeat() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:100]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    new_request_id()
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        os.write(writing, new_request_id().encode())
        os._exit(0)
    os.close(writing)
    theirs = os.read(reading, 64).decode()
    os.close(reading)
    os.waitpid(child, 0)
    assert uuid.UUID(theirs).version == 4
    assert theirs != new_request_id()

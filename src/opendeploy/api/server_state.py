"""What every request handler of the running server shares: settings, database, secrets."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from opendeploy.settings import Settings
from opendeploy.store.access_keys import StoredAccessKey, find_access_key
from opendeploy.store.db import Database
from opendeploy.store.secrets import SecretBox

# How long a looked-up access key is reused before the database is asked again: saves a query and
# a decryption on every request, while a key deactivated in the database stops working soon after.
KEY_CACHE_SECONDS = 5.0


@dataclass
class ServerState:
    settings: Settings
    database: Database
    secrets: SecretBox
    pagination_key: bytes = field(init=False)
    _keys: dict[str, tuple[float, StoredAccessKey]] = field(init=False, default_factory=dict)
    _keys_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.pagination_key = self.secrets.derive("pagination-tokens")

    def cached_key(self, access_key_id: str) -> StoredAccessKey | None:
        """The access key with this id if it was looked up in the last ``KEY_CACHE_SECONDS`` (no I/O:
        safe in the event loop), else None."""
        with self._keys_lock:
            cached = self._keys.get(access_key_id)
        if cached is not None and time.monotonic() - cached[0] < KEY_CACHE_SECONDS:
            return cached[1]
        return None

    def find_key(self, access_key_id: str) -> StoredAccessKey | None:
        """The active access key with this id (its secret decrypted), for signature checks."""
        cached = self.cached_key(access_key_id)
        if cached is not None:
            return cached
        now = time.monotonic()
        with self.database.transaction(write=False) as session:
            key = find_access_key(session, self.secrets, access_key_id)
        with self._keys_lock:
            if key is None:
                self._keys.pop(access_key_id, None)  # unknown ids are not remembered: no growth
            else:
                self._keys[access_key_id] = (now, key)
        return key

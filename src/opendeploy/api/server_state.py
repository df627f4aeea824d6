"""What every request handler of the running server shares: settings, database, secrets."""

from __future__ import annotations

from dataclasses import dataclass, field

from opendeploy.settings import Settings
from opendeploy.store.access_keys import StoredAccessKey, find_access_key
from opendeploy.store.db import Database
from opendeploy.store.secrets import SecretBox


@dataclass
class ServerState:
    settings: Settings
    database: Database
    secrets: SecretBox
    pagination_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.pagination_key = self.secrets.derive("pagination-tokens")

    def find_key(self, access_key_id: str) -> StoredAccessKey | None:
        """The active access key with this id (its secret decrypted), for signature checks."""
        with self.database.transaction(write=False) as session:
            return find_access_key(session, self.secrets, access_key_id)

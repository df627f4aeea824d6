"""GitHub account tokens repository: named tokens, stored encrypted, for fetching GitHub revisions."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendeploy.store.models.github_tokens import GitHubAccountToken
from opendeploy.store.secrets import SecretBox


class TokenLimitExceeded(ValueError):
    """Storing another token would exceed the per-account quota."""


def save_token(session: Session, box: SecretBox, name: str, token: str, *, now: float, limit: int) -> bool:
    """Store ``token`` under ``name`` (replacing one of that name). True if the name is new."""
    row = session.get(GitHubAccountToken, name)
    if row is not None:
        row.token_ciphertext = box.encrypt(token)
        return False
    if session.scalar(select(func.count()).select_from(GitHubAccountToken)) >= limit:
        raise TokenLimitExceeded(f"an account can store at most {limit} GitHub tokens")
    session.add(GitHubAccountToken(name=name, token_ciphertext=box.encrypt(token), create_time=now))
    session.flush()
    return True


def read_token(session: Session, box: SecretBox, name: str) -> str | None:
    """The token stored under ``name``, decrypted, or ``None``."""
    row = session.get(GitHubAccountToken, name)
    return None if row is None else box.decrypt(row.token_ciphertext)

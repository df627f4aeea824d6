"""GitHub account tokens: named credentials the server uses to fetch revisions from GitHub."""

from __future__ import annotations

from sqlalchemy import Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.store.base import Base


class GitHubAccountToken(Base):
    __tablename__ = "github_account_tokens"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    token_ciphertext: Mapped[str] = mapped_column(Text)  # encrypted with the server's master key
    create_time: Mapped[float] = mapped_column(Float)

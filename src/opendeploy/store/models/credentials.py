"""Access keys: the credentials requests are signed with (SigV4), secrets encrypted at rest.

An administrator key may do everything. An instance key (used by agents, from the next issue on)
names the on-premises instance it belongs to, so the server knows which host is calling.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opendeploy.store.base import Base


class AccessKey(Base):
    __tablename__ = "access_keys"

    access_key_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    secret_ciphertext: Mapped[str] = mapped_column(Text)  # Fernet token of the secret access key
    principal_arn: Mapped[str] = mapped_column(String(2048))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    instance_name: Mapped[str | None] = mapped_column(String(100), default=None, index=True)
    description: Mapped[str] = mapped_column(String(256), default="")
    create_time: Mapped[float] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

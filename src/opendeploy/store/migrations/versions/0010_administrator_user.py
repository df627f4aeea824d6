"""The administrator is an IAM user with AWS's AdministratorAccess attached, not a special flag: the
principal of every administrator key (``opendeploy init``) gets its ``iam_users`` row (the user id it
was always shown with) and the attachment, so its requests are decided by its policies like anyone's.

Revision ID: 0010_administrator_user
Revises: 0009_iam_policies_groups
Create Date: 2026-12-04
"""

from __future__ import annotations

import base64
import hashlib

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010_administrator_user"
down_revision = "0009_iam_policies_groups"
branch_labels = None
depends_on = None

ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
_USERS = sa.table(
    "iam_users",
    sa.column("user_id", sa.String),
    sa.column("name", sa.String),
    sa.column("name_key", sa.String),
    sa.column("path", sa.String),
    sa.column("arn", sa.String),
    sa.column("create_time", sa.Float),
    sa.column("tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)


def _user_id(arn: str) -> str:
    # The id GetUser and GetCallerIdentity have always answered for this principal.
    return "AIDA" + base64.b32encode(hashlib.sha256(arn.encode()).digest()).decode()[:17]


def upgrade() -> None:
    connection = op.get_bind()
    principals = connection.execute(
        sa.text(
            "SELECT principal_arn, MIN(create_time) FROM access_keys WHERE is_admin GROUP BY principal_arn"
        )
    ).all()
    for arn, created in principals:
        path_and_name = arn.split(":", 5)[-1].removeprefix("user")
        path, _, name = path_and_name.rpartition("/")
        user_id = connection.execute(
            sa.text("SELECT user_id FROM iam_users WHERE arn = :arn"), {"arn": arn}
        ).scalar()
        if user_id is None:
            user_id = _user_id(arn)
            connection.execute(
                _USERS.insert().values(
                    user_id=user_id,
                    name=name,
                    name_key=name.lower(),
                    path=path + "/",
                    arn=arn,
                    create_time=created,
                    tags=[],
                )
            )
        attached = connection.execute(
            sa.text(
                "SELECT 1 FROM iam_policy_attachments WHERE principal_type = 'user' "
                "AND principal_id = :user_id AND policy_arn = :policy"
            ),
            {"user_id": user_id, "policy": ADMINISTRATOR_ACCESS},
        ).first()
        if attached is None:
            connection.execute(
                sa.text(
                    "INSERT INTO iam_policy_attachments (principal_type, principal_id, policy_arn, "
                    "create_time) VALUES ('user', :user_id, :policy, :created)"
                ),
                {"user_id": user_id, "policy": ADMINISTRATOR_ACCESS, "created": created},
            )


def downgrade() -> None:
    # The rows stay: an older server reads administrator keys by their flag and ignores them.
    pass

"""GitHub account token names: ListGitHubAccountTokenNames and DeleteGitHubAccountToken.

Tokens are added with ``opendeploy github-token add`` (the guide's console "Connect to GitHub" step
has no API); they are stored encrypted and only their names are ever returned.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from opendeploy.api.codedeploy.registry import OperationContext, operation
from opendeploy.api.errors import ApiError
from opendeploy.api.pagination import keyset_page
from opendeploy.store.models import Application, GitHubAccountToken


@operation("ListGitHubAccountTokenNames")
def list_github_account_token_names(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    names, next_token = keyset_page(ctx, params, select(GitHubAccountToken.name), [GitHubAccountToken.name])
    result: dict[str, Any] = {"tokenNameList": names}
    if next_token:
        result["nextToken"] = next_token
    return result


@operation("DeleteGitHubAccountToken")
def delete_github_account_token(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("tokenName")
    if not name:
        raise ApiError("GitHubAccountTokenNameRequiredException", "tokenName is required")
    token = ctx.session.get(GitHubAccountToken, name)
    if token is None:
        raise ApiError("GitHubAccountTokenDoesNotExistException", f"No GitHub account token named {name}")
    ctx.session.delete(token)
    # Applications linked through this token are no longer linked to GitHub.
    ctx.session.execute(
        update(Application)
        .where(Application.github_account_name == name)
        .values(linked_to_github=False, github_account_name=None)
    )
    return {"tokenName": name}

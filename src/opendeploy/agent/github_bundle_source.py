"""DownloadBundle from GitHub, or any server that answers GitHub's archive API.

The revision's archive is ``GET <base>/repos/<owner>/<repository>/tarball|zipball/<commit>`` (a tarball
unless the revision asks for zip), with ``Authorization: token <t>`` when the deployment carries a
token. ``<base>`` is ``https://api.github.com`` unless ``:github_endpoint_override:`` names another
(GitHub Enterprise's ``https://host/api/v3``, or a test server). Redirects are followed, as GitHub
sends archives from another host. The archive's single top-level directory (``owner-repo-sha/``) is
removed when the bundle is unpacked. Server errors and dropped connections are retried a few times;
a 404 (unknown repository or commit, or no access) is not.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from opendeploy import __version__
from opendeploy.agent.bundle_extraction import BundleError
from opendeploy.agent.deployment_specification import BundleType, DeploymentSpecification, GitHubRevision
from opendeploy.agent.file_copy import COPY_BUFFER

DEFAULT_GITHUB_ENDPOINT = "https://api.github.com"
RETRY_DELAYS = (1.0, 3.0)  # seconds before the second and third attempts


def archive_url(base: str, revision: GitHubRevision) -> str:
    kind = "zipball" if revision.bundle_type == BundleType.ZIP else "tarball"
    owner, repository, commit = (
        quote(part, safe="") for part in (revision.account, revision.repository, revision.commit_id)
    )
    return f"{base.rstrip('/')}/repos/{owner}/{repository}/{kind}/{commit}"


class GitHubBundleSource:
    """Fetches GitHub revisions; registered with ``bundle.register_fetcher`` by the agent."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        read_timeout: float = 80.0,
        proxy_uri: str | None = None,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.endpoint = endpoint or DEFAULT_GITHUB_ENDPOINT
        self.timeout = httpx.Timeout(read_timeout, connect=10.0)
        self.proxy_uri = proxy_uri
        self.retry_delays = retry_delays

    def fetch(self, spec: DeploymentSpecification, bundle: Path) -> None:
        revision = spec.revision
        if not isinstance(revision, GitHubRevision):
            raise BundleError(f"not a GitHub revision: {revision!r}")
        url = archive_url(self.endpoint, revision)
        headers = {"Accept": "application/vnd.github+json", "User-Agent": f"opendeploy-agent/{__version__}"}
        token = revision.oauth_token or spec.github_access_token
        if token:
            headers["Authorization"] = f"token {token}"
        where = f"{revision.account}/{revision.repository}@{revision.commit_id}"
        for attempt, delay in enumerate((0.0, *self.retry_delays)):
            time.sleep(delay)
            last = attempt == len(self.retry_delays)
            try:
                if self._download(url, headers, bundle, where, final=last):
                    return
            except httpx.HTTPError as error:
                if last:
                    raise BundleError(
                        f"cannot download the GitHub revision {where} from {url}: {error}"
                    ) from None

    def _download(self, url: str, headers: dict[str, str], bundle: Path, where: str, *, final: bool) -> bool:
        """True once ``bundle`` holds the archive; False for an error worth another attempt."""
        with (
            httpx.Client(timeout=self.timeout, follow_redirects=True, proxy=self.proxy_uri) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            status = response.status_code
            if status >= 500 or status == 429:
                if final:
                    raise BundleError(
                        f"cannot download the GitHub revision {where}: {url} answered "
                        f"{status} {response.reason_phrase}"
                    )
                return False
            if status != 200:
                hint = (
                    " (unknown repository or commit, or the token has no access to it)"
                    if status in (401, 403, 404)
                    else ""
                )
                raise BundleError(
                    f"cannot download the GitHub revision {where}: {url} answered "
                    f"{status} {response.reason_phrase}{hint}"
                )
            fd, temporary = tempfile.mkstemp(prefix=".bundle-", dir=bundle.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    for chunk in response.iter_bytes(COPY_BUFFER):
                        handle.write(chunk)
                if bundle.is_symlink() or bundle.exists():
                    bundle.unlink()
                os.replace(temporary, bundle)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return True

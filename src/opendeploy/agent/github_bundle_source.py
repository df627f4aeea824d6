"""DownloadBundle from GitHub, or any server that answers GitHub's archive API.

The revision's archive is ``GET <base>/repos/<owner>/<repository>/tarball|zipball/<commit>`` (a tarball
unless the revision asks for zip), with ``Authorization: token <t>`` when the deployment carries a
token. ``<base>`` is ``https://api.github.com`` unless ``:github_endpoint_override:`` names another
(GitHub Enterprise's ``https://host/api/v3``, or a test server). Redirects are followed, as GitHub
sends archives from another host. The archive's single top-level directory (``owner-repo-sha/``) is
removed when the bundle is unpacked.

Server errors (5xx), throttling (429), dropped connections, timeouts and archives that break off are
retried — the download starts again — with growing waits for up to ``retry_seconds``
(``:download_retry_seconds:``), and given up at once (``Abandoned``) when the agent is stopping; a 404
(unknown repository or commit, or no access) is not retried.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

import httpx

from opendeploy import __version__
from opendeploy.agent.agent_config import (
    DEFAULT_DOWNLOAD_RETRY_SECONDS,
    DEFAULT_WAIT_AFTER_ERROR,
    DOWNLOAD_RETRY_KEY,
)
from opendeploy.agent.bundle_extraction import BundleError, disk_errors
from opendeploy.agent.deployment_specification import BundleType, DeploymentSpecification, GitHubRevision
from opendeploy.agent.file_copy import COPY_BUFFER, write_all
from opendeploy.agent.retries import describe_error, gave_up_note, with_retries

DEFAULT_GITHUB_ENDPOINT = "https://api.github.com"


def archive_url(base: str, revision: GitHubRevision) -> str:
    kind = "zipball" if revision.bundle_type == BundleType.ZIP else "tarball"
    owner, repository, commit = (
        quote(part, safe="") for part in (revision.account, revision.repository, revision.commit_id)
    )
    return f"{base.rstrip('/')}/repos/{owner}/{repository}/{kind}/{commit}"


class GitHubBundleSource:
    """Fetches GitHub revisions; registered with ``bundle.register_fetcher`` by the agent.

    ``stopping`` is the agent's stop signal; ``retry_seconds`` how long a failing download is tried
    again, waiting 1 s, 2 s, 4 s … up to ``retry_cap`` seconds between tries. ``retry_delays`` instead
    fixes a short schedule (tests): one more try per delay however long the tries take, the first
    after about ``retry_delays[0]`` seconds.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        read_timeout: float = 80.0,
        proxy_uri: str | None = None,
        stopping: threading.Event | None = None,
        retry_seconds: float = DEFAULT_DOWNLOAD_RETRY_SECONDS,
        retry_cap: float = DEFAULT_WAIT_AFTER_ERROR,
        retry_delays: tuple[float, ...] | None = None,
    ) -> None:
        self.endpoint = endpoint or DEFAULT_GITHUB_ENDPOINT
        self.timeout = httpx.Timeout(read_timeout, connect=10.0)
        self.proxy_uri = proxy_uri
        self.stopping = stopping
        self.retry_seconds = retry_seconds
        self.retry_cap = retry_cap
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
        budget, cap, base, max_tries = self.retry_seconds, self.retry_cap, 1.0, None
        if self.retry_delays is not None:
            delays = self.retry_delays or (0.0,)
            # Bounded by the count of tries, not by time: on a busy machine one try can take a second.
            budget, cap, base = math.inf, max(delays), delays[0]
            max_tries = len(self.retry_delays) + 1
        try:
            with_retries(
                lambda: self._download(url, headers, bundle, where),
                what=f"the download of the GitHub revision {where}",
                budget=budget,
                cap=cap,
                stopping=self.stopping,
                base=base,
                max_tries=max_tries,
            )
        except httpx.HTTPStatusError as error:
            response = error.response
            raise BundleError(
                f"cannot download the GitHub revision {where}: {url} answered "
                f"{response.status_code} {response.reason_phrase}{self._note(error)}"
            ) from None
        except (httpx.HTTPError, OSError) as error:
            raise BundleError(
                f"cannot download the GitHub revision {where} from {url}: {describe_error(error)}"
                f"{self._note(error)}"
            ) from None

    def _note(self, error: BaseException) -> str:
        budget = 0.0 if self.retry_delays is not None else self.retry_seconds
        return gave_up_note(error, budget, DOWNLOAD_RETRY_KEY)

    def _download(self, url: str, headers: dict[str, str], bundle: Path, where: str) -> None:
        """One try: the archive to ``bundle``, or an exception (httpx's for what may pass if tried again)."""
        with (
            httpx.Client(timeout=self.timeout, follow_redirects=True, proxy=self.proxy_uri) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            status = response.status_code
            if status >= 500 or status == 429:
                response.raise_for_status()  # an HTTPStatusError, which is retried
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
            with disk_errors(f"the GitHub revision {where} to {bundle}"):
                fd, temporary = tempfile.mkstemp(prefix=".bundle-", dir=bundle.parent)
            try:
                try:
                    for chunk in response.iter_bytes(COPY_BUFFER):  # httpx errors here are retried
                        with disk_errors(f"the GitHub revision {where} to {bundle}"):
                            write_all(fd, chunk)
                finally:
                    os.close(fd)
                with disk_errors(f"the GitHub revision {where} to {bundle}"):
                    if bundle.is_symlink() or bundle.exists():
                        bundle.unlink()
                    os.replace(temporary, bundle)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise

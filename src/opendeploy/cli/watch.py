"""``opendeploy watch DEPLOYMENT_ID``: follow a deployment until it finishes, instance by instance.

On a terminal it shows a live view (``deployment_view``) refreshed about twice a second; otherwise it
writes one plain line per change. A deployment that has already finished gets its summary at once. The
exit status says how it ended: 0 Succeeded, 3 Failed, 4 Stopped (1 is an error such as an unknown
deployment or an unreachable server, 2 a usage error, 130 an interrupted watch, which leaves the
deployment running). ``opendeploy deploy --follow`` ends the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from opendeploy.cli.codedeploy_client import api_error_text, client_options, codedeploy_client

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES = {"Succeeded": 0, "Failed": 3, "Stopped": 4}
INTERRUPTED = 130
DEFAULT_MAX_ROWS = 20
DEFAULT_INTERVAL = 0.5
# How long the server may stay unreachable (or answer with server errors) before following gives up.
DEFAULT_RETRY_FOR = 120.0
_FATAL_CODES = frozenset(
    {
        "DeploymentDoesNotExistException",
        "DeploymentIdRequiredException",
        "InvalidDeploymentIdException",
        "AccessDeniedException",
        "InvalidSignatureException",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "IncompleteSignatureException",
    }
)


def _is_transient(error: Exception) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code not in _FATAL_CODES and (status >= 500 or "Throttl" in code)
    return isinstance(error, BotoCoreError)


class _Patience:
    """Retries refreshes through passing trouble (a restarting server), for a while."""

    def __init__(self, warn: Callable[[str], None], retry_for: float) -> None:
        self._warn = warn
        self._retry_for = retry_for
        self._since: float | None = None

    def call(self, refresh: Callable[[], T]) -> T | None:
        """``refresh()``, or None while the server is in passing trouble."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            result = refresh()
        except (BotoCoreError, ClientError) as error:
            if not _is_transient(error):
                raise click.ClickException(api_error_text(error)) from None
            now = time.monotonic()
            if self._since is None:
                self._since = now
                trouble = "cannot reach the server" if isinstance(error, BotoCoreError) else "server error"
                self._warn(f"{trouble} ({api_error_text(error)}); retrying")
            elif now - self._since > self._retry_for:
                raise click.ClickException(
                    f"gave up after {self._retry_for:g}s without an answer: {api_error_text(error)}"
                ) from None
            return None
        if self._since is not None:
            self._warn("the server answers again")
            self._since = None
        return result


def follow(
    client: Any,
    deployment_id: str,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    interval: float = DEFAULT_INTERVAL,
    retry_for: float = DEFAULT_RETRY_FOR,
    terminal: bool | None = None,
) -> int:
    """Show ``deployment_id`` until it finishes; the exit status its outcome calls for."""
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from opendeploy.cli.deployment_progress import DeploymentTracker, Snapshot
    from opendeploy.cli.deployment_view import PlainReporter, live_view, summary

    console = Console(highlight=False, force_terminal=terminal)
    plain = not console.is_terminal
    tracker = DeploymentTracker(client, deployment_id, max_rows=max_rows)
    patience = _Patience(lambda message: click.echo(f"{deployment_id}: {message}", err=True), retry_for)
    snapshot: Snapshot | None = None
    following = False  # whether anything was shown before the end (not so for a finished deployment)
    live: Live | None = None
    reporter = PlainReporter(click.echo, max_rows=max_rows)
    try:
        while True:
            started = time.monotonic()
            fresh = patience.call(tracker.refresh)
            if fresh is not None:
                snapshot = fresh
                if snapshot.finished:
                    snapshot = patience.call(tracker.settle) or snapshot
                    break
                following = True
                if plain:
                    reporter.update(snapshot)
                else:
                    if live is None:
                        live = Live(console=console, auto_refresh=False, transient=True)
                        live.start()
                    live.update(live_view(snapshot), refresh=True)
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        if live is not None:
            live.stop()
        click.echo(
            f"Stopped watching; deployment {deployment_id} goes on (opendeploy watch {deployment_id}).",
            err=True,
        )
        return INTERRUPTED
    if live is not None:
        live.stop()
    assert snapshot is not None  # the loop ends only with a finished deployment's snapshot
    if plain and following:
        reporter.update(snapshot)  # the changes since the last refresh
    for part in summary(snapshot, plain=plain):
        if plain and isinstance(part, Text):
            click.echo(part.plain)
        else:
            console.print(part)
    return EXIT_CODES.get(snapshot.status, 1)


def follow_options(command: F) -> F:
    """``--max-rows``, ``--refresh-interval`` and ``--retry-for``, shared with ``deploy --follow``."""
    command = click.option(
        "--retry-for",
        type=click.FloatRange(0),
        default=DEFAULT_RETRY_FOR,
        show_default=True,
        help="Seconds to keep trying while the server cannot be reached, before giving up.",
    )(command)
    command = click.option(
        "--refresh-interval",
        type=click.FloatRange(0.1, 60),
        default=DEFAULT_INTERVAL,
        show_default=True,
        help="Seconds between refreshes.",
    )(command)
    return click.option(
        "--max-rows",
        type=click.IntRange(1, 1000),
        default=DEFAULT_MAX_ROWS,
        show_default=True,
        help="Instances shown at most (failed and running ones first); the rest are counted.",
    )(command)


@click.command("watch")
@click.argument("deployment_id")
@follow_options
@client_options
def watch(
    deployment_id: str,
    max_rows: int,
    refresh_interval: float,
    retry_for: float,
    profile: str,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Follow a deployment until it finishes; exit 0 if it succeeded, 3 if it failed, 4 if stopped."""
    client = codedeploy_client(profile, region, endpoint_url)
    click.get_current_context().exit(
        follow(client, deployment_id, max_rows=max_rows, interval=refresh_interval, retry_for=retry_for)
    )

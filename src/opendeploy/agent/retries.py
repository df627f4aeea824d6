"""Transient failures of the agent's calls (to the command service, to the bundle store) and retrying them.

A call that fails because the other end is out of reach for a moment — connection refused or reset,
a timeout, an HTTP 5xx, throttling — may succeed if tried again later; anything else (a refusal, a
missing object, a bad signature) will not. ``with_retries`` tries a call again after each transient
failure, waiting 1 s, 2 s, 4 s … (at most ``cap``, jittered so a fleet does not return in lockstep),
until it succeeds, fails for good, its time budget runs out, or the agent is stopping.

The same rules serve botocore's calls (the command service, S3 downloads) and httpx's (GitHub archive
downloads): a response body that breaks off mid-stream counts as transient, so the caller can start
that download again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

log = logging.getLogger("opendeploy.agent.retries")
T = TypeVar("T")

_THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "SlowDown"}
)


class Abandoned(Exception):
    """The agent is stopping: a call that kept failing was given up before its budget ran out."""


def backoff_delay(
    consecutive_errors: int, cap: float, rand: Callable[[], float] = random.random, *, base: float = 1.0
) -> float:
    """Seconds to wait after ``consecutive_errors`` failures in a row: ``base`` (1 s) doubling each time,
    at most ``cap``; jittered to between half and all of that."""
    if consecutive_errors <= 0:
        return 0.0
    ceiling = min(float(cap), base * 2.0 ** min(consecutive_errors - 1, 62))
    return ceiling * (0.5 + 0.5 * rand())


def is_transient(error: BaseException) -> bool:
    """Whether trying the same call again later may succeed: network trouble, throttling, server faults."""
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = error.response.get("Error", {}).get("Code", "")
        return status >= 500 or status == 429 or code in _THROTTLING or code == "ServerException"
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        return status >= 500 or status == 429
    if isinstance(error, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return False  # a bad URL or a request this side built wrong: the same next time
    # Connection failures, timeouts and broken-off responses (botocore's, httpx's, a body shorter than its
    # Content-Length); plain socket errors.
    return isinstance(
        error,
        HTTPClientError | BotocoreConnectionError | IncompleteReadError | httpx.TransportError | OSError,
    )


def describe_error(error: BaseException) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".rstrip(": ")
    return f"{type(error).__name__}: {error}"


def gave_up_note(error: BaseException, budget: float, setting: str) -> str:
    """What a message about ``error`` adds when the call was retried until its ``budget`` ran out:
    " (still failing after 300 s of retries; :setting: sets how long)", or nothing."""
    if not is_transient(error) or budget <= 0:
        return ""
    return f" (still failing after {budget:g} s of retries; {setting} sets how long)"


def with_retries(
    call: Callable[[], T],
    *,
    what: str,
    budget: float,
    cap: float,
    stopping: threading.Event | None = None,
    rand: Callable[[], float] = random.random,
    base: float = 1.0,
    max_tries: int | None = None,
) -> T:
    """``call()``, tried again after each transient failure for up to ``budget`` seconds.

    Raises the last error once a failure is not transient, the next try would come after the budget or
    (when ``max_tries`` is set) would be one too many; raises ``Abandoned`` (from the last error) as
    soon as ``stopping`` is set. ``base`` is the first wait (doubling up to ``cap``).
    """
    give_up_at = time.monotonic() + budget
    errors = 0
    while True:
        try:
            return call()
        except Exception as error:
            if not is_transient(error):
                raise
            errors += 1
            delay = backoff_delay(errors, cap, rand, base=base)
            if time.monotonic() + delay > give_up_at or (max_tries is not None and errors >= max_tries):
                log.error("giving up %s after %d tries: %s", what, errors, describe_error(error))
                raise
            if stopping is not None and stopping.is_set():
                raise Abandoned(f"{what} was given up: the agent is stopping") from error
            log.warning("%s failed (%s); trying again in %.1f s", what, describe_error(error), delay)
            if stopping is not None:
                if stopping.wait(delay):
                    raise Abandoned(f"{what} was given up: the agent is stopping") from error
            else:
                time.sleep(delay)

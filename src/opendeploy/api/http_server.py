"""uvicorn's HTTP protocol with deadlines for slow clients: stalled connections are closed.

uvicorn by itself closes only idle keep-alive connections (no byte after a response for
``timeout_keep_alive`` seconds). A client that opens a connection and sends half its request headers, or
a body that stops arriving, holds its connection (a file descriptor, buffers) for as long as it likes; a
few thousand of them exhaust the server. This protocol adds two deadlines:

- **header timeout**: a request's headers must be complete within N seconds of the connection opening,
  or of the previous response on a kept-alive connection;
- **body timeout**: while a request body is arriving, N seconds without a byte close the connection.
  Time the server itself holds the body back (its read buffer is full because the application has not
  consumed it yet, or the client waits for ``100 Continue``) does not count.

Nothing limits the time the application takes to answer: an agent's long poll (PollHostCommand) is a
request whose headers and body have arrived, which the server then holds for up to ``--poll-hold``
seconds; that is not cut. ``protocol_class(header_timeout, body_timeout)`` is what ``uvicorn.run(http=…)``
takes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

DEFAULT_HEADER_TIMEOUT = 30.0
DEFAULT_BODY_TIMEOUT = 30.0
# While the server holds the body back, the body deadline is pushed on at this interval, so a client
# gets (almost) its full timeout again once reading resumes.
_PAUSED_RECHECK = 1.0


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that closes connections whose request headers or body stall."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_activity = 0.0
        self._in_message = False  # between a request's first byte and the end of its body

    # --- connection ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    # --- parser callbacks ------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = True
        super().on_message_begin()
        # The first request's deadline runs from the connection, a kept-alive one's from the previous
        # response; a request pipelined behind one still being answered gets its own from here.
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()
        # A body may follow; if the message is complete already, on_message_complete cancels this.
        self._body_activity = self.loop.time()
        if self._body_timer is None:
            self._body_timer = self.loop.call_later(self.body_timeout, self._check_body)

    def on_body(self, body: bytes) -> None:
        # Only note the time: re-arming a timer for every chunk of a large upload would cost more.
        self._body_activity = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        self._cancel_body_timer()
        super().on_message_complete()
        # Answered before its body was read (an early error): the next request is awaited from now.
        if self.cycle is not None and self.cycle.response_complete and not self.transport.is_closing():
            self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Waiting for the next request on this connection: its headers have a deadline from now (the
        # keep-alive timeout closes the connection sooner if nothing at all arrives). Not while the
        # answered request's body is still arriving (the body deadline watches that), nor when the
        # next request has begun (its deadline runs from its first byte).
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self._in_message and self._header_timer is None and not self.transport.is_closing():
            self._arm_header_timer()

    # --- deadlines -------------------------------------------------------------------------------

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _close(self, why: str) -> None:
        if self.transport.is_closing():
            return
        # Debug only: under a flood of slow clients an info line per connection would flood the log.
        log.debug("closing the connection from %s: %s", _peer(self.client), why)
        self.transport.close()

    def _header_timed_out(self) -> None:
        self._header_timer = None
        self._close(f"request headers not complete within {self.header_timeout:g} s")

    def _check_body(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        held_back = self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue)
        if held_back:
            self._body_activity = now
            self._body_timer = self.loop.call_later(_PAUSED_RECHECK, self._check_body)
            return
        idle = now - self._body_activity
        if idle >= self.body_timeout:
            self._close(f"no request body bytes for {self.body_timeout:g} s")
        else:
            self._body_timer = self.loop.call_later(self.body_timeout - idle, self._check_body)


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "an unknown peer"


def protocol_class(
    header_timeout: float = DEFAULT_HEADER_TIMEOUT, body_timeout: float = DEFAULT_BODY_TIMEOUT
) -> type[asyncio.Protocol]:
    """The protocol class to give ``uvicorn.run(http=…)``, with these deadlines (seconds)."""
    if header_timeout <= 0 or body_timeout <= 0:
        raise ValueError("the header and body timeouts must be positive")
    return type(
        "DeadlineHttpToolsProtocol",
        (DeadlineHttpToolsProtocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )

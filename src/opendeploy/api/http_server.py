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
# How often the server looks over its connections for missed deadlines (at most; a quarter of the
# shorter timeout when that is less): a deadline is enforced up to this late.
_SWEEP_INTERVAL = 1.0


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that closes connections whose request headers or body stall.

    Each connection only notes times as requests arrive (no timer per request: agents make most of the
    server's requests, and a timer for each costs more than the bookkeeping); one sweep per event loop
    looks over every open connection each ``_SWEEP_INTERVAL`` and closes those past a deadline."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._headers_due: float | None = None  # when the awaited request's headers must be complete
        self._body_activity: float | None = None  # last sign of life of a body arriving (None: none)

    # --- connection ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_due = self.loop.time() + self.header_timeout
        _ensure_sweep(self)

    # --- parser callbacks ------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A request pipelined behind one still being answered gets its deadline from its first byte.
        if self._headers_due is None:
            self._headers_due = self.loop.time() + self.header_timeout

    def on_headers_complete(self) -> None:
        self._headers_due = None
        super().on_headers_complete()
        # A body may follow; if the message is complete already, on_message_complete clears this.
        self._body_activity = self.loop.time()

    def on_body(self, body: bytes) -> None:
        self._body_activity = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._body_activity = None
        super().on_message_complete()
        # Answered before its body was read (an early error): the next request is awaited from now.
        if self.cycle is not None and self.cycle.response_complete:
            self._headers_due = self.loop.time() + self.header_timeout

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Waiting for the next request on this connection: its headers are due from now (the keep-alive
        # timeout closes the connection sooner if nothing at all arrives). Not while the answered
        # request's body is still arriving, nor once the next request has begun.
        if self._body_activity is None and self._headers_due is None:
            self._headers_due = self.loop.time() + self.header_timeout

    # --- deadlines -------------------------------------------------------------------------------

    def check_deadlines(self, now: float) -> None:
        """Close the connection if its request's headers or body are overdue (called by the sweep)."""
        if self.transport.is_closing():
            return
        if self._headers_due is not None and now >= self._headers_due:
            self._close(f"request headers not complete within {self.header_timeout:g} s")
        elif self._body_activity is not None:
            held_back = self.flow.read_paused or (
                self.cycle is not None and self.cycle.waiting_for_100_continue
            )
            if held_back:  # the server, not the client, holds the body back: that time does not count
                self._body_activity = now
            elif now - self._body_activity >= self.body_timeout:
                self._close(f"no request body bytes for {self.body_timeout:g} s")

    def _close(self, why: str) -> None:
        # Debug only: under a flood of slow clients an info line per connection would flood the log.
        log.debug("closing the connection from %s: %s", _peer(self.client), why)
        self.transport.close()


_swept: set[int] = set()  # ids of uvicorn's connection sets (one per server) being swept


def _ensure_sweep(protocol: DeadlineHttpToolsProtocol) -> None:
    """Start, once per server, the sweep over its open connections (uvicorn's shared set of them)."""
    connections = protocol.connections
    if id(connections) in _swept:
        return
    _swept.add(id(connections))
    interval = min(_SWEEP_INTERVAL, protocol.header_timeout / 4, protocol.body_timeout / 4)
    loop = protocol.loop

    def sweep() -> None:
        now = loop.time()
        for connection in list(connections):
            if isinstance(connection, DeadlineHttpToolsProtocol):
                connection.check_deadlines(now)
        loop.call_later(interval, sweep)

    loop.call_later(interval, sweep)


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

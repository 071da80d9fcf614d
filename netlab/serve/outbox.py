"""One tick's output of a server, written once per client.

Every line bound for a client during one event-loop tick leaves in one ``write``, and a
broadcast's bytes are joined once and shared by every receiver that got nothing else this
tick (the fan-out's cost, measured in docs/performance.md: keep it so).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

log = logging.getLogger("netlab.serve")


class Writable(Protocol):
    nick: str
    address: str
    transport: asyncio.Transport | None

    def overflowed(self) -> None:
        """Its unsent output passed the limit: it is not reading."""


class Outbox:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        members: Callable[[], Iterable[Writable]],
        send_buffer_bytes: int,
    ) -> None:
        self.loop = loop
        self.members = members
        self.limit = send_buffer_bytes
        # This tick's output: broadcasts shared by all, and the few clients with their own.
        self._shared: list[bytes] = []
        self._own: dict[Writable, list[bytes]] = {}
        self._scheduled = False

    def arrived(self, client: Writable) -> None:
        """A newcomer gets nothing said before it arrived."""
        self._own[client] = []

    def gone(self, client: Writable) -> None:
        self._own.pop(client, None)

    def deliver(self, data: bytes, exclude: Writable | None = None) -> None:
        """``data`` to every member but ``exclude``, leaving with this tick's other output."""
        if exclude is not None and exclude not in self._own:
            # From here on the sender's stream differs from everyone else's.
            self._own[exclude] = list(self._shared)
        self._shared.append(data)
        for client, own in self._own.items():
            if client is not exclude:
                own.append(data)
        self._schedule()

    def deliver_to(self, client: Writable, data: bytes) -> None:
        """``data`` to ``client`` alone, in order with the broadcasts of this tick."""
        own = self._own.get(client)
        if own is None:
            own = self._own[client] = list(self._shared)
        own.append(data)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write this tick's output: one write per client, the shared bytes joined once."""
        # The fan-out's hot loop: kept inline (a call per receiver cost a fifth of the rate).
        self._scheduled = False
        shared, own = self._shared, self._own
        self._shared, self._own = [], {}
        slow = []
        limit = self.limit
        if shared:
            blob = b"".join(shared)
            for client in self.members():
                if client in own:
                    continue
                transport = client.transport
                if transport is None or transport.is_closing():
                    continue
                transport.write(blob)
                if transport.get_write_buffer_size() > limit:
                    slow.append(client)
        for client, chunks in own.items():
            transport = client.transport
            if transport is None or transport.is_closing():
                continue
            transport.write(b"".join(chunks))
            if transport.get_write_buffer_size() > limit:
                slow.append(client)
        for client in slow:
            log.warning(
                "%s (%s) is not reading: over %d bytes unsent, disconnecting",
                client.nick,
                client.address,
                limit,
            )
            client.overflowed()

    def flush_now(self, client: Writable, member: bool) -> None:
        """Write what is pending for ``client`` now: its last words before it closes."""
        own = self._own.pop(client, None)
        if own is None:
            own = self._shared if member else []
        transport = client.transport
        if own and transport is not None and not transport.is_closing():
            transport.write(b"".join(own))

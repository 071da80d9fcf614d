"""How what is said reaches every server of the chat: events that carry their origin.

Every event names where it came from (an ``Origin``: server id and connection id) or where it
goes, so that a server receiving it can leave out the sender, deliver a ``/msg`` to its own
connection, or act on a kick for a user it serves, whichever server the operator is on. A
Redis implementation (issue 14) publishes these on a channel; ``LocalBus`` calls every
subscribed server's handler at once, in this process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from netlab.serve.presence import Origin


@dataclass(frozen=True, slots=True)
class Said:
    """``text`` to everyone in the chat but ``origin`` (None: to everyone): one line, or
    several joined by newlines (a sender's chat lines of one read travel as one event)."""

    text: str
    origin: Origin | None = None


@dataclass(frozen=True, slots=True)
class Told:
    """``line`` to the one connection ``to``."""

    to: Origin
    line: str


@dataclass(frozen=True, slots=True)
class Act:
    """An operator's action on the connection ``to``: its own server carries it out."""

    to: Origin
    action: Literal["kick", "mute", "unmute"]
    by: str
    reason: str = ""


BusEvent = Said | Told | Act


class Bus(Protocol):
    def subscribe(self, server_id: str, handler: Callable[[BusEvent], None]) -> None:
        """Every event published anywhere reaches ``handler``, exactly once."""

    def publish(self, event: BusEvent) -> None: ...


class LocalBus:
    """Every server subscribed here is in this process; events are handled at once, in the
    order published, so one sender's lines keep their order."""

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[[BusEvent], None]] = {}

    def subscribe(self, server_id: str, handler: Callable[[BusEvent], None]) -> None:
        self._handlers[server_id] = handler

    def unsubscribe(self, server_id: str) -> None:
        self._handlers.pop(server_id, None)

    def publish(self, event: BusEvent) -> None:
        # A Told or an Act concerns one server only: the others need not look at it.
        target = event.to.server if isinstance(event, Told | Act) else None
        if target is not None:
            handler = self._handlers.get(target)
            if handler is not None:
                handler(event)
            return
        for handler in list(self._handlers.values()):
            handler(event)

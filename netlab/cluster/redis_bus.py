"""``Bus`` over Redis pub/sub: what is said, with its origin, to every server once.

A ``Said`` is delivered here at once (this server's share of it, the sender left out) and
published for the others; a ``Told`` or an ``Act`` for a connection of this server is handled
here only, one for another server is published only. Every publication goes through the
link's one queue and connection, so one sender's events keep their order; a server never
receives its own publications back (``link``), so each recipient gets exactly one copy.
"""

from __future__ import annotations

from collections.abc import Callable

from netlab.cluster.link import RedisLink
from netlab.serve.bus import Act, BusEvent, Said, Told
from netlab.serve.presence import Origin


def _origin(pair: list | None) -> Origin | None:
    return None if pair is None else Origin(pair[0], int(pair[1]))


def _pair(origin: Origin | None) -> list | None:
    return None if origin is None else [origin.server, origin.conn]


class RedisBus:
    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.server_id = link.server_id
        self._handler: Callable[[BusEvent], None] | None = None
        link.handlers.update(said=self._on_said, told=self._on_told, act=self._on_act)

    def subscribe(self, server_id: str, handler: Callable[[BusEvent], None]) -> None:
        self._handler = handler

    def unsubscribe(self, server_id: str) -> None:
        self._handler = None

    def publish(self, event: BusEvent) -> None:
        if type(event) is Said:
            self.local(event)
            self.link.publish("said", {"line": event.text, "from": _pair(event.origin)})
        elif event.to.server == self.server_id:
            self.local(event)
        elif type(event) is Told:
            self.link.publish("told", {"to": _pair(event.to), "line": event.line})
        else:
            self.link.publish(
                "act",
                {
                    "to": _pair(event.to),
                    "action": event.action,
                    "by": event.by,
                    "reason": event.reason,
                },
            )

    def local(self, event: BusEvent) -> None:
        """``event`` to this server's room only (notices of the cluster itself use it too)."""
        if self._handler is not None:
            self._handler(event)

    # -- from the other servers --

    def _on_said(self, origin: str, event: dict) -> None:
        self.local(Said(event["line"], _origin(event["from"])))

    def _on_told(self, origin: str, event: dict) -> None:
        to = _origin(event["to"])
        if to is not None and to.server == self.server_id:
            self.local(Told(to, event["line"]))

    def _on_act(self, origin: str, event: dict) -> None:
        to = _origin(event["to"])
        if to is not None and to.server == self.server_id:
            self.local(Act(to, event["action"], event["by"], event.get("reason", "")))

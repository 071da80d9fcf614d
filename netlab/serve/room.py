"""The chat as one server takes part in it: its own connections, and the shared chat
reached through ``Presence`` (who is online anywhere) and the ``Bus`` (what is said)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from netlab import protocol as p
from netlab.serve.bus import Act, Bus, BusEvent, Said, Told
from netlab.serve.config import ServerConfig
from netlab.serve.notices import NoticeBatch
from netlab.serve.outbox import Outbox
from netlab.serve.presence import Member, Origin, Presence, settled, then
from netlab.serve.ratelimit import LoginThrottle

log = logging.getLogger("netlab.serve")


class Local(Protocol):
    """What the room needs of a connection it serves (``netlab.serve.connection``)."""

    id: int
    nick: str
    address: str
    host: str
    local: str
    transport: asyncio.Transport | None
    muted: bool
    closing: bool

    def send(self, line: str) -> None: ...

    def kicked(self, by: str, reason: str) -> None: ...

    def overflowed(self) -> None: ...


class Room:
    def __init__(
        self,
        config: ServerConfig,
        loop: asyncio.AbstractEventLoop,
        server_id: str,
        bus: Bus,
        presence: Presence,
    ) -> None:
        self.config = config
        self.server_id = server_id
        self.bus = bus
        self.presence = presence
        self.members: dict[int, Local] = {}  # this server's people, by connection id
        self.outbox = Outbox(loop, self.members.values, config.send_buffer_bytes)
        self.on_change: Callable[[], None] = lambda: None
        self.closing = False
        self.logins = LoginThrottle()
        """This server's brake on ``/login`` guesses (per address, and overall)."""
        self.joins = self._notices(loop, p.joined, p.joined_many)
        self.leaves = self._notices(loop, p.left, p.left_many)
        bus.subscribe(server_id, self.on_event)

    def _notices(self, loop, one, many) -> NoticeBatch:
        config = self.config
        return NoticeBatch(
            loop,
            self.bus.publish,
            self.presence.count,
            one,
            many,
            config.notice_burst,
            config.notice_budget,
        )

    def origin(self, client: Local) -> Origin:
        return Origin(self.server_id, client.id)

    # -- membership --

    def claim(self, client: Local, nick: str) -> asyncio.Future[str | None]:
        """Take ``nick`` for ``client`` in the whole chat: the answer is None once taken, else
        why not. Done at once on one server; a cluster's answer takes a round trip to Redis,
        which the loop does not wait for. Should ``client`` close meanwhile, a nickname it
        won goes back at once."""
        if self.presence.is_banned_nick(nick):
            return settled(p.BANNED)
        member = Member(nick, self.origin(client), client.host, client.address)

        def answer(holder: Member | None) -> str | None:
            if holder is None:
                if client.closing:
                    self.presence.release(nick, member.origin)
                return None
            if p.nick_key(holder.nick) == p.nick_key(nick):
                return p.nick_taken(nick)
            return p.nick_looks_like(nick, holder.nick)

        return then(self.presence.claim(member), answer)

    def join(self, client: Local) -> None:
        mine = self.origin(client)
        count = self.presence.count()
        others = [m.nick for m in self.presence.members(p.WELCOME_NAMES + 1) if m.origin != mine][
            : p.WELCOME_NAMES
        ]
        self.members[client.id] = client
        self.outbox.arrived(client)
        client.send(p.welcome_line(count, others))
        self.joins.add(client.nick, exclude=mine)
        self.on_change()

    def leave(self, client: Local, notice_text: str | None) -> None:
        if self.members.get(client.id) is client:
            del self.members[client.id]
            self.presence.release(client.nick, self.origin(client))
        self.outbox.gone(client)
        if notice_text == p.left(client.nick):
            self.leaves.add(client.nick, exclude=None)
        elif notice_text:
            self.bus.publish(Said(notice_text))
        self.on_change()

    def rename(self, client: Local, new: str) -> asyncio.Future[str | None]:
        """The answer: why ``client`` cannot be called ``new``, or None once it is."""
        problem = p.nick_problem(new)
        if problem:
            return settled(problem)

        def renamed(problem: str | None) -> str | None:
            if problem or client.closing:
                return problem  # (a nickname won by one who left is back already)
            old = client.nick
            if p.nick_key(old) != p.nick_key(new):
                self.presence.release(old, self.origin(client))
            client.nick = new
            self.say(client, p.renamed(old, new))
            self.on_change()
            return None

        return then(self.claim(client, new), renamed)

    def find(self, nick: str) -> Member | None:
        return self.presence.lookup(nick)

    # -- what is said --

    def say(self, sender: Local | None, text: str) -> None:
        """``text`` (one line, or several joined by newlines) to everyone in the chat but
        ``sender``."""
        self.bus.publish(Said(text, self.origin(sender) if sender is not None else None))

    def tell(self, member: Member, line: str) -> None:
        self.bus.publish(Told(member.origin, line))

    def act(self, member: Member, action, by: str, reason: str = "") -> None:
        self.bus.publish(Act(member.origin, action, by, reason))

    def on_event(self, event: BusEvent) -> None:
        """An event from anywhere in the chat: this server's share of it."""
        if self.closing:  # shutting down: its own people have had their last line
            return
        if type(event) is Said:
            origin = event.origin
            exclude = (
                self.members.get(origin.conn)
                if origin is not None and origin.server == self.server_id
                else None
            )
            self.outbox.deliver(p.encode_line(event.text), exclude)
            return
        if event.to.server != self.server_id:
            return
        client = self.members.get(event.to.conn)
        if client is None:
            return
        if type(event) is Told:
            client.send(event.line)
        elif event.action == "kick":
            client.kicked(event.by, event.reason)
        else:
            client.muted = event.action == "mute"
            client.send(p.you_were_muted(event.by, client.muted))

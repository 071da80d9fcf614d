"""Who is online in the chat, whichever server they are connected to.

``Presence`` is the seam a chat shared by several servers goes through (issue 14: a Redis
implementation replaces ``LocalPresence``): the nickname claim is atomic there, so of two
servers offering one nickname at once exactly one wins, and asynchronous (a ``Future``), so
a server never blocks its loop on a round trip to Redis. Everything the room needs to know
about people it does not serve itself is asked here: a nickname's server and connection, the
count, the list for ``/who`` and the welcome, and the banned addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from netlab.net import unmapped
from netlab.protocol import nick_key, skeletons


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` (and ``::ffff:127.0.0.1``): where the whole lab connects from."""
    try:
        return ipaddress.ip_address(unmapped(host).partition("%")[0]).is_loopback
    except ValueError:
        return False


T = TypeVar("T")
U = TypeVar("U")


def settled(value: T) -> asyncio.Future[T]:
    """A future already done with ``value``: an answer known at once, in the shape of one
    that takes a round trip."""
    future = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


def then(future: asyncio.Future[T], step: Callable[[T], U]) -> asyncio.Future[U]:
    """The future of ``step(future's result)``; ``step`` runs at once when ``future`` is done
    already, so an answer known at once stays one (no tick of the loop goes by)."""
    if future.done():
        return settled(step(future.result()))
    after = asyncio.get_running_loop().create_future()

    def done(source: asyncio.Future[T]) -> None:
        if after.cancelled():
            return
        if source.cancelled():
            after.cancel()
            return
        try:
            after.set_result(step(source.result()))
        except BaseException as error:  # handed on to whoever waits for ``after``
            after.set_exception(error)

    future.add_done_callback(done)
    return after


@dataclass(frozen=True, slots=True)
class Origin:
    """One connection anywhere in the chat: the server's id and the connection's id there."""

    server: str
    conn: int


@dataclass(frozen=True, slots=True)
class Member:
    """One person online, as every server sees them."""

    nick: str
    origin: Origin
    host: str = ""
    """The client's address without the port (what ``/ban`` refuses)."""
    address: str = "-"
    """``HOST:PORT`` of the client, for the operator's ``/who``."""


BanKind = Literal["nick", "address"]


class Presence(Protocol):
    def claim(self, member: Member) -> asyncio.Future[Member | None]:
        """Take ``member.nick`` for ``member.origin``, atomically; the answer is None when
        taken, else who holds it or a look-alike of it (the same without regard to case, or
        the same confusable skeleton). Claiming one's own nickname again (another case of
        it, a look-alike of it) succeeds and renames. The nickname is held against every
        other claim of this server from the call on; the answer may come at once (done)."""

    def release(self, nick: str, origin: Origin) -> None:
        """Give ``nick`` up, if ``origin`` holds it."""

    def lookup(self, nick: str) -> Member | None: ...

    def count(self) -> int: ...

    def members(self, limit: int | None = None) -> list[Member]:
        """In order of arrival; the first ``limit`` only when given."""

    def ban(self, kind: BanKind, value: str) -> None:
        """Refuse an address, or a nickname and its look-alikes, until ``unban`` or restart."""

    def unban(self, value: str) -> BanKind | None:
        """Lift the ban of this address or nickname (or a look-alike); what it was, or None."""

    def bans(self) -> list[tuple[BanKind, str]]: ...

    def is_banned(self, host: str) -> bool: ...

    def is_banned_nick(self, nick: str) -> bool: ...


class LocalPresence:
    """Presence held in this process; share one between ``Server``s to join their rooms."""

    def __init__(self) -> None:
        self._members: dict[str, Member] = {}  # nick key -> member, in order of arrival
        self._skeletons: dict[str, str] = {}  # confusable skeleton -> nick key
        self._bans: dict[tuple[BanKind, str], frozenset[str]] = {}  # -> skeletons (nicks)

    def claim(self, member: Member) -> asyncio.Future[Member | None]:
        return settled(self.take(member))

    def take(self, member: Member) -> Member | None:
        """``claim``, answered at once: for this process's own bookkeeping (and replicas)."""
        key = nick_key(member.nick)
        marks = skeletons(member.nick)
        for held_key in {key, *(self._skeletons.get(m) for m in marks)}:
            held = self._members.get(held_key) if held_key else None
            if held is not None and held.origin != member.origin:
                return held
        # Another case of one's own nickname keeps its place in the order of arrival.
        self._members[key] = member
        self._skeletons.update(dict.fromkeys(marks, key))
        return None

    def release(self, nick: str, origin: Origin) -> None:
        key = nick_key(nick)
        held = self._members.get(key)
        if held is not None and held.origin == origin:
            del self._members[key]
            for mark in skeletons(nick):
                if self._skeletons.get(mark) == key:
                    del self._skeletons[mark]

    def lookup(self, nick: str) -> Member | None:
        return self._members.get(nick_key(nick))

    def count(self) -> int:
        return len(self._members)

    def members(self, limit: int | None = None) -> list[Member]:
        if limit is None:
            return list(self._members.values())
        return list(itertools.islice(self._members.values(), limit))

    def ban(self, kind: BanKind, value: str) -> None:
        self._bans[(kind, value)] = skeletons(value) if kind == "nick" else frozenset()

    def unban(self, value: str) -> BanKind | None:
        marks = skeletons(value)
        for kind, banned in list(self._bans):
            if banned == value or (kind == "nick" and self._bans[(kind, banned)] & marks):
                del self._bans[(kind, banned)]
                return kind
        return None

    def bans(self) -> list[tuple[BanKind, str]]:
        return list(self._bans)

    def is_banned(self, host: str) -> bool:
        return ("address", host) in self._bans

    def is_banned_nick(self, nick: str) -> bool:
        marks = skeletons(nick)
        return any(kind == "nick" and m & marks for (kind, _), m in self._bans.items())

"""Who is online in the chat, whichever server they are connected to.

``Presence`` is the seam a chat shared by several servers goes through (issue 14: a Redis
implementation replaces ``LocalPresence``): the nickname claim is atomic there, so of two
servers offering one nickname at once exactly one wins. Everything the room needs to know
about people it does not serve itself is asked here: a nickname's server and connection, the
count, the list for ``/who`` and the welcome, and the banned addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from netlab.protocol import nick_key


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


class Presence(Protocol):
    def claim(self, member: Member) -> bool:
        """Take ``member.nick`` for ``member.origin``, atomically; False when someone else
        holds it (without regard to case). Claiming a nickname one holds already (another
        case of it) succeeds and renames."""

    def release(self, nick: str, origin: Origin) -> None:
        """Give ``nick`` up, if ``origin`` holds it."""

    def lookup(self, nick: str) -> Member | None: ...

    def count(self) -> int: ...

    def members(self, limit: int | None = None) -> list[Member]:
        """In order of arrival; the first ``limit`` only when given."""

    def ban(self, host: str) -> None: ...

    def is_banned(self, host: str) -> bool: ...


class LocalPresence:
    """Presence held in this process; share one between ``Server``s to join their rooms."""

    def __init__(self) -> None:
        self._members: dict[str, Member] = {}  # nick key -> member, in order of arrival
        self._banned: set[str] = set()

    def claim(self, member: Member) -> bool:
        key = nick_key(member.nick)
        held = self._members.get(key)
        if held is not None and held.origin != member.origin:
            return False
        # Another case of one's own nickname keeps its place in the order of arrival.
        self._members[key] = member
        return True

    def release(self, nick: str, origin: Origin) -> None:
        key = nick_key(nick)
        held = self._members.get(key)
        if held is not None and held.origin == origin:
            del self._members[key]

    def lookup(self, nick: str) -> Member | None:
        return self._members.get(nick_key(nick))

    def count(self) -> int:
        return len(self._members)

    def members(self, limit: int | None = None) -> list[Member]:
        if limit is None:
            return list(self._members.values())
        found = []
        for member in self._members.values():
            if len(found) >= limit:
                break
            found.append(member)
        return found

    def ban(self, host: str) -> None:
        self._banned.add(host)

    def is_banned(self, host: str) -> bool:
        return host in self._banned

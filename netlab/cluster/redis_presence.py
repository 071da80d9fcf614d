"""``Presence`` over Redis: who is online on every server of the cluster.

* A claim is one atomic script (``scripts.CLAIM``) on the nick key the server compares
  nicknames by (``protocol.nick_key``), so look-alikes collide across servers as on one, and of
  two servers claiming one nickname at the same moment exactly one wins.
* Every server keeps a replica of everyone, fed by the ``claim``, ``release``, ``node`` and
  ``gone`` events the others publish, so ``lookup``, ``count`` and ``members`` answer at once.
* The claim is asked synchronously by the room: it is one round trip on a blocking
  connection (about 0.1 ms on loopback), which keeps every change in the order asked.
* While Redis is away a claim is checked against the replica only and taken locally;
  ``nodes.NodeWatch`` claims it again on return (and a nickname given away meanwhile on
  another server goes to ``on_conflict``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from netlab.cluster import scripts
from netlab.cluster.link import ERRORS, RedisLink
from netlab.protocol import nick_key
from netlab.serve.presence import Member, Origin

log = logging.getLogger("netlab.serve")


def encode(member: Member) -> list:
    return [member.nick, member.origin.conn, member.host, member.address]


def decode(server: str, fields: list) -> Member:
    nick, conn, host, address = fields
    return Member(nick, Origin(server, int(conn)), host, address)


class RedisPresence:
    """The cluster's presence as one server (``link.server_id``) sees and changes it."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.keys = link.keys
        self.server_id = link.server_id
        self.everyone: dict[str, Member] = {}  # nick key -> member, in order of arrival
        self.local: dict[str, Member] = {}  # this server's share of it
        self.banned: set[str] = set()
        self.on_gone: Callable[[list[Member]], None] = lambda members: None
        """Users of another server that died or shut down: announce them as left."""
        self.on_conflict: Callable[[Member], None] = lambda member: None
        """A local user whose nickname another server gave away during an outage."""
        self.claim_script = link.sync.register_script(scripts.CLAIM)
        self.release_script = link.sync.register_script(scripts.RELEASE)
        link.handlers.update(
            claim=self._on_claim,
            release=self._on_release,
            node=self._on_node,
            gone=self._on_gone,
            ban=lambda origin, event: self.banned.add(event["host"]),
        )

    # -- the Presence protocol (netlab.serve.presence) --

    def claim(self, member: Member) -> bool:
        key = nick_key(member.nick)
        held = self.everyone.get(key)
        if held is not None and held.origin != member.origin:
            return False
        if self.link.up.is_set():
            try:
                won = self.claim_script(
                    keys=[self.keys.nick(key), self.keys.users(self.server_id)],
                    args=[self.owner(member.origin.conn), key, json.dumps(encode(member))],
                )
            except ERRORS as error:
                self.link.lost(error)  # taken locally; claimed again when Redis is back
            else:
                if not won:
                    return False
        self.everyone[key] = self.local[key] = member
        self.link.publish("claim", {"key": key, "m": encode(member)})
        return True

    def release(self, nick: str, origin: Origin) -> None:
        key = nick_key(nick)
        held = self.local.get(key)
        if held is None or held.origin != origin:
            return
        del self.local[key]
        self.everyone.pop(key, None)
        if self.link.up.is_set():
            try:
                self.release_script(
                    keys=[self.keys.nick(key), self.keys.users(self.server_id)],
                    args=[self.owner(origin.conn), key],
                )
            except ERRORS as error:
                self.link.lost(error)  # the re-sync drops what is no longer local
        self.link.publish("release", {"key": key, "conn": origin.conn})

    def lookup(self, nick: str) -> Member | None:
        return self.everyone.get(nick_key(nick))

    def count(self) -> int:
        return len(self.everyone)

    def members(self, limit: int | None = None) -> list[Member]:
        found = []
        for member in self.everyone.values():
            if limit is not None and len(found) >= limit:
                break
            found.append(member)
        return found

    def ban(self, host: str) -> None:
        self.banned.add(host)
        self.link.publish("ban", {"host": host})
        if self.link.up.is_set():
            try:
                self.link.sync.sadd(self.keys.bans, host)
            except ERRORS as error:
                self.link.lost(error)  # the re-sync stores the local bans

    def is_banned(self, host: str) -> bool:
        return host in self.banned

    # -- events from the other servers --

    def _on_claim(self, origin: str, event: dict) -> None:
        self.everyone[event["key"]] = decode(origin, event["m"])

    def _on_release(self, origin: str, event: dict) -> None:
        held = self.everyone.get(event["key"])
        if held is not None and held.origin == Origin(origin, int(event["conn"])):
            del self.everyone[event["key"]]

    def _on_node(self, origin: str, event: dict) -> None:
        """A server re-synced: its list replaces what was known of it."""
        self.forget(origin)
        for key, fields in event["users"]:
            self.everyone[key] = decode(origin, fields)

    def _on_gone(self, origin: str, event: dict) -> None:
        self.gone(event["server"], event["users"])

    # -- for nodes.NodeWatch --

    def owner(self, conn: int) -> str:
        """The value of a claim's key: which server and connection hold it."""
        return f"{self.server_id} {conn}"

    def gone(self, server: str, users: list) -> None:
        """``server`` is gone with ``users`` (pairs of key and encoded member)."""
        left = {key: decode(server, fields) for key, fields in users}
        left.update(self.forget(server))
        if server == self.server_id:
            self.local.clear()
        elif left:
            self.on_gone(list(left.values()))

    def forget(self, server: str) -> dict[str, Member]:
        """Take ``server``'s users out of the replica; return them."""
        known = {k: m for k, m in self.everyone.items() if m.origin.server == server}
        for key in known:
            del self.everyone[key]
        return known

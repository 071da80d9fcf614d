"""``Presence`` over Redis: who is online on every server of the cluster.

* A claim is one atomic script (``scripts.CLAIM``) over the nickname's key and its confusable
  skeletons, so look-alikes collide across servers as on one, and of two servers claiming one
  nickname at the same moment exactly one wins.
* Every server keeps a replica of everyone (a ``LocalPresence``, the in-process
  implementation, so the look-alike rules have one home), fed by the ``claim``, ``release``,
  ``node``, ``gone``, ``ban`` and ``unban`` events the others publish: ``lookup``, ``count``,
  ``members`` and the ban checks answer at once, without a round trip.
* A claim answers with a future: the replica is checked (and the nickname held against this
  server's other claims) at once, then the script goes to Redis through ``writes.Writes``, in
  order with every other change and batched with the claims of the same moment, so the loop
  never waits on Redis (a blocking round trip was 70 µs alone, 1-2 ms in a join storm). A
  release goes the same way, and the others are told of it at once, in order with what the
  server says next.
* While Redis is away a claim is checked against the replica only and taken locally;
  ``nodes.NodeWatch`` claims it again on return (and a nickname given away meanwhile on
  another server goes to ``on_conflict``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from netlab.cluster import scripts
from netlab.cluster.link import ERRORS, RedisLink
from netlab.cluster.writes import Writes
from netlab.protocol import nick_key, skeletons
from netlab.serve.presence import BanKind, LocalPresence, Member, Origin, settled

log = logging.getLogger("netlab.serve")


def encode(member: Member) -> list:
    return [member.nick, member.origin.conn, member.host, member.address]


def _ignored(sent: asyncio.Future) -> None:
    if not sent.cancelled():
        sent.exception()  # retrieved: the link has logged the outage once


def decode(server: str, fields: list) -> Member:
    nick, conn, host, address = fields
    return Member(nick, Origin(server, int(conn)), host, address)


class RedisPresence:
    """The cluster's presence as one server (``link.server_id``) sees and changes it."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.keys = link.keys
        self.server_id = link.server_id
        self.replica = LocalPresence()  # everyone, as last heard
        self.local: dict[str, Member] = {}  # this server's people, by nick key
        self.on_gone: Callable[[list[Member]], None] = lambda members: None
        """Users of another server that died or shut down: announce them as left."""
        self.on_conflict: Callable[[Member], None] = lambda member: None
        """A local user whose nickname another server gave away during an outage."""
        self.on_alone: Callable[[Member], None] = lambda member: None
        """A newcomer admitted while Redis is away: tell them the chat is cut."""
        self.writes = Writes(link, (scripts.CLAIM, scripts.RELEASE))
        self.claim_script = link.sync.register_script(scripts.CLAIM)
        self.release_script = link.sync.register_script(scripts.RELEASE)
        """For ``nodes.NodeWatch.reclaim``, which runs them in a blocking pipeline."""
        link.handlers.update(
            claim=self._on_claim,
            release=self._on_release,
            node=self._on_node,
            gone=self._on_gone,
            ban=lambda origin, event: self.replica.ban(event["kind"], event["value"]),
            unban=lambda origin, event: self.replica.unban(event["value"]),
        )

    # -- the Presence protocol (netlab.serve.presence) --

    def claim(self, member: Member) -> asyncio.Future[Member | None]:
        holder = self.replica.take(member)  # held here from now on (or refused at once)
        if holder is not None:
            return settled(holder)
        key = nick_key(member.nick)
        # Local from now on too: a re-sync meanwhile claims it again with the others.
        self.local[key] = member
        if not self.link.up.is_set():
            self.on_alone(member)
            return settled(None)
        answer = asyncio.get_running_loop().create_future()

        def answered(sent: asyncio.Future) -> None:
            if sent.cancelled():
                answer.cancel()
                return
            error = sent.exception()
            if error is not None and not isinstance(error, ERRORS):
                answer.set_exception(error)
            elif error is not None:  # taken locally; claimed again when Redis is back
                answer.set_result(None)
                # Told once the newcomer is in the room (the callbacks run in this order).
                answer.add_done_callback(lambda _: self.on_alone(member))
            elif (held := sent.result()) is not None:
                if self.local.get(key) is member:
                    del self.local[key]
                self.replica.release(member.nick, member.origin)
                answer.set_result(self._holder(held))
            else:
                self.link.publish("claim", {"m": encode(member)})
                answer.set_result(None)

        self.writes.call(scripts.CLAIM, **self.claim_arguments(member)).add_done_callback(answered)
        return answer

    def release(self, nick: str, origin: Origin) -> None:
        key = nick_key(nick)
        held = self.local.get(key)
        if held is None or held.origin != origin:
            return
        del self.local[key]
        self.replica.release(nick, origin)
        if self.link.up.is_set():
            # Queued before the others hear of it (so in Redis before any claim they make
            # can be, but for one pipeline's round trip when a join storm fills one).
            self.writes.call(
                scripts.RELEASE,
                keys=[self.keys.users(self.server_id)],
                args=[self.owner(origin.conn), key, str(origin.conn)],
            ).add_done_callback(_ignored)  # a failure is the link's: the re-sync drops it
        # Told now, in order with what is said after it (a rename's notice, a leave's).
        self.link.publish("release", {"nick": nick, "conn": origin.conn})

    def lookup(self, nick: str) -> Member | None:
        return self.replica.lookup(nick)

    def count(self) -> int:
        return self.replica.count()

    def members(self, limit: int | None = None) -> list[Member]:
        return self.replica.members(limit)

    def ban(self, kind: BanKind, value: str) -> None:
        self.replica.ban(kind, value)
        self.link.publish("ban", {"kind": kind, "value": value})
        self._redis("hset", self.keys.bans, f"{kind}:{value}", "1")

    def unban(self, value: str) -> BanKind | None:
        before = set(self.replica.bans())
        kind = self.replica.unban(value)
        for lifted_kind, lifted in before - set(self.replica.bans()):
            self.link.publish("unban", {"value": lifted})
            self._redis("hdel", self.keys.bans, f"{lifted_kind}:{lifted}")
        return kind

    def bans(self) -> list[tuple[BanKind, str]]:
        return self.replica.bans()

    def is_banned(self, host: str) -> bool:
        return self.replica.is_banned(host)

    def is_banned_nick(self, nick: str) -> bool:
        return self.replica.is_banned_nick(nick)

    # -- events from the other servers --

    def _on_claim(self, origin: str, event: dict) -> None:
        self.put(decode(origin, event["m"]))

    def _on_release(self, origin: str, event: dict) -> None:
        self.replica.release(event["nick"], Origin(origin, int(event["conn"])))

    def _on_node(self, origin: str, event: dict) -> None:
        """A server re-synced: its list replaces what was known of it."""
        self.forget(origin)
        for fields in event["users"]:
            self.put(decode(origin, fields))

    def _on_gone(self, origin: str, event: dict) -> None:
        if event["server"] == self.server_id:
            return  # taken for dead while it stalled: its heartbeat notices and claims again
        self.gone(event["server"], [decode(event["server"], f) for f in event["users"]])

    # -- for nodes.NodeWatch --

    def owner(self, conn: int) -> str:
        """Who holds a claim's keys: this server and the connection."""
        return f"{self.server_id} {conn}"

    def claim_arguments(self, member: Member) -> dict:
        key = nick_key(member.nick)
        marks = sorted(skeletons(member.nick))
        return {
            "keys": [
                self.keys.users(self.server_id),
                self.keys.nick(key),
                *(self.keys.mark(mark) for mark in marks),
            ],
            "args": [
                self.owner(member.origin.conn),
                f"{self.owner(member.origin.conn)} {member.nick}",
                key,
                json.dumps(encode(member)),
            ],
        }

    def put(self, member: Member) -> None:
        """``member`` is online (Redis said so): whatever the replica held against it is stale."""
        while (stale := self.replica.take(member)) is not None:
            self.replica.release(stale.nick, stale.origin)

    def gone(self, server: str, members: list[Member]) -> None:
        """``server`` is gone with ``members``: out of the replica, announced as left."""
        left = {m.origin: m for m in [*members, *self.forget(server)]}
        if server == self.server_id:
            self.local.clear()
        elif left:
            self.on_gone(list(left.values()))

    def forget(self, server: str) -> list[Member]:
        """Take ``server``'s users out of the replica; return them."""
        known = [m for m in self.replica.members() if m.origin.server == server]
        for member in known:
            self.replica.release(member.nick, member.origin)
        return known

    def _holder(self, value: str) -> Member:
        server, conn, nick = value.split(" ", 2)
        return self.replica.lookup(nick) or Member(nick, Origin(server, int(conn)))

    def _redis(self, method: str, *args: str) -> None:
        if self.link.up.is_set():
            try:
                getattr(self.link.sync, method)(*args)
            except ERRORS as error:
                self.link.lost(error)  # the re-sync stores the local bans

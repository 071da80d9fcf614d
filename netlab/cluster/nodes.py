"""Servers joining, beating, dying and coming back: ``NodeWatch``.

Each server refreshes ``netlab:NAME:node:<server>`` with a TTL of 0.6 x ``node_timeout``
every 0.2 x ``node_timeout`` and, at the same pace, checks the others listed in
``netlab:NAME:nodes``. A server whose key has expired is dead (SIGKILL, a lost machine): one
survivor wins it (``scripts.REAP``), frees its nicknames and publishes ``gone``, and every
server announces its users as left: all within ``node_timeout`` of the death, without trusting
the dead server to clean up. A server that shuts down reaps itself once its people have left
(``serve.ClusteredServer``), so nothing of it stays in Redis. A server that stalled past its
TTL finds itself reaped at its next beat, and claims its people again.

After an outage the server claims its users again, reloads the replica and the bans, and
publishes its list (``node``); it waits one ``node_timeout`` before reaping, so that servers
coming back from the same outage are not taken for dead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from netlab.cluster import scripts
from netlab.cluster.link import ERRORS, RedisLink, frame
from netlab.cluster.redis_presence import RedisPresence, decode, encode
from netlab.serve.presence import Member

log = logging.getLogger("netlab.serve")


class NodeWatch:
    def __init__(self, link: RedisLink, presence: RedisPresence, node_timeout: float) -> None:
        self.link = link
        self.keys = link.keys
        self.server_id = link.server_id
        self.presence = presence
        self.interval = node_timeout / 5
        self.ttl_ms = max(1, int(node_timeout * 600))
        self.node_timeout = node_timeout
        self._reap = link.redis.register_script(scripts.REAP)
        self._reap_after = 0.0
        self._connected_once = False
        link.on_connect.append(self.resync)
        link.workers.append(self.heartbeat)

    async def heartbeat(self) -> None:
        redis, keys = self.link.redis, self.keys
        while True:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.set(keys.node(self.server_id), str(time.time()), px=self.ttl_ms)
                pipe.sadd(keys.nodes, self.server_id)
                _, added = await pipe.execute()
            if added:
                # The others took this server for dead (it stalled past its TTL).
                log.warning("this server was taken for dead by the cluster: claiming again")
                self.reclaim()
            if time.monotonic() >= self._reap_after:
                await self.reap_dead()
            await asyncio.sleep(self.interval)

    async def reap_dead(self) -> None:
        redis = self.link.redis
        servers = [s for s in await redis.smembers(self.keys.nodes) if s != self.server_id]
        if not servers:
            return
        async with redis.pipeline(transaction=False) as pipe:
            for server in servers:
                pipe.exists(self.keys.node(server))
            beating = await pipe.execute()
        for server, beats in zip(servers, beating, strict=True):
            if not beats:
                users = await self.reap(server)
                if users is not None:
                    log.info("server %s stopped beating: its %d users left", server, len(users))

    async def reap(self, server: str) -> list[Member] | None:
        """Free ``server``'s nicknames when this caller wins it; announce its users."""
        flat = await self._reap(
            keys=[self.keys.nodes, self.keys.node(server), self.keys.users(server)],
            args=[server],
        )
        if flat is None:
            return None
        members = [decode(server, json.loads(entry)["m"]) for entry in flat[1::2]]
        self.link.publish("gone", {"server": server, "users": [encode(m) for m in members]})
        self.presence.gone(server, members)
        return members

    async def close(self) -> None:
        """Leave the cluster now: the others announce this server's users as left."""
        if not self.link.up.is_set():
            return
        try:
            await self.link.redis.delete(self.keys.node(self.server_id))
            await self.reap(self.server_id)
            await self.link.flush()
        except ERRORS as error:
            log.warning("could not leave the cluster cleanly: %s", error)

    # -- after (re)connecting --

    async def resync(self) -> None:
        self.reclaim()
        redis, keys, presence = self.link.redis, self.keys, self.presence
        servers = [s for s in await redis.smembers(keys.nodes) if s != self.server_id]
        async with redis.pipeline(transaction=False) as pipe:
            for server in servers:
                pipe.hgetall(keys.users(server))
            pipe.hkeys(keys.bans)
            *held, bans = await pipe.execute()
        for server in {m.origin.server for m in presence.members()} - {self.server_id}:
            presence.forget(server)  # Redis says who is there now
        for server, users in zip(servers, held, strict=True):
            for entry in users.values():
                presence.put(decode(server, json.loads(entry)["m"]))
        for ban in bans:
            kind, _, value = ban.partition(":")
            presence.replica.ban(kind, value)  # type: ignore[arg-type]
        if self._connected_once:
            self._reap_after = time.monotonic() + self.node_timeout
        self._connected_once = True

    def reclaim(self) -> None:
        """Put this server and its users back into Redis and tell the others its list.

        Synchronous on purpose: no claim of the room can slip in between its steps."""
        sync, keys, presence = self.link.sync, self.keys, self.presence
        users_key = keys.users(self.server_id)
        local = list(presence.local.items())
        with sync.pipeline(transaction=False) as pipe:
            for key, entry in sync.hgetall(users_key).items():
                conn = json.loads(entry)["m"][1]
                if presence.local.get(key) is None or presence.local[key].origin.conn != conn:
                    # left during the outage
                    presence.release_script(
                        keys=[users_key], args=[presence.owner(conn), key, str(conn)], client=pipe
                    )
            pipe.sadd(keys.nodes, self.server_id)
            pipe.set(keys.node(self.server_id), str(time.time()), px=self.ttl_ms)
            for kind, value in presence.bans():
                pipe.hset(keys.bans, f"{kind}:{value}", "1")
            for _, member in local:
                presence.claim_script(**presence.claim_arguments(member), client=pipe)
            results = pipe.execute()
        for (key, member), held in zip(local, results[len(results) - len(local) :], strict=True):
            if held is not None:
                del presence.local[key]
                presence.replica.release(member.nick, member.origin)
                log.warning("%s: the nickname was taken on another server meanwhile", member.nick)
                presence.on_conflict(member)
        users = [encode(member) for member in presence.local.values()]
        sync.publish(keys.channel, frame(self.server_id, [["node", {"users": users}]]))

"""One server's membership of a cluster: the link, the presence, the bus and the node watch,
and what the server's own clients are told of the cluster's faults."""

from __future__ import annotations

import asyncio

from netlab import protocol as p
from netlab.cluster import INTERRUPTED, RESTORED
from netlab.cluster.link import RedisLink
from netlab.cluster.nodes import NodeWatch
from netlab.cluster.redis_bus import RedisBus
from netlab.cluster.redis_presence import RedisPresence
from netlab.serve.bus import Act, Said, Told
from netlab.serve.presence import Member

ONE_BY_ONE = 5
"""Up to this many users of a dead server are announced one by one; more in one line."""

CONFLICT_REASON = "your nickname was taken on another server while they were cut off"


class ClusterNode:
    def __init__(self, url: str, cluster: str, server_id: str, node_timeout: float) -> None:
        self.link = RedisLink(url, cluster, server_id)
        self.presence = RedisPresence(self.link)
        self.bus = RedisBus(self.link)
        self.watch = NodeWatch(self.link, self.presence, node_timeout)
        # This server's own clients hear of the cluster's faults, once each, from here only.
        self.link.on_down = lambda: self.bus.local(Said(INTERRUPTED))
        self.link.on_up = lambda: self.bus.local(Said(RESTORED))
        self.presence.on_gone = self._announce_gone
        self.presence.on_conflict = self._conflict
        self.presence.on_alone = self._alone

    async def start(self, wait: float = 3.0) -> None:
        await self.link.start(wait)

    async def close(self) -> None:
        await self.watch.close()
        await self.presence.writes.close()
        await self.link.close()

    def _announce_gone(self, members: list[Member]) -> None:
        nicks = [m.nick for m in members]
        lines = [p.left(n) for n in nicks] if len(nicks) <= ONE_BY_ONE else [p.left_many(nicks)]
        for line in lines:
            self.bus.local(Said(line))

    def _alone(self, member: Member) -> None:
        # Called during the claim: the newcomer is in the room, welcomed, once this tick ends.
        asyncio.get_running_loop().call_soon(self.bus.local, Told(member.origin, INTERRUPTED))

    def _conflict(self, member: Member) -> None:
        self.bus.local(Act(member.origin, "kick", "server", CONFLICT_REASON))

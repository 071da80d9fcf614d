"""``netlab serve --redis``: a ``Server`` whose room is the cluster's chat."""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING

from netlab.cluster import redact
from netlab.serve.config import ServerConfig
from netlab.serve.lifecycle import Server

if TYPE_CHECKING:
    from netlab.cluster.node import ClusterNode


def server_id() -> str:
    """Unique in the cluster, and telling in ``redis-cli``: host, process, a random tail."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ClusteredServer(Server):
    """Joins the cluster before it listens; on shutdown its people leave (the others are
    told at once), then it leaves the cluster."""

    def __init__(self, config: ServerConfig, node: ClusterNode) -> None:
        server_id = node.link.server_id
        super().__init__(config, bus=node.bus, presence=node.presence, server_id=server_id)
        self.node = node

    async def start(self) -> None:
        await self.node.start()
        await super().start()

    async def shutdown(self) -> None:
        try:
            # Its people leave first: the others hear it through the bus, as on one server.
            await super().shutdown()
            await self.node.presence.writes.flush()  # their releases, then what they said
            await self.node.link.flush()
            await self.node.watch.close()  # then the server itself: no one left to announce
        finally:
            await self.node.presence.writes.close()
            await self.node.link.close()

    def _status_document(self) -> dict:
        document = super()._status_document()
        document["cluster"] = {
            "name": self.config.cluster,
            "redis": redact(self.config.redis or ""),
            "server": self.id,
        }
        return document


async def serve(config: ServerConfig) -> None:
    """Like ``netlab.server.serve``, in the cluster ``config.cluster`` on ``config.redis``
    (ServerConfig has checked both, and that the redis package is there)."""
    from netlab.cluster.node import ClusterNode

    node = ClusterNode(config.redis, config.cluster, server_id(), config.node_timeout)
    server = ClusteredServer(config, node)
    await server.start()
    await server.serve()

"""``Server``: start-up, the serve loop and graceful shutdown of one ``netlab serve``."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import uuid

from netlab import aio, net, status
from netlab import protocol as p
from netlab.serve.bus import Bus, LocalBus
from netlab.serve.config import ServerConfig
from netlab.serve.connection import Connection, ServerState
from netlab.serve.console import Console
from netlab.serve.presence import LocalPresence, Presence
from netlab.serve.room import Room

log = logging.getLogger("netlab.serve")

BANNER = "netlab serve listening on {address}"
"""Printed on standard output once the server listens: how a parent learns a ``--port 0``
server's port (``netlab.embedded``)."""


FILES_SPARE = 32
"""Descriptors kept for what is not a client: the listeners, the log, the status file, stdin."""


class ServeError(Exception):
    """The server cannot start; the message says why, for the log."""


class Server:
    """One server. Alone it is the whole chat; given a ``Bus`` and a ``Presence`` shared with
    other servers, its room is their one chat."""

    def __init__(
        self,
        config: ServerConfig,
        bus: Bus | None = None,
        presence: Presence | None = None,
        server_id: str | None = None,
    ) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.id = server_id or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.room = Room(config, self.loop, self.id, bus or LocalBus(), presence or LocalPresence())
        self.state = ServerState(config, self.loop, self.room, self.stop)
        self.listeners: list[str] = []
        self.stopping = asyncio.Event()
        self.status = status.StatusWriter(self.loop, self._status_document, config.status_file)
        self.room.on_change = self.status.changed
        self.console: Console | None = None
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        config = self.config
        self.state.max_clients = self._client_limit()
        if config.host in ("0.0.0.0", "::", ""):
            log.warning(
                "listening on all interfaces (%s): anyone on the network can join", config.host
            )
        try:
            self._server = await self.loop.create_server(
                lambda: Connection(self.state), config.host or None, config.port, backlog=4096
            )
        except OSError as error:  # taken port, unknown host, no such address here
            # uvloop's message repeats the address: the errno's own words say it once.
            resolving = isinstance(error, socket.gaierror) or not (error.errno or 0) > 0
            why = (error.strerror or str(error)) if resolving else os.strerror(error.errno)
            if error.errno == errno.EADDRINUSE:
                why += (
                    f" (`netlab sockets --port {config.port}` shows who has it;"
                    " --port 0 takes a free one)"
                )
            raise ServeError(f"cannot listen on {config.host} port {config.port}: {why}") from None
        for sock in self._server.sockets:
            host, port = sock.getsockname()[:2]
            self.listeners.append(net.format_address(host, port))
        log.info(
            "listening on %s (max %s)",
            ", ".join(self.listeners),
            p.plural(self.state.max_clients, "client"),
        )
        if config.banner:
            print(BANNER.format(address=self.listeners[0]), flush=True)
        self.status.write()

    def _client_limit(self) -> int:
        """``--max-clients``, lowered to what the open-file limit allows: past it a newcomer
        would be closed with no word (libuv's spare descriptor), below it it hears the server
        is full."""
        wanted = self.config.max_clients
        limit = aio.raise_file_limit(wanted)
        if limit is None or wanted + FILES_SPARE <= limit:
            return wanted
        allowed = max(1, limit - FILES_SPARE)
        log.warning(
            "the open-file limit (%d) allows about %s: serving at most %d (--max-clients %d)",
            limit,
            p.plural(allowed, "client"),
            allowed,
            wanted,
        )
        return allowed

    async def serve(self) -> None:
        """Run until a signal, ``/shutdown`` on the console, or ``stop()``."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self.loop.add_signal_handler(sig, self.stop)
        console = self.config.console
        if console is None:
            console = sys.stdin is not None and sys.stdin.isatty()
        if console:
            self.console = Console(self.loop, self.room, self.stop)
            self.console.start()
        try:
            await self.stopping.wait()
        finally:
            await self.shutdown()

    def stop(self) -> None:
        self.stopping.set()

    async def shutdown(self) -> None:
        """Tell everyone here, close every connection, stop listening."""
        room = self.room
        log.info("shutting down: %s online", p.plural(len(room.members), "client"))
        if self._server is not None:
            self._server.close()
        room.outbox.flush()
        # From here on nothing more is delivered here; the people of other servers sharing
        # this chat (the same bus) still hear who left.
        room.closing = True
        for client in list(room.members.values()) + list(self.state.handshaking):
            if client.registered:
                client.send(p.SHUTTING_DOWN)
            client.disconnect("server shutdown", notice_text=p.left(client.nick))
        for notices in (room.joins, room.leaves):
            notices.cancel()
            notices.flush()
        unsubscribe = getattr(room.bus, "unsubscribe", None)
        if unsubscribe is not None:
            unsubscribe(self.id)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await aio.within(self._server.wait_closed(), 2)
        self.status.close()
        if self.console is not None:
            await self.console.close()

    def _status_document(self) -> dict:
        clients = [
            {"nick": c.nick, "local": c.local, "remote": c.address}
            for c in self.room.members.values()
        ]
        return {"pid": os.getpid(), "listen": self.listeners, "clients": clients}

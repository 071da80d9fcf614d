"""One connection of ``netlab chat`` to a server, spoken through the sans-IO ``ClientSession``:
connect, join (the prompt, the nickname, the welcome or a refusal), read and write, leave."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from netlab import aio, net
from netlab import protocol as p

log = logging.getLogger("netlab.client")

CONNECT_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 10.0
"""For the NICK prompt and then for the welcome: a server that accepts but never speaks (the
handout's server when full) must not leave the user waiting forever."""
LEAVE_TIMEOUT = 1.0
"""How long to wait for the netlab server's ``Bye!`` and close after ``/quit``."""
HANDOUT_LEAVE_WAIT = 0.5
"""After its leaving message a handout-protocol client waits this long for the server to close,
then resets the connection: the handout's server only notices a reset, and spins on a polite
close."""
HANDOUT_HOLD = 0.2
"""A piece that may continue in the next receive is shown after this much quiet."""
MAX_LINE_BYTES = 1 << 20


@dataclass
class ChatConfig:
    host: str = "127.0.0.1"
    port: int = 55555
    nick: str | None = None
    protocol: p.Dialect | str = p.Dialect.netlab
    debug: bool = False


class ChatError(Exception):
    """Ends the session with status 1; the message is the one line the user sees."""


class Rejected(ChatError):
    """The server turned the nickname down; another may do."""


class ServerGone(ChatError):
    """The connection ended without the user asking."""


# ---- one connection --------------------------------------------------------------------


class Connection:
    """A socket to a chat server, spoken through the sans-IO ``ClientSession``: sends the
    user's text, returns the server's messages as cleaned text (no control characters or
    escape sequences)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: p.Dialect | str
    ) -> None:
        self.reader, self.writer, self.protocol = reader, writer, p.Dialect(protocol)
        self.session = p.ClientSession("", protocol, MAX_LINE_BYTES)
        self._eof = False
        self.kicked: p.Kicked | None = None
        """Set when an operator removed us: the server's words, shown instead of a lost
        connection when it closes."""

    @property
    def nick(self) -> str:
        return self.session.nick

    @nick.setter
    def nick(self, value: str) -> None:
        self.session.nick = value  # /nick changes what the handout dialect signs

    def texts(self, events: list[p.ClientEvent]) -> list[str]:
        """What the user is shown of the session's events, cleaned."""
        shown = []
        for event in events:
            if isinstance(event, p.Received):
                shown.append(event.text)
            elif isinstance(event, p.Kicked):
                self.kicked = p.Kicked(event.by, event.reason, p.clean_text(event.text))
            elif isinstance(event, p.Skipped):
                shown.append(f"(a line over {event.limit} bytes was skipped)")
            elif isinstance(event, p.Closed):
                self._eof = True
        return [p.clean_text(t) for t in shown if t]

    async def read(self, timeout: float | None = None) -> bytes:
        """One receive; raises ServerGone on an error (end of stream is ``b""``)."""
        try:
            data = await aio.within(self.reader.read(65536), timeout)
        except asyncio.TimeoutError:
            raise  # an OSError too, but only the caller's quiet spell: not a lost connection
        except ConnectionResetError as exc:
            log.debug("read: %r", exc)
            raise ServerGone("Connection lost: reset by the server.") from exc
        except OSError as exc:
            log.debug("read: %r", exc)
            raise ServerGone(f"Connection lost: {exc.strerror or exc}.") from exc
        log.debug("received %d bytes: %r", len(data), data[:200])
        return data

    async def receive(self) -> list[str]:
        """The next messages (one read's worth); raises ServerGone when the stream ends."""
        if self._eof:
            raise ServerGone("Connection lost: the server closed the connection.")
        try:
            data = await self.read(HANDOUT_HOLD if self.session.holding else None)
        except asyncio.TimeoutError:
            return self.texts(self.session.flush())
        shown = self.texts(self.session.receive_data(data))
        if self._eof:
            log.debug("end of stream from the server")
            if not shown:
                raise ServerGone("Connection lost: the server closed the connection.")
        return shown

    async def send_raw(self, data: bytes) -> None:
        if self.writer.is_closing():
            raise ServerGone("Connection lost: the connection is closed.")
        log.debug("sending %d bytes: %r", len(data), data[:200])
        try:
            self.writer.write(data)
            await self.writer.drain()
        except OSError as exc:
            log.debug("send: %r", exc)
            raise ServerGone(f"Connection lost: {exc.strerror or exc}.") from exc

    async def say(self, text: str) -> None:
        """One message as typed; under the handout protocol stamped and signed like the
        handout's client does, in one send."""
        await self.send_raw(self.session.message(text, time.time()))

    async def leave(self, show: Callable[[list[str]], Awaitable[None]]) -> None:
        """Say goodbye the protocol's way, showing what still arrives, and close."""
        log.debug("leaving")
        handout = self.protocol == "handout"
        try:
            if goodbye := self.session.leaving():
                await self.send_raw(goodbye)
            closed = await self._drain_until_closed(
                show, HANDOUT_LEAVE_WAIT if handout else LEAVE_TIMEOUT
            )
            if handout and not closed:
                self.reset()
        except ServerGone:
            pass
        finally:
            self.close()

    async def _drain_until_closed(
        self, show: Callable[[list[str]], Awaitable[None]], timeout: float
    ) -> bool:
        """Show what arrives until the server closes (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(asyncio.TimeoutError):
            while (remaining := deadline - time.monotonic()) > 0:
                await show(await aio.within(self.receive(), remaining))
        return self._eof

    def reset(self) -> None:
        """Close with an RST instead of a FIN."""
        net.reset(self.writer.transport)

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


async def open_connection(config: ChatConfig) -> Connection:
    """Connect to the first address of the host that answers."""
    loop = asyncio.get_running_loop()
    where = net.format_address(config.host, config.port)
    try:
        addresses = await loop.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        log.debug("getaddrinfo(%r): %r", config.host, exc)
        raise ChatError(f"Cannot connect to {where}: unknown host ({exc.strerror}).") from exc
    errors: list[OSError] = []
    for family, _, _, _, address in addresses:
        log.debug("connecting to %s (family %s)", address, family)
        try:
            reader, writer = await aio.within(
                asyncio.open_connection(address[0], address[1], family=family),
                CONNECT_TIMEOUT,
            )
        except asyncio.TimeoutError:
            errors.append(TimeoutError(f"timed out after {CONNECT_TIMEOUT:g} s"))
        except OSError as exc:
            log.debug("connect to %s failed: %r", address, exc)
            errors.append(exc)
        else:
            sock = writer.get_extra_info("socket")
            log.debug("connected %s -> %s", sock.getsockname(), sock.getpeername())
            with contextlib.suppress(OSError):
                # A vanished peer (a cable, not a process) is noticed in minutes, not hours.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                if config.protocol == "handout":
                    # The handout's server spins on a polite close and only lets go of a
                    # client on a reset: so every close of ours, even a kill by a signal,
                    # is one (net's zero linger, set now rather than at close).
                    net.reset_on_close(sock)
            return Connection(reader, writer, config.protocol)
    refused = any(isinstance(e, ConnectionRefusedError) for e in errors)
    why = "connection refused (is the server running?)" if refused else _why(errors)
    raise ChatError(f"Cannot connect to {where}: {why}.")


def _why(errors: list[OSError]) -> str:
    exc = errors[0] if errors else OSError("no address")
    return str(exc.strerror or exc).rstrip(".").lower() if exc.args else type(exc).__name__


async def join(config: ChatConfig, nick: str) -> tuple[Connection, list[str]]:
    """Connect and register ``nick``; returns the connection and the welcome messages."""
    conn = await open_connection(config)
    conn.nick = nick
    try:
        welcome = await aio.within(_handshake(conn), HANDSHAKE_TIMEOUT)
    except asyncio.TimeoutError:
        conn.reset()
        raise ChatError(
            f"The server at {net.format_address(config.host, config.port)} did not answer"
            f" within {HANDSHAKE_TIMEOUT:g} s (a full handout server says nothing)."
        ) from None
    except BaseException:
        conn.reset()
        raise
    return conn, welcome


async def _handshake(conn: Connection) -> list[str]:
    """Feed the session until it has joined: the welcome, and whatever came with it."""
    if conn.session.phase == "chat":
        return []  # a line relay: no handshake at all
    asked = False
    while True:
        events = conn.session.receive_data(await conn.read())
        for at, event in enumerate(events):
            if isinstance(event, p.Prompted):
                log.debug("got the NICK prompt; sending %r", conn.nick)
                asked = True
                await conn.send_raw(event.reply)
            elif isinstance(event, p.Refused):
                log.debug("refused before the prompt: %r", event.text)
                raise ChatError(p.clean_text(event.text) or "The server refused.")
            elif isinstance(event, p.Rejected):
                log.debug("nickname rejected: %r", event.reason)
                raise Rejected(p.clean_text(event.reason))  # a netlab server says why, then closes
            elif isinstance(event, p.Joined):
                log.debug("joined as %r", conn.nick)
                return [p.clean_text(t) for t in event.welcome] + conn.texts(events[at + 1 :])
            elif isinstance(event, p.Closed):
                if asked:
                    raise Rejected("The server closed the connection.")
                raise ServerGone("The server closed the connection before asking for a nickname.")

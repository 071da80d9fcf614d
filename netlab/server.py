"""``netlab serve``: the asyncio chat server.

The pieces, each small:

* ``ServerConfig``: every option of ``netlab serve``, built once by the CLI.
* ``Client``: one connection (an ``asyncio.Protocol``): handshake, framing, rate limit, its
  outgoing queue. Errors are caught at this edge, so a bad client never takes down another.
* ``Room``: who is online and the delivery of lines to them. Writes are coalesced: every line
  bound for a client during one event-loop tick leaves in one ``write``, and a broadcast's
  bytes are joined once and shared by every receiver.
* ``Bus``: the seam a room broadcasts through. ``LocalBus`` delivers in this process; a bus
  over Redis pub/sub can later share one chat between several servers.
* ``COMMANDS``: the chat commands, a table from name to one small handler each.
* ``Server``: start-up, the serve loop, the operator console and graceful shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from netlab import aio, status
from netlab import protocol as p
from netlab.serve.config import ServerConfig

log = logging.getLogger("netlab.serve")

BANNER = "netlab serve listening on {address}"
"""Printed on standard output once the server listens: how a parent learns a ``--port 0``
server's port (``netlab.embedded``)."""


# ---- the broadcast seam --------------------------------------------------------------------


class Bus(Protocol):
    """How a room's broadcasts reach its members. One method, so that a bus over Redis
    pub/sub can share a chat between servers: it would publish, and every server's
    subscriber would call its own ``Room.deliver``."""

    def publish(self, line: str, exclude: str | None = None) -> None:
        """Send ``line`` to everyone in the chat but the client with nick key ``exclude``."""


class LocalBus:
    """All members are in this process."""

    def __init__(self, room: Room) -> None:
        self.room = room

    def publish(self, line: str, exclude: str | None = None) -> None:
        self.room.deliver(p.encode_line(line), self.room.members.get(exclude) if exclude else None)


# ---- one connection ----------------------------------------------------------------------


class TokenBucket:
    """``rate`` messages a second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Client(asyncio.Protocol):
    """One chat connection, from the ``NICK`` prompt to its close."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.room = server.room
        self.config = server.config
        self.transport: asyncio.Transport | None = None
        self.address = "-"
        self.peer_host = ""
        self.local = "-"
        self.nick = ""
        self.key = ""
        self.framing: p.Framing = "line"
        self.operator = False
        self.muted = False
        self.registered = False
        self.closing = False
        self.connected_at = time.monotonic()
        self.handshake: p.Handshake | None = p.Handshake()
        self.decoder: p.LineDecoder | p.ChunkDecoder | None = None
        self.bucket = (
            TokenBucket(self.config.rate_limit, self.config.rate_burst)
            if self.config.rate_limit > 0
            else None
        )
        self.drops: deque[float] = deque()
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio callbacks --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  (uvloop's is not a subclass)
        peer = transport.get_extra_info("peername") or ("?", 0)
        sock = transport.get_extra_info("sockname") or ("?", 0)
        self.peer_host = peer[0]
        self.address = status.format_address(peer[0], peer[1])
        self.local = status.format_address(sock[0], sock[1])
        refusal = self.server.admission(self)
        if refusal:
            log.info("refused %s: %s", self.address, refusal)
            self.refuse(refusal)
            return
        self.server.handshaking.add(self)
        transport.write(p.PROMPT)
        self._timer = self.server.loop.call_later(
            self.config.handshake_timeout, self._handshake_expired
        )

    def data_received(self, data: bytes) -> None:
        try:
            if self.closing:
                return
            if self.handshake is not None:
                self._handshake_data(data)
            else:
                self._messages(data)
        except Exception:
            # The edge of one connection: whatever went wrong stays with this client.
            log.exception("error while serving %s (%s)", self.nick or "?", self.address)
            self.disconnect("internal error", notice_text=p.left(self.nick))

    def eof_received(self) -> bool:
        # The peer closed its side: whatever it sent before has been read; leave now.
        self.disconnect("closed by client", notice_text=p.left(self.nick))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "connection closed"
        self.disconnect(reason, notice_text=p.left(self.nick))

    # -- handshake --

    def _handshake_data(self, data: bytes) -> None:
        assert self.handshake is not None
        answer = self.handshake.feed(data)
        if answer is None:
            # Bare bytes: a handout client's whole nickname, or a line client's first half.
            self._cancel_timer()
            self._timer = self.server.loop.call_later(self.config.handout_grace, self._settle)
            return
        self._register(answer)

    def _settle(self) -> None:
        if self.handshake is not None and not self.closing:
            self._register(self.handshake.settle())

    def _handshake_expired(self) -> None:
        if self.handshake is not None and not self.closing:
            if self.handshake.pending:
                self._settle()
                return
            log.info("handshake timeout from %s", self.address)
            self.refuse(p.HANDSHAKE_TIMEOUT)

    def _register(self, answer: p.Nickname) -> None:
        self._cancel_timer()
        self.handshake = None
        self.server.handshaking.discard(self)
        problem = p.nick_problem(answer.nick) or self.room.nick_conflict(answer.nick)
        if problem:
            log.info("rejected nickname %r from %s: %s", answer.nick, self.address, problem)
            self.refuse(problem)
            return
        self.nick, self.key, self.framing = answer.nick, p.nick_key(answer.nick), answer.framing
        self.decoder = (
            p.LineDecoder(self.config.max_line_bytes)
            if self.framing == "line"
            else p.ChunkDecoder(self.config.max_line_bytes)
        )
        self.registered = True
        self.connected_at = time.monotonic()
        self.room.join(self)
        log.info("%s joined from %s (%s client)", self.nick, self.address, self.framing)
        if answer.rest:
            self._messages(answer.rest)

    # -- after the handshake --

    def _messages(self, data: bytes) -> None:
        assert self.decoder is not None
        for event in self.decoder.feed(data):
            if self.closing:
                return
            if isinstance(event, p.LineTooLong):
                self.send(f"Line too long (over {event.limit} bytes): not sent.")
                log.warning("%s sent a line over %d bytes", self.nick, event.limit)
            else:
                self._message(event.text)

    def _message(self, raw: str) -> None:
        text = p.clean_text(raw).strip()
        if not text:
            return
        if self.framing == "handout" and text == p.handout_leaving(self.nick):
            self.disconnect("left (/exit)", notice_text=p.left(self.nick))
            return
        if not self._within_rate():
            return
        command = p.parse_command(text)
        if command is not None:
            dispatch(self, command)
        elif self.muted:
            self.send(p.MUTED)
        elif self.framing == "handout":
            # The handout's client has already put the time and its nickname in.
            self.room.bus.publish(text, exclude=self.key)
        else:
            self.room.bus.publish(p.chat_line(self.nick, text), exclude=self.key)

    def _within_rate(self) -> bool:
        if self.bucket is None or self.bucket.take():
            return True
        now = time.monotonic()
        drops = self.drops
        drops.append(now)
        while drops and now - drops[0] > 10:
            drops.popleft()
        if len(drops) >= self.config.flood_disconnect:
            self.send("Disconnected for flooding.")
            self.disconnect("flooding", notice_text=p.left(self.nick))
        elif len(drops) == 1 or now - drops[-2] > 1:
            self.send(
                f"Slow down: over {self.config.rate_limit:g} messages a second,"
                " messages are dropped."
            )
            log.warning("%s is flooding: messages dropped", self.nick)
        return False

    # -- output --

    def send(self, line: str) -> None:
        """One line to this client alone, in order with what the room sends it."""
        self.room.deliver_to(self, p.encode_line(line))

    def refuse(self, line: str) -> None:
        """Say why, and close: used before the client is in the room."""
        self.closing = True
        self._cancel_timer()
        self.server.handshaking.discard(self)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(p.encode_line(line))
            self.transport.close()

    def disconnect(self, reason: str, notice_text: str | None = None, abort: bool = False) -> None:
        """Leave the room (telling the others ``notice_text`` once) and close."""
        if self.closing:
            return
        self.closing = True
        self._cancel_timer()
        self.server.handshaking.discard(self)
        if self.transport is not None and not abort:
            self.room.flush_now(self)
        if self.registered:
            self.registered = False
            self.room.leave(self, notice_text)
            log.info(
                "%s disconnected (%s) from %s after %.1fs",
                self.nick,
                reason,
                self.address,
                time.monotonic() - self.connected_at,
            )
        if self.transport is not None:
            if abort:
                # A reset, not a FIN: the kernel then frees what the peer never read.
                sock = self.transport.get_extra_info("socket")
                with contextlib.suppress(OSError, AttributeError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.transport.abort()
            else:
                self.transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# ---- the room ----------------------------------------------------------------------------


class NoticeBatch:
    """Join or leave notices: one by one while they are few, one coalesced line a second
    when a crowd arrives or leaves (so that N arrivals cost O(N) lines, not O(N^2))."""

    def __init__(
        self, room: Room, one: Callable[[str], str], many: Callable[[list[str]], str]
    ) -> None:
        self.room, self.one, self.many = room, one, many
        self.recent: deque[float] = deque()
        self.pending: list[str] = []
        self.timer: asyncio.TimerHandle | None = None

    def add(self, nick: str, exclude: str | None) -> None:
        now = time.monotonic()
        while self.recent and now - self.recent[0] > 1:
            self.recent.popleft()
        config = self.room.config
        # Each notice is copied to everyone: the bigger the room, the fewer go one by one.
        room_size = max(1, len(self.room.members))
        one_by_one = max(config.notice_burst, config.notice_budget // room_size)
        if len(self.recent) < one_by_one and not self.pending:
            self.recent.append(now)
            self.room.bus.publish(self.one(nick), exclude=exclude)
            return
        self.pending.append(nick)
        if self.timer is None:
            self.timer = self.room.loop.call_later(1.0, self.flush)

    def flush(self) -> None:
        self.timer = None
        if self.pending:
            nicks, self.pending = self.pending, []
            self.recent.append(time.monotonic())
            self.room.bus.publish(self.many(nicks))


class Room:
    """The people online and delivery to them."""

    WELCOME_NAMES = 10

    def __init__(self, config: ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.members: dict[str, Client] = {}  # nick key -> client, in order of arrival
        self.bus: Bus = LocalBus(self)
        self.joins = NoticeBatch(self, p.joined, p.joined_many)
        self.leaves = NoticeBatch(self, p.left, p.left_many)
        self.on_change: Callable[[], None] = lambda: None
        # This tick's output: broadcasts shared by all, and the few clients with their own.
        self._shared: list[bytes] = []
        self._own: dict[Client, list[bytes]] = {}
        self._flush_scheduled = False

    # -- membership --

    def nick_conflict(self, nick: str, me: Client | None = None) -> str | None:
        other = self.members.get(p.nick_key(nick))
        return p.nick_taken(nick) if other is not None and other is not me else None

    def join(self, client: Client) -> None:
        # Only the first few names: listing everyone to every newcomer would cost O(N^2).
        others = len(self.members)
        names = [c.nick for c in itertools.islice(self.members.values(), self.WELCOME_NAMES)]
        self.members[client.key] = client
        self._own[client] = []  # a newcomer gets nothing said before it arrived
        shown = ", ".join(names)
        if others > len(names):
            shown += f" and {others - len(names)} more"
        welcome = f"{p.CONNECTED} {others + 1} online" + (f": you, {shown}." if names else ": you.")
        client.send(welcome + " Type /help for commands.")
        self.joins.add(client.nick, exclude=client.key)
        self.on_change()

    def leave(self, client: Client, notice_text: str | None) -> None:
        if self.members.get(client.key) is client:
            del self.members[client.key]
        self._own.pop(client, None)
        if notice_text == p.left(client.nick):
            self.leaves.add(client.nick, exclude=None)
        elif notice_text:
            self.bus.publish(notice_text)
        self.on_change()

    def rename(self, client: Client, new: str) -> None:
        del self.members[client.key]
        old, client.nick, client.key = client.nick, new, p.nick_key(new)
        self.members[client.key] = client
        self.bus.publish(p.renamed(old, new), exclude=client.key)
        self.on_change()

    def find(self, nick: str) -> Client | None:
        return self.members.get(p.nick_key(nick))

    # -- delivery --

    def deliver(self, data: bytes, exclude: Client | None = None) -> None:
        """``data`` to every member but ``exclude``, leaving with this tick's other output."""
        if exclude is not None and exclude not in self._own:
            # From here on the sender's stream differs from everyone else's.
            self._own[exclude] = list(self._shared)
        self._shared.append(data)
        for client, own in self._own.items():
            if client is not exclude:
                own.append(data)
        self._schedule()

    def deliver_to(self, client: Client, data: bytes) -> None:
        """``data`` to ``client`` alone, in order with the broadcasts of this tick."""
        own = self._own.get(client)
        if own is None:
            own = self._own[client] = list(self._shared)
        own.append(data)
        self._schedule()

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write this tick's output: one write per client, the shared bytes joined once."""
        self._flush_scheduled = False
        shared, own = self._shared, self._own
        self._shared, self._own = [], {}
        slow = []
        limit = self.config.send_buffer_bytes
        if shared:
            blob = b"".join(shared)
            for client in self.members.values():
                if client in own:
                    continue
                transport = client.transport
                if transport is None or transport.is_closing():
                    continue
                transport.write(blob)
                if transport.get_write_buffer_size() > limit:
                    slow.append(client)
        for client, chunks in own.items():
            transport = client.transport
            if transport is None or transport.is_closing():
                continue
            transport.write(b"".join(chunks))
            if transport.get_write_buffer_size() > limit:
                slow.append(client)
        for client in slow:
            log.warning(
                "%s (%s) is not reading: over %d bytes unsent, disconnecting",
                client.nick,
                client.address,
                limit,
            )
            client.disconnect("send buffer overflow", notice_text=p.left(client.nick), abort=True)

    def flush_now(self, client: Client) -> None:
        """Write what is pending for ``client`` now: its last words before it closes."""
        own = self._own.pop(client, None)
        if own is None:
            own = self._shared if self.members.get(client.key) is client else []
        transport = client.transport
        if own and transport is not None and not transport.is_closing():
            transport.write(b"".join(own))


# ---- commands ----------------------------------------------------------------------------

Handler = Callable[[Client, p.Command], None]
COMMANDS: dict[str, Handler] = {}
OPERATOR_COMMANDS: set[str] = set()
USAGE: dict[str, str] = {}


def command(name: str, usage: str, *aliases: str, operator: bool = False):
    """Register a chat command handler under ``name`` (and aliases)."""

    def register(handler: Handler) -> Handler:
        for each in (name, *aliases):
            COMMANDS[each] = handler
            if operator:
                OPERATOR_COMMANDS.add(each)
        USAGE[name] = usage
        return handler

    return register


def dispatch(client: Client, cmd: p.Command) -> None:
    handler = COMMANDS.get(cmd.name)
    if handler is None:
        client.send(f"Unknown command /{cmd.name}. Type /help for the list.")
    elif cmd.name in OPERATOR_COMMANDS and not client.operator:
        client.send(f"Permission denied: /{cmd.name} is for operators (see /login).")
        log.warning("%s tried /%s without operator rights", client.nick, cmd.name)
    else:
        handler(client, cmd)


@command("help", "/help - this list")
def cmd_help(client: Client, cmd: p.Command) -> None:
    lines = [
        usage for name, usage in USAGE.items() if client.operator or name not in OPERATOR_COMMANDS
    ]
    client.send("Commands: " + " | ".join(lines))


@command("who", "/who - who is online")
def cmd_who(client: Client, cmd: p.Command) -> None:
    # Bare nicknames, comma-separated: scripts and bots split this line.
    names = [c.nick for c in client.room.members.values()]
    client.send(f"{len(names)} online: " + ", ".join(names))


@command("msg", "/msg NICK TEXT - a private message", "w", "tell")
def cmd_msg(client: Client, cmd: p.Command) -> None:
    nick, text = cmd.split()
    if not nick or not text:
        client.send("Usage: /msg NICK TEXT")
        return
    target = client.room.find(nick)
    if target is None:
        client.send(f"No such user: {nick}.")
        return
    target.send(p.private_line(client.nick, text))
    client.send(p.private_line(client.nick, text, to=target.nick))


@command("me", "/me TEXT - an action")
def cmd_me(client: Client, cmd: p.Command) -> None:
    if not cmd.args:
        client.send("Usage: /me TEXT")
    elif client.muted:
        client.send(p.MUTED)
    else:
        client.room.bus.publish(p.action_line(client.nick, cmd.args), exclude=client.key)


@command("nick", "/nick NEW - change your nickname")
def cmd_nick(client: Client, cmd: p.Command) -> None:
    new = p.normalize_nick(cmd.args)
    problem = p.nick_problem(new) or client.room.nick_conflict(new, me=client)
    if problem:
        client.send(problem)
        return
    old = client.nick
    client.room.rename(client, new)
    client.send(f"You are now known as {new}.")
    log.info("%s is now known as %s", old, new)


@command("login", "/login PASSWORD - operator rights")
def cmd_login(client: Client, cmd: p.Command) -> None:
    password = client.config.admin_password
    if not password:
        client.send("This server has no operators (no admin password set).")
    elif hmac.compare_digest(cmd.args.encode(), password.encode()):
        client.operator = True
        client.send("You are now an operator.")
        log.info("%s logged in as operator", client.nick)
    else:
        client.send("Wrong password.")
        log.warning("%s gave a wrong operator password", client.nick)


@command("exit", "/exit or /quit [reason] - leave", "quit")
def cmd_exit(client: Client, cmd: p.Command) -> None:
    client.send("Bye!")
    why = f"left (/{cmd.name}" + (f": {cmd.args})" if cmd.args else ")")
    client.disconnect(why, notice_text=p.left(client.nick))


def kick(target: Client, by: str, reason: str) -> None:
    """Shared by /kick, /ban and the operator console."""
    target.send(p.you_were_kicked(by, reason))
    log.info("%s kicked %s%s", by, target.nick, f" ({reason})" if reason else "")
    target.disconnect(f"kicked by {by}", notice_text=p.kicked_notice(target.nick, by, reason))


def _target(client: Client, cmd: p.Command) -> tuple[Client | None, str]:
    nick, rest = cmd.split()
    if not nick:
        client.send(f"Usage: {USAGE[cmd.name]}")
        return None, rest
    target = client.room.find(nick)
    if target is None:
        client.send(f"No such user: {nick}.")
    return target, rest


@command("kick", "/kick NICK [reason] - disconnect a user", operator=True)
def cmd_kick(client: Client, cmd: p.Command) -> None:
    target, reason = _target(client, cmd)
    if target is not None:
        kick(target, client.nick, reason)


@command("ban", "/ban NICK - kick, and refuse that address until restart", operator=True)
def cmd_ban(client: Client, cmd: p.Command) -> None:
    target, reason = _target(client, cmd)
    if target is not None:
        client.server.banned.add(target.peer_host)
        kick(target, client.nick, reason or "banned")


def _set_muted(client: Client, cmd: p.Command, muted: bool) -> None:
    target, _ = _target(client, cmd)
    if target is not None:
        target.muted = muted
        done = "muted" if muted else "unmuted"
        target.send(f"You have been {done} by {client.nick}.")
        client.send(f"{target.nick} is {done}.")
        log.info("%s %s %s", client.nick, done, target.nick)


@command("mute", "/mute NICK - stop a user's messages", operator=True)
def cmd_mute(client: Client, cmd: p.Command) -> None:
    _set_muted(client, cmd, True)


@command("unmute", "/unmute NICK - let a user speak again", operator=True)
def cmd_unmute(client: Client, cmd: p.Command) -> None:
    _set_muted(client, cmd, False)


# ---- the server --------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(config: ServerConfig) -> None:
    handler: logging.Handler = (
        logging.FileHandler(config.log_file, encoding="utf-8")
        if config.log_file
        else logging.StreamHandler(sys.stderr)
    )
    if config.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
    root = logging.getLogger("netlab")
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    root.propagate = False


class ServeError(Exception):
    """The server cannot start; the message says why, for the log."""


class Server:
    """Owns start-up, the serve loop, the operator console and graceful shutdown."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.room = Room(config, self.loop)
        self.room.on_change = self._status_changed
        self.handshaking: set[Client] = set()
        self.banned: set[str] = set()
        self.listeners: list[str] = []
        self.stopping = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None
        self._status_timer: asyncio.TimerHandle | None = None

    def admission(self, client: Client) -> str | None:
        """Why a new connection is refused at once, or None."""
        if client.peer_host in self.banned:
            return p.BANNED
        count = len(self.room.members) + len(self.handshaking)
        if count >= self.config.max_clients:
            return p.server_full(count, self.config.max_clients)
        return None

    async def start(self) -> None:
        config = self.config
        limit = aio.raise_file_limit(config.max_clients)
        if limit is not None and config.max_clients + 32 > limit:
            log.warning(
                "the open-file limit (%d) caps clients at about %d, below --max-clients %d",
                limit,
                limit - 32,
                config.max_clients,
            )
        if config.host in ("0.0.0.0", "::", ""):
            log.warning(
                "listening on all interfaces (%s): anyone on the network can join", config.host
            )
        try:
            self._server = await self.loop.create_server(
                lambda: Client(self), config.host or None, config.port, backlog=4096
            )
        except OSError as error:  # taken port, unknown host, no such address here
            why = error.strerror or str(error)
            raise ServeError(f"cannot listen on {config.host} port {config.port}: {why}") from None
        for sock in self._server.sockets:
            host, port = sock.getsockname()[:2]
            self.listeners.append(status.format_address(host, port))
        log.info("listening on %s (max %d clients)", ", ".join(self.listeners), config.max_clients)
        if config.banner:
            print(BANNER.format(address=self.listeners[0]), flush=True)
        self._write_status()

    async def serve(self) -> None:
        """Run until a signal, ``/shutdown`` on the console, or ``stop()``."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self.loop.add_signal_handler(sig, self.stop)
        console = self.config.console
        if console is None:
            console = sys.stdin is not None and sys.stdin.isatty()
        if console:
            self._start_console()
        try:
            await self.stopping.wait()
        finally:
            await self.shutdown()

    def stop(self) -> None:
        self.stopping.set()

    async def shutdown(self) -> None:
        """Tell everyone, close every connection, stop listening."""
        log.info("shutting down: %d clients online", len(self.room.members))
        if self._server is not None:
            self._server.close()
        self.room.flush()
        for client in list(self.room.members.values()) + list(self.handshaking):
            if client.registered:
                client.send(p.SHUTTING_DOWN)
            client.disconnect("server shutdown", notice_text=None)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        if self._status_timer is not None:
            self._status_timer.cancel()
        if self.config.status_file:
            status.remove_status()
        with contextlib.suppress(Exception):
            self.loop.remove_reader(sys.stdin.fileno())

    # -- the status file for `netlab sockets` --

    def _status_changed(self) -> None:
        if self.config.status_file and self._status_timer is None:
            # Each write is O(room): a crowd of thousands waits longer between rewrites.
            delay = max(0.2, len(self.room.members) / 2000)
            self._status_timer = self.loop.call_later(delay, self._write_status)

    def _write_status(self) -> None:
        self._status_timer = None
        if not self.config.status_file:
            return
        clients = [
            {"nick": c.nick, "local": c.local, "remote": c.address}
            for c in self.room.members.values()
        ]
        document = {"pid": os.getpid(), "listen": self.listeners, "clients": clients}
        try:
            status.write_status(document)
        except OSError as error:
            log.warning("cannot write the status file: %s", error)
            self.config.status_file = False

    # -- the operator console --

    def _start_console(self) -> None:
        print("Operator console: /who, /kick NICK [reason], /say TEXT, /shutdown", flush=True)
        self.loop.add_reader(sys.stdin.fileno(), self._console_line)

    def _console_line(self) -> None:
        line = sys.stdin.readline()
        if not line:  # end of input: the console goes, the server stays
            self.loop.remove_reader(sys.stdin.fileno())
            return
        cmd = p.parse_command(line.strip())
        if cmd is None:
            cmd = p.Command("say", line.strip()) if line.strip() else None
        if cmd is None:
            return
        handler = CONSOLE.get(cmd.name)
        if handler is None:
            print(f"Unknown console command /{cmd.name}. Try /who, /kick, /say, /shutdown.")
        else:
            handler(self, cmd)


def console_who(server: Server, cmd: p.Command) -> None:
    members = server.room.members.values()
    print(f"{len(members)} online: " + ", ".join(f"{c.nick} ({c.address})" for c in members))


def console_kick(server: Server, cmd: p.Command) -> None:
    nick, reason = cmd.split()
    target = server.room.find(nick) if nick else None
    if target is None:
        print(f"No such user: {nick}." if nick else "Usage: /kick NICK [reason]")
    else:
        kick(target, "operator", reason)
        print(f"{target.nick} kicked.")


def console_say(server: Server, cmd: p.Command) -> None:
    if cmd.args:
        server.room.bus.publish(p.chat_line("operator", cmd.args))


def console_shutdown(server: Server, cmd: p.Command) -> None:
    server.stop()


CONSOLE: dict[str, Callable[[Server, p.Command], None]] = {
    "who": console_who,
    "kick": console_kick,
    "say": console_say,
    "shutdown": console_shutdown,
}


async def serve(config: ServerConfig) -> None:
    server = Server(config)
    await server.start()
    await server.serve()


def run(config: ServerConfig) -> int:
    """``netlab serve``: returns the exit status."""
    try:
        setup_logging(config)
    except OSError as error:
        print(f"netlab serve: cannot write the log to {config.log_file}: {error}", file=sys.stderr)
        return 1
    try:
        aio.run(serve(config))
    except ServeError as error:
        log.error("%s", error)
        return 1
    except KeyboardInterrupt:
        pass
    return 0

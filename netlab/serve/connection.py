"""One chat connection: the asyncio ``Protocol`` between a socket and its ``ServerSession``.

The session decides what bytes mean; this edge does the I/O, arms the session's deadline, and
acts on its events. Errors are caught here, so a bad client never takes down another. It
sees of its server only a ``ServerState``, as uvicorn's connections do.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from netlab import net
from netlab import protocol as p
from netlab.protocol import server_session as ss
from netlab.serve.commands import dispatch
from netlab.serve.config import ServerConfig
from netlab.serve.presence import is_loopback
from netlab.serve.ratelimit import RateLimit
from netlab.serve.room import Room

log = logging.getLogger("netlab.serve")
T = TypeVar("T")


@dataclass
class ServerState:
    """What a connection may use of its server: the config, the loop, the room, and the
    admission rules."""

    config: ServerConfig
    loop: asyncio.AbstractEventLoop
    room: Room
    stop: Callable[[], None]
    max_clients: int = 0
    """``--max-clients``, or fewer when the open-file limit allows fewer (``Server.start``)."""
    handshaking: set[Connection] = field(default_factory=set)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    per_host: Counter[str] = field(default_factory=Counter)
    """Open connections by non-loopback address (loopback is exempt)."""

    def admit(self, conn: Connection) -> str | None:
        """Why a new connection is refused at once, or None: then it is counted until
        ``release``."""
        host = conn.host
        if self.room.presence.is_banned(host):
            return p.BANNED
        count = len(self.room.members) + len(self.handshaking)
        limit = self.max_clients or self.config.max_clients
        if count >= limit:
            return p.server_full(count, limit)
        if not is_loopback(host):
            if self.per_host[host] >= self.config.max_per_address:
                return p.too_many_from(host, self.config.max_per_address)
            self.per_host[host] += 1
            conn.counted = True
        return None

    def release(self, conn: Connection) -> None:
        if conn.counted:
            conn.counted = False
            self.per_host[conn.host] -= 1
            if self.per_host[conn.host] <= 0:
                del self.per_host[conn.host]


class Connection(asyncio.Protocol):
    """One chat connection, from the ``NICK`` prompt to its close."""

    console = False
    """The operator console is the other kind of actor of the command table."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.room = state.room
        config = self.config = state.config
        self.id = next(state.ids)
        self.transport: asyncio.Transport | None = None
        self.address = self.local = "-"
        self.host = ""
        self.nick = ""
        self.operator = self.muted = self.registered = self.closing = self.counted = False
        self.connected_at = time.monotonic()
        self.session = ss.ServerSession(
            state.loop.time(), config.handshake_timeout, config.handout_grace, config.max_line_bytes
        )
        self.limit = RateLimit(
            config.rate_limit, config.rate_burst or 1, config.flood_disconnect, self.connected_at
        )
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = 0.0
        self._held: list[ss.ServerEvent] | None = None
        """The events that came while an answer was awaited (``after``), or None."""
        self._unsaid: list[str] = []
        """This read's chat lines not yet said: said to the room as one event (``say_pending``)."""

    @property
    def framing(self) -> p.Framing:
        return self.session.framing or "line"

    # -- asyncio callbacks --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  (uvloop's is not a subclass)
        peer = transport.get_extra_info("peername") or ("?", 0)
        sock = transport.get_extra_info("sockname") or ("?", 0)
        self.host = peer[0]
        self.address = net.format_address(peer[0], peer[1])
        self.local = net.format_address(sock[0], sock[1])
        refusal = self.state.admit(self)
        if refusal:
            log.info("refused %s: %s", self.address, refusal)
            self.refuse(refusal)
            return
        self.state.handshaking.add(self)
        transport.write(self.session.prompt())
        self._arm()

    def data_received(self, data: bytes) -> None:
        if not self.closing:
            self._guarded(lambda: self.session.receive_data(data, self.state.loop.time()))

    def eof_received(self) -> bool:
        # The peer closed its side: whatever it sent before has been read; leave now.
        self._guarded(lambda: self.session.receive_data(b"", self.state.loop.time()))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "connection closed"
        self.disconnect(reason, notice_text=p.left(self.nick))

    def _guarded(self, step: Callable[[], list[ss.ServerEvent]]) -> None:
        try:
            self._handle(step())
            self._arm()
        except Exception:
            # The edge of one connection: whatever went wrong stays with this client.
            log.exception("error while serving %s (%s)", self.nick or "?", self.address)
            self.disconnect("internal error", notice_text=p.left(self.nick))

    # -- the session's clock --

    def _arm(self) -> None:
        self._cancel_timer()
        when = self.session.deadline()
        if when is not None and not self.closing:
            self._armed_for = when
            self._timer = self.state.loop.call_at(when, self._tick)

    def _tick(self) -> None:
        self._timer = None
        # The timer fired, so its moment has come even if the clock reads a hair before it.
        now = max(self.state.loop.time(), self._armed_for)
        self._guarded(lambda: self.session.tick(now))

    def _handle(self, events: list[ss.ServerEvent]) -> None:
        try:
            for at, event in enumerate(events):
                if self.closing:
                    return
                if self._held is not None:  # an answer is awaited: what follows waits with it
                    self._held.extend(events[at:])
                    return
                if type(event) is not ss.Message:
                    self.say_pending()
                ON_EVENT[type(event)](self, event)
        finally:
            self.say_pending()

    def say_pending(self) -> None:
        """Say this read's chat lines so far, in one event: the room's, the bus's and the
        outbox's work is then once a read, not once a line (a burst's cost at the server,
        docs/performance.md). Anything else the read does says them first, so that the order
        holds (a line before ``/nick`` is signed with the old nickname)."""
        if self._unsaid:
            text, self._unsaid = "\n".join(self._unsaid), []
            if not self.closing:  # (left meanwhile: its leaving was the last word)
                self.room.say(self, text)

    def say_later(self, line: str) -> None:
        """``line`` to the room with this read's other chat lines (``say_pending``)."""
        self._unsaid.append(line)

    def after(self, answer: asyncio.Future[T], step: Callable[[T], None]) -> None:
        """``step(answer's result)``: at once when the answer is known, else once it comes
        (a cluster's nickname claim, from Redis), with this client's later events held back
        until then, so they keep their order (a line after ``/nick`` is said by the new nick)."""
        if answer.done():
            step(answer.result())
            return
        self._held = []

        def resume() -> list[ss.ServerEvent]:
            held, self._held = self._held or [], None
            if not answer.cancelled():  # (cancelled: the server is shutting down)
                step(answer.result())
            return held

        answer.add_done_callback(lambda _: self._guarded(resume))

    # -- what the command table and the room ask of a connection --

    def send(self, line: str) -> None:
        """One line to this client alone, in order with what the room sends it."""
        self.room.outbox.deliver_to(self, self.session.reply(line))

    def leave(self, reason: str) -> None:
        """The client goes of its own accord (or its flooding's): the others hear it left."""
        self.disconnect(reason, notice_text=p.left(self.nick))

    def kicked(self, by: str, reason: str) -> None:
        self.send(p.you_were_kicked(by, reason))
        log.info("%s kicked %s%s", by, self.nick, f" ({reason})" if reason else "")
        self.disconnect(f"kicked by {by}", notice_text=p.kicked_notice(self.nick, by, reason))

    def overflowed(self) -> None:
        self.disconnect("send buffer overflow", notice_text=p.left(self.nick), abort=True)

    # -- closing --

    def refuse(self, line: str) -> None:
        """Say why, and close: used before the client is in the room."""
        self.closing = True
        self._cancel_timer()
        self.state.handshaking.discard(self)
        self.state.release(self)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.session.refuse(line))
            self.transport.close()
        self.session.close()

    def disconnect(self, reason: str, notice_text: str | None = None, abort: bool = False) -> None:
        """Leave the room (telling the others ``notice_text`` once) and close."""
        if self.closing:
            return
        self.closing = True
        self._cancel_timer()
        self.session.close()
        self.state.handshaking.discard(self)
        self.state.release(self)
        if self.transport is not None and not abort:
            self.room.outbox.flush_now(self, self.registered)
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
                net.reset(self.transport)  # the kernel then frees what the peer never read
            else:
                self.transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# ---- what each of the session's events means to the server -------------------------------


def _nick_offered(conn: Connection, event: ss.NickOffered) -> None:
    problem = p.nick_problem(event.nick)
    if problem:
        _nick_answered(conn, event.nick, problem)
    else:
        answer = conn.room.claim(conn, event.nick)
        conn.after(answer, lambda problem: _nick_answered(conn, event.nick, problem))


def _nick_answered(conn: Connection, nick: str, problem: str | None) -> None:
    if conn.closing:
        return  # gone while Redis answered (the room gave back a nickname it won)
    conn.state.handshaking.discard(conn)
    if problem:
        log.info("rejected nickname %r from %s: %s", nick, conn.address, problem)
        conn.refuse(problem)
        return
    conn.nick = nick
    conn.registered = True
    conn.connected_at = time.monotonic()
    conn.room.join(conn)
    log.info("%s joined from %s (%s client)", nick, conn.address, conn.framing)


def _message(conn: Connection, event: ss.Message) -> None:
    text = event.text
    if conn.framing == "handout":
        leaving = p.handout_leaving(conn.nick)
        if text.endswith(leaving):  # alone, or merged with the message before it
            if text != leaving:
                _message(conn, ss.Message(text[: -len(leaving)]))
            conn.say_pending()
            conn.leave("left with the handout's /exit")
            return
        text = p.own_words(text, conn.nick)
        if not text:
            return
    verdict = conn.limit.check(time.monotonic())
    if verdict != "pass":
        conn.say_pending()
        if verdict == "disconnect":
            conn.send(p.FLOODED)
            conn.leave("flooding")
        elif verdict == "warn":
            conn.send(p.slow_down(conn.config.rate_limit))
            log.warning("%s is flooding: messages dropped", conn.nick)
        return
    command = p.parse_command(text)
    if command is not None:
        conn.say_pending()
        dispatch(conn, command)
    elif conn.muted:
        conn.say_pending()
        conn.send(p.MUTED)
    else:
        conn.say_later(p.chat_line(conn.nick, text))


def _too_long(conn: Connection, event: ss.TooLong) -> None:
    conn.send(p.line_too_long(event.limit))
    log.warning("%s sent a line over %d bytes", conn.nick, event.limit)


def _timed_out(conn: Connection, event: ss.HandshakeTimedOut) -> None:
    log.info("handshake timeout from %s", conn.address)
    conn.refuse(p.HANDSHAKE_TIMEOUT)


def _telnet_answer(conn: Connection, event: ss.TelnetAnswer) -> None:
    conn.room.outbox.deliver_to(conn, event.data)  # in order with what it was sent before


def _peer_closed(conn: Connection, event: ss.PeerClosed) -> None:
    conn.disconnect("closed by client", notice_text=p.left(conn.nick))


ON_EVENT: dict[type, Callable[[Connection, Any], None]] = {
    ss.NickOffered: _nick_offered,
    ss.Message: _message,
    ss.TooLong: _too_long,
    ss.HandshakeTimedOut: _timed_out,
    ss.PeerClosed: _peer_closed,
    ss.TelnetAnswer: _telnet_answer,
}

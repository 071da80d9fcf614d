"""``netlab chat``: the terminal chat client.

On a terminal, prompt_toolkit keeps the line being typed intact while messages print above it.
When standard input or output is not a terminal, the client reads lines from standard input,
sends them and prints what arrives as plain text, so scripts can use it.

It speaks through the sans-IO ``ClientSession`` in one of its dialects: ``netlab`` (a line
client: ``nick\\n``, then lines both ways), ``handout`` (the lab handout's client: a bare
nickname, messages formatted and stamped by the client, one send each, and an unframed stream
back) or ``lines`` (a plain line relay with no handshake, such as ``ncat --chat``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from netlab import net, render
from netlab import protocol as p
from netlab.render import Screen

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
PIPE_GRACE = 0.75
"""Piped mode keeps listening this long after the last input line, for the replies to it."""
MAX_LINE_BYTES = 1 << 20

LEAVE_COMMANDS = ("/exit", "/quit")
"""Typed in either mode, these end the session the protocol's way (``Connection.leave``)."""
CLIENT_HELP = (
    "Client commands: /help - this list (and the server's) | /exit or /quit - leave"
    " (also Ctrl-D, Ctrl-C) | Up/Down - lines you typed before"
)


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
            if isinstance(event, p.Received | p.Kicked):
                shown.append(event.text)
            elif isinstance(event, p.Skipped):
                shown.append(f"(a line over {event.limit} bytes was skipped)")
            elif isinstance(event, p.Closed):
                self._eof = True
        return [p.clean_text(t) for t in shown if t]

    async def read(self, timeout: float | None = None) -> bytes:
        """One receive; raises ServerGone on an error (end of stream is ``b""``)."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
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
                await show(await asyncio.wait_for(self.receive(), remaining))
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
            reader, writer = await asyncio.wait_for(
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
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, net._LINGER_RESET)
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
        welcome = await asyncio.wait_for(_handshake(conn), HANDSHAKE_TIMEOUT)
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


# ---- what the user sees ----------------------------------------------------------------


async def receive_loop(conn: Connection, screen: Screen) -> int:
    """Show what arrives until the server goes away; then say so and return 1."""
    try:
        while True:
            await screen.show(await conn.receive())
    except ServerGone as gone:
        await screen.note(str(gone), error=True)
        return 1


def echo(conn: Connection, text: str) -> str | None:
    """The user's own message as the server would show it to the others (it sends no copy
    back), or None for commands whose answer comes from the server."""
    if conn.protocol == "handout":
        return p.handout_message(conn.nick, text)
    # Parsed as the server parses it, so that ``/ME waves`` is echoed as the action it becomes.
    command = p.parse_command(text)
    if command is None:
        return p.chat_line(conn.nick, text)
    if command.name == "me" and command.args:
        return p.action_line(conn.nick, command.args)
    return None


def _command_word(text: str) -> str:
    """The first word of a typed line, lower-cased (``/QUIT now`` gives ``/quit``), or ""."""
    words = text.split(maxsplit=1)
    return words[0].lower() if words else ""


# ---- interactive -------------------------------------------------------------------------


async def interactive(config: ChatConfig) -> int:
    from prompt_toolkit import PromptSession

    screen = Screen(styled=True)
    nick = config.nick
    ask_nick: PromptSession[str] = PromptSession()
    while True:
        if nick is None:
            try:
                nick = p.normalize_nick(await ask_nick.prompt_async("Your nickname: "))
            except (EOFError, KeyboardInterrupt):
                return 0
        if problem := p.nick_problem(nick):
            await screen.note(f"{problem} Try another.", error=True)
            nick = None
            continue
        try:
            conn, welcome = await join(config, nick)
        except Rejected as rejected:
            await screen.note(f"{rejected} Try another.", error=True)
            nick = None
            continue
        break
    screen.me = nick
    await screen.show(welcome)
    return await chat_session(conn, screen)


async def chat_session(conn: Connection, screen: Screen) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    def prompt() -> render.Fragments:
        return [(render.nick_style(screen.me, screen.me), screen.me), ("", "> ")]

    session: PromptSession[str] = PromptSession(prompt, erase_when_done=True)

    async def submit(text: str) -> bool:
        """Act on one line the user typed; False when it means leaving."""
        conn.nick = screen.me  # /nick may have changed it
        command = _command_word(text)
        if command in LEAVE_COMMANDS:
            return False
        if command == "/help":
            await screen.print([render.notice(CLIENT_HELP)])
            if conn.protocol == "handout":
                await screen.note("The handout's server has no commands.")
                return True
        if text:
            if (own := echo(conn, text)) is not None:
                await screen.show([own])
            await conn.say(text)
        return True

    async def typing() -> None:
        while True:
            try:
                typed = await session.prompt_async()
            except (EOFError, KeyboardInterrupt):
                return
            for text in typed.splitlines():  # a paste can hold several lines
                if not await submit(text.strip()):
                    return

    with patch_stdout():
        return await converse(conn, screen, typing())


async def converse(conn: Connection, screen: Screen, user: Coroutine[Any, Any, None]) -> int:
    """Show what arrives while ``user`` sends; 1 when the server goes first, else leave and 0."""
    receiver = asyncio.create_task(receive_loop(conn, screen))
    sender = asyncio.create_task(user)
    done, _ = await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
    if receiver in done:
        await _cancel(sender)
        conn.close()
        return receiver.result()
    await _cancel(receiver)
    try:
        sender.result()
    except ServerGone as gone:
        await screen.note(str(gone), error=True)
        conn.close()
        return 1
    await conn.leave(screen.show)
    return 0


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# ---- piped -------------------------------------------------------------------------------


def _read_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    # A thread, because pipes, files and terminals are not all pollable by the event loop; and
    # os.read, because a daemon thread blocked inside sys.stdin's buffer holds a lock that
    # aborts the interpreter at exit.
    buffer = b""
    try:
        while chunk := os.read(0, 65536):
            *complete, buffer = (buffer + chunk).split(b"\n")
            for raw in complete:
                loop.call_soon_threadsafe(lines.put_nowait, p.decode(raw).rstrip("\r"))
        if buffer:
            loop.call_soon_threadsafe(lines.put_nowait, p.decode(buffer).rstrip("\r"))
    except (OSError, RuntimeError):
        pass  # stdin closed under us, or the loop is gone: either way the input has ended
    finally:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(lines.put_nowait, None)


async def piped(config: ChatConfig) -> int:
    screen = Screen(styled=False)
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_read_stdin, args=(loop, lines), daemon=True).start()
    nick = config.nick
    if nick is None:
        # As the handout's client does: the first line of input is the nickname.
        nick = await lines.get()
        if nick is None:
            await screen.note("No nickname: give --nick or put it on the first line.", True)
            return 1
    nick = p.normalize_nick(nick)
    if problem := p.nick_problem(nick):
        await screen.note(problem, error=True)
        return 1
    conn, welcome = await join(config, nick)
    screen.me = nick
    await screen.show(welcome)

    async def sending() -> None:
        while (text := await lines.get()) is not None:
            text = text.strip()
            if _command_word(text) in LEAVE_COMMANDS:
                return
            if text:
                await conn.say(text)
        await asyncio.sleep(PIPE_GRACE)

    return await converse(conn, screen, sending())


# ---- entry -------------------------------------------------------------------------------


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time, so that log lines go through
    prompt_toolkit's patched stderr and print above the prompt."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def run(config: ChatConfig) -> int:
    """Chat until the user leaves (0) or the connection fails (1); Ctrl-C outside the prompt
    gives 130. Never a traceback, unless ``debug`` asks for the detail."""
    if config.debug:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s debug: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    log.debug(
        "netlab chat to %s, %s protocol, %s mode",
        net.format_address(config.host, config.port),
        p.Dialect(config.protocol).value,
        "terminal" if terminal else "piped",
    )
    try:
        return asyncio.run(interactive(config) if terminal else piped(config))
    except ChatError as exc:
        log.debug("stopped", exc_info=True)
        print(render.plain(render.note(str(exc), error=True)), file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:
        log.debug("unexpected error", exc_info=True)
        print(f"!! netlab chat failed: {exc!r} (--debug shows the detail)", file=sys.stderr)
        return 1

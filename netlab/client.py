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
import sys
import threading
from collections.abc import Coroutine
from typing import Any

from netlab import net, render
from netlab import protocol as p
from netlab.chatclient.connection import (
    ChatConfig,
    ChatError,
    Connection,
    Rejected,
    ServerGone,
    join,
)
from netlab.chatclient.outbox import Outbox
from netlab.render import Screen

log = logging.getLogger("netlab.client")

PIPE_GRACE = 0.75
"""Piped mode keeps listening this long after the last input line, for the replies to it."""

LEAVE_COMMANDS = ("/exit", "/quit")
"""Typed in either mode, these end the session the protocol's way (``Connection.leave``)."""
CLIENT_HELP = (
    "Client commands: /help - this list (and the server's) | /exit or /quit - leave"
    " (also Ctrl-D, Ctrl-C) | Up/Down - lines you typed before"
)


# ---- what the user sees ----------------------------------------------------------------


async def receive_loop(conn: Connection, screen: Screen, outbox: Outbox) -> int:
    """Show what arrives until the server goes away; then say why and return 1."""
    try:
        while True:
            shown = [text for text in await conn.receive() if not await outbox.refused(text)]
            await screen.show(shown)
    except ServerGone as gone:
        # Kicked: the server's own words (who, and why), not a lost connection.
        await screen.note(conn.kicked.text if conn.kicked else str(gone), error=True)
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

    outbox = Outbox(conn, screen, paced=conn.protocol is not p.Dialect.lines)

    def prompt() -> render.Fragments:
        return render.prompt(screen.me, outbox.queued)

    session: PromptSession[str] = PromptSession(prompt, erase_when_done=True)
    outbox.changed = session.app.invalidate

    async def submit(text: str) -> bool:
        """Act on one line the user typed; False when it means leaving."""
        conn.nick = screen.me  # /nick may have changed it
        command = _command_word(text)
        if command in LEAVE_COMMANDS:
            return False
        if command == "/help":
            await screen.print([render.notice(CLIENT_HELP)])
            if conn.protocol is not p.Dialect.netlab:
                which = "The handout's server" if conn.protocol is p.Dialect.handout else "A relay"
                await screen.note(f"{which} has no commands.")
                return True
        if text:
            outbox.put(text, echo(conn, text))
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
        return await converse(conn, screen, typing(), outbox)


async def converse(
    conn: Connection, screen: Screen, user: Coroutine[Any, Any, None], outbox: Outbox
) -> int:
    """Show what arrives and send what the user gives, until the server goes (1) or the user
    leaves (0)."""
    receiver = asyncio.create_task(receive_loop(conn, screen, outbox))
    sender = asyncio.create_task(user)
    pump = asyncio.create_task(outbox.run())
    done, _ = await asyncio.wait({receiver, sender, pump}, return_when=asyncio.FIRST_COMPLETED)
    if receiver in done:
        await _cancel(sender)
        await _cancel(pump)
        conn.close()
        return receiver.result()
    await _cancel(receiver)
    await _cancel(sender)
    await _cancel(pump)
    try:
        sender.result() if sender in done else pump.result()
    except ServerGone as gone:
        await screen.note(str(gone), error=True)
        conn.close()
        return 1
    if outbox.queued:
        await screen.note(f"{outbox.queued} queued lines were not sent.", error=True)
    await conn.leave(screen.show)
    if conn.protocol is not p.Dialect.netlab:
        # netlab serve says Bye!; the handout's server and a line relay say nothing.
        await screen.note("You left the chat.")
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

    outbox = Outbox(conn, screen, paced=conn.protocol is not p.Dialect.lines)

    async def sending() -> None:
        while (text := await lines.get()) is not None:
            text = text.strip()
            if _command_word(text) in LEAVE_COMMANDS:
                break
            if text:
                outbox.put(text)
        await outbox.drained()  # every line sent (paced) before leaving
        await asyncio.sleep(PIPE_GRACE)

    return await converse(conn, screen, sending(), outbox)


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

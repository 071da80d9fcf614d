"""How ``netlab chat`` shows things: server messages as styled fragments for prompt_toolkit.

The same fragments serve the terminal (styled) and pipes (their text joined, no styles), so
what a script reads is laid out exactly like what a person sees.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
import zlib

from netlab import protocol as p

Fragments = list[tuple[str, str]]
"""prompt_toolkit's formatted text: (style, text) pairs."""

# Colours that read on both dark and light backgrounds; red stays for errors.
NICK_PALETTE = (
    "ansigreen",
    "ansiyellow",
    "ansiblue",
    "ansimagenta",
    "ansicyan",
    "ansibrightgreen",
    "ansibrightblue",
    "ansibrightmagenta",
    "ansibrightcyan",
    "#d78700",
    "#5f87d7",
    "#af5fd7",
)

TIME_STYLE = "#808080"
NOTICE_STYLE = "italic #8a8a8a"
PRIVATE_STYLE = "bold ansimagenta"
NOTE_STYLE = "bold ansicyan"
ERROR_STYLE = "bold ansired"


def nick_style(nick: str, me: str = "") -> str:
    """The same colour for a nickname in every session: a stable hash (not ``hash()``, which
    changes per process) of its case-folded form picks from the palette."""
    key = p.nick_key(nick)
    colour = NICK_PALETTE[zlib.crc32(key.encode()) % len(NICK_PALETTE)]
    return f"bold {colour}" if key == p.nick_key(me) else colour


def short_time(server_stamp: str | None = None, received: float | None = None) -> str:
    """``HH:MM:SS`` from the server's ``YYYY-MM-DD HH:MM:SS``, or the time of receipt."""
    if server_stamp:
        return server_stamp[-8:]
    return time.strftime("%H:%M:%S", time.localtime(received))


def _clock(server_stamp: str | None, received: float | None) -> Fragments:
    return [(TIME_STYLE, f"[{short_time(server_stamp, received)}] ")]


def message(msg: p.ServerMessage, me: str = "", received: float | None = None) -> Fragments:
    """One message from the server (its text already cleaned of control characters)."""
    if isinstance(msg, p.Chat):
        return [
            *_clock(msg.stamp, received),
            (nick_style(msg.nick, me), msg.nick),
            ("", f": {msg.text}"),
        ]
    if isinstance(msg, p.Action):
        style = nick_style(msg.nick, me)
        return [*_clock(msg.stamp, received), (style, f"* {msg.nick}"), ("italic", f" {msg.text}")]
    if isinstance(msg, p.Private):
        tag = f"[private to {msg.to}]" if msg.to else "[private]"
        return [
            *_clock(msg.stamp, received),
            (PRIVATE_STYLE, tag + " "),
            (nick_style(msg.nick, me), msg.nick),
            ("ansimagenta", f": {msg.text}"),
        ]
    return notice(msg.text, received)


_COMMAND_LIST = re.compile(r"((?:\w+ )?[Cc]ommands): (.+ \| .+)")


def notice(text: str, received: float | None = None) -> Fragments:
    """A system line (joins, leaves, kicks, replies to commands), set apart from chat."""
    if match := _COMMAND_LIST.fullmatch(text):
        # The server's /help is one long line; a list reads better.
        title, items = match.group(1), match.group(2).split(" | ")
        return [
            *_clock(None, received),
            (NOTICE_STYLE, f"-- {'Server commands' if title == 'Commands' else title}:"),
            *[(NOTICE_STYLE, f"\n     {item}") for item in items],
        ]
    return [*_clock(None, received), (NOTICE_STYLE, f"-- {text}")]


def note(text: str, error: bool = False) -> Fragments:
    """Something the client itself says (not the server): marked so it is never taken for
    a message from the room."""
    return [(ERROR_STYLE if error else NOTE_STYLE, "!! " if error else "** "), ("", text)]


def refused(msg: p.ServerMessage, reason: str, me: str = "") -> Fragments:
    """The user's own line that the server refused, marked so: never taken for one sent."""
    return [*message(msg, me), (ERROR_STYLE, "  !! not sent: "), (ERROR_STYLE, reason)]


def prompt(me: str, queued: int = 0) -> Fragments:
    """The input prompt: ``alice>``, and while a paste is paced out, ``alice [12 queued]>``."""
    waiting = [(NOTE_STYLE, f" [{queued} queued]")] if queued else []
    return [(nick_style(me, me), me), *waiting, ("", "> ")]


def plain(fragments: Fragments) -> str:
    return "".join(text for _, text in fragments)


# ---- where it goes -----------------------------------------------------------------------


class Screen:
    """Where output goes: a terminal with a prompt, or plain text for pipes."""

    def __init__(self, styled: bool) -> None:
        self.styled = styled
        self.me = ""

    async def show(self, messages: list[str], received: float | None = None) -> None:
        parts: list[Fragments] = []
        for text in messages:
            if (new := p.parse_now_known_as(text)) is not None:
                self.me = new
            parts.append(message(p.parse_server_line(text), self.me, received))
        await self.print(parts)

    async def note(self, text: str, error: bool = False) -> None:
        await self.print([note(text, error)], stderr=not self.styled)

    async def print(self, parts: list[Fragments], stderr: bool = False) -> None:
        if not parts:
            return
        if not self.styled:
            out = sys.stderr if stderr else sys.stdout
            with contextlib.suppress(BrokenPipeError):
                out.write("".join(plain(f) + "\n" for f in parts))
                out.flush()
            return
        from prompt_toolkit.application import get_app_or_none, run_in_terminal

        fragments: Fragments = [f for part in parts for f in [*part, ("", "\n")]]
        app = get_app_or_none()
        if app is not None and app.is_running:
            # Awaited, so that a last message is on screen before the prompt is torn down.
            await run_in_terminal(lambda: _print_styled(fragments))
        else:
            _print_styled(fragments)


def _print_styled(fragments: Fragments) -> None:
    from prompt_toolkit.application.current import get_app_session
    from prompt_toolkit.formatted_text import FormattedText
    from prompt_toolkit.renderer import print_formatted_text
    from prompt_toolkit.styles import Style

    output = get_app_session().output
    print_formatted_text(
        output, FormattedText(fragments), Style([]), color_depth=output.get_default_color_depth()
    )
    output.flush()

"""Every text a netlab server sends, and the parser that reads them back.

The one home of the protocol's words (docs/protocol.md is their contract): the server writes
them through these functions, and clients, bots, the bench and ``netlab check`` recognise them
through ``parse_server_line`` and the predicates here, never by a literal of their own.
Timestamps are passed in (``when``); only ``stamp()`` without one reads the clock.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

ENCODING = "utf-8"
PROMPT = b"NICK"
"""The handshake prompt: exactly these 4 bytes, no newline (the handout's client compares the
whole receive to it)."""

# -- texts of the protocol (a contract: docs/protocol.md, tests and other peers rely on them) --

CONNECTED = "Connected to server!"
RESERVED_REASON = "Reserved nickname. Choose a different one."
SHUTTING_DOWN = "Server is shutting down."
BANNED = "You are banned from this server."
MUTED = "You are muted: your message was not sent."
HANDSHAKE_TIMEOUT = "No nickname received in time. Bye."
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
COALESCE_SHOWN = 3
"""How many names a coalesced join or leave notice spells out before `and N more`."""


def joined(nick: str) -> str:
    return f"{nick} joined the chat!"


def left(nick: str) -> str:
    return f"{nick} left the chat."


def handout_leaving(nick: str) -> str:
    """What the handout's client sends on ``/exit``: from a handout client this is its leaving."""
    return f"{nick} has left the chat."


def _names(nicks: Sequence[str], shown: int = COALESCE_SHOWN) -> str:
    """``a, b and c``; past ``shown`` names, ``a, b, c and 9 more`` (never ``and 1 more``)."""
    if len(nicks) > shown + 1:
        return ", ".join(nicks[:shown]) + f" and {len(nicks) - shown} more"
    if len(nicks) == 1:
        return nicks[0]
    return ", ".join(nicks[:-1]) + " and " + nicks[-1]


def joined_many(nicks: Sequence[str]) -> str:
    """One notice for a burst of arrivals: ``12 users joined: a, b, c and 9 more``."""
    if len(nicks) == 1:
        return joined(nicks[0])
    return f"{len(nicks)} users joined: {_names(nicks)}"


def left_many(nicks: Sequence[str]) -> str:
    """One notice for a burst of departures: ``12 users left: a, b, c and 9 more``."""
    if len(nicks) == 1:
        return left(nicks[0])
    return f"{len(nicks)} users left: {_names(nicks)}"


def server_full(current: int, maximum: int) -> str:
    return f"Server is full ({current}/{maximum} clients). Try again later."


def too_many_from(host: str, limit: int) -> str:
    return f"Too many connections from {host} (at most {limit} at once). Try again later."


def nick_looks_like(nick: str, other: str) -> str:
    """Refused: ``nick`` is confusable with ``other``, who is online (Unicode TS #39)."""
    return f"Nickname '{nick}' looks like '{other}', who is online. Choose a different one."


def nick_taken(nick: str) -> str:
    return f"Nickname '{nick}' is already taken. Choose a different one."


def kicked_notice(nick: str, by: str, reason: str = "") -> str:
    """Told to the others when an operator removes ``nick``."""
    return f"{nick} was kicked by {by}" + (f": {reason}" if reason else ".")


KICKED_BY = "You were kicked by "
"""How ``you_were_kicked`` begins: what follows is who, then the reason."""


def you_were_kicked(by: str, reason: str = "") -> str:
    """Told to the user an operator removes, before the connection closes."""
    return f"{KICKED_BY}{by}" + (f": {reason}" if reason else ".")


def renamed(old: str, new: str) -> str:
    return f"{old} is now known as {new}."


@functools.lru_cache(maxsize=4)
def _stamp_of(second: int) -> str:
    return time.strftime(STAMP_FORMAT, time.localtime(second))


def stamp(when: float | None = None) -> str:
    """The server's timestamp, local time: ``2026-11-25 22:43:02``."""
    # strftime was a tenth of the server's time under fan-out load (py-spy); the text only
    # changes once a second, so recent seconds are cached.
    return _stamp_of(math.floor(time.time() if when is None else when))


def chat_line(nick: str, text: str, when: float | None = None) -> str:
    """A chat message as the others receive it: ``[YYYY-MM-DD HH:MM:SS] NICK: TEXT``."""
    return f"[{stamp(when)}] {nick}: {text}"


def action_line(nick: str, text: str, when: float | None = None) -> str:
    """``/me waves`` as the others receive it: ``[...] * NICK waves``."""
    return f"[{stamp(when)}] * {nick} {text}"


def private_line(nick: str, text: str, when: float | None = None, to: str | None = None) -> str:
    """A ``/msg``: ``[...] [private] FROM: TEXT`` to the receiver, and
    ``[...] [private to TO] FROM: TEXT`` back to the sender as confirmation."""
    tag = f"[private to {to}]" if to else "[private]"
    return f"[{stamp(when)}] {tag} {nick}: {text}"


def handout_message(nick: str, text: str, when: float | None = None) -> str:
    """A message formatted as the handout's client formats it before sending."""
    return chat_line(nick, text, when)


# -- what a client reads from the server --


@dataclass(frozen=True, slots=True)
class Chat:
    """``[stamp] nick: text``"""

    stamp: str
    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class Action:
    """``[stamp] * nick text`` (``/me``)"""

    stamp: str
    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class Private:
    """``[stamp] [private] nick: text``, or with ``to`` set, the sender's own copy."""

    stamp: str
    nick: str
    text: str
    to: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """Any other line: joins, leaves, kicks, replies to commands, errors."""

    text: str


ServerMessage = Chat | Action | Private | Notice

_STAMP = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] "
_CHAT = re.compile(_STAMP + r"([^\s:\[\]*][^\s:]*): (.*)", re.DOTALL)
_ACTION = re.compile(_STAMP + r"\* (\S+) (.*)", re.DOTALL)
_PRIVATE = re.compile(_STAMP + r"\[private(?: to (\S+))?\] (\S+): (.*)", re.DOTALL)


def parse_server_line(line: str) -> ServerMessage:
    """What a line from a netlab server (or a handout client's relayed message) says."""
    if line.startswith("["):
        if m := _CHAT.fullmatch(line):
            return Chat(*m.groups())
        if m := _PRIVATE.fullmatch(line):
            when, to, nick, text = m.groups()
            return Private(when, nick, text, to)
        if m := _ACTION.fullmatch(line):
            return Action(*m.groups())
    return Notice(line)


_KICKED = re.compile(re.escape(KICKED_BY) + r"([^\s:]+?)(?:: (.*)|\.)", re.DOTALL)


def parse_kicked(line: str) -> tuple[str, str] | None:
    """``(by, reason)`` when ``line`` is ``you_were_kicked``'s text, else None."""
    m = _KICKED.fullmatch(line)
    return (m.group(1), m.group(2) or "") if m else None


def is_welcome(line: str) -> bool:
    """The line that says a nickname was accepted (netlab's and the handout's server)."""
    return line.startswith(CONNECTED)


# -- replies to one client (the server writes these through the functions below) ----------

FLOODED = "Disconnected for flooding."
BYE = "Bye!"
NO_OPERATORS = "This server has no operators (no admin password set)."
NOW_OPERATOR = "You are now an operator."
WRONG_PASSWORD = "Wrong password."
WELCOME_NAMES = 10
"""How many names the welcome line spells out: listing everyone to every newcomer is O(N^2)."""
_SLOW_DOWN = "Slow down: over "
_THROTTLED = "Too many wrong passwords"
_USAGE = "Usage: "
_NO_SUCH_USER = "No such user: "
_PERMISSION_DENIED = "Permission denied: "
_KNOWN_AS = re.compile(r"You are now known as (\S+)\.")
_ONLINE = re.compile(r"(\d+) online: (.*)", re.DOTALL)


def plural(count: int, word: str) -> str:
    """``1 client``, ``2 clients``."""
    return f"{count} {word}" + ("" if count == 1 else "s")


def line_too_long(limit: int) -> str:
    return f"Line too long (over {limit} bytes): not sent."


def slow_down(rate: float) -> str:
    return f"{_SLOW_DOWN}{rate:g} messages a second, messages are dropped."


_SLOW_DOWN_RE = re.compile(r"Slow down: over ([\d.e+]+) messages a second, messages are dropped\.")
_TOO_LONG_RE = re.compile(r"Line too long \(over (\d+) bytes\): not sent\.")
_LIMITS_RE = re.compile(
    r"Limits: (?:(?P<rate>[\d.e+]+) messages a second, bursts of (?P<burst>\d+)|no rate limit);"
    r" lines up to (?P<line>\d+) bytes\."
)


def limits(rate: float, burst: int, max_line_bytes: int) -> str:
    """``/limits``: what this server allows one connection."""
    pace = f"{rate:g} messages a second, bursts of {burst}" if rate > 0 else "no rate limit"
    return f"Limits: {pace}; lines up to {max_line_bytes} bytes."


def parse_limits(line: str) -> tuple[float, int, int] | None:
    """``(rate, burst, max_line_bytes)`` from ``/limits``' answer (rate 0: none), else None."""
    m = _LIMITS_RE.fullmatch(line)
    if m is None:
        return None
    rate = float(m["rate"]) if m["rate"] else 0.0
    return rate, int(m["burst"] or 0), int(m["line"])


def parse_slow_down(line: str) -> float | None:
    """The server's rate when ``line`` is its ``Slow down`` warning, else None."""
    m = _SLOW_DOWN_RE.fullmatch(line)
    return float(m.group(1)) if m else None


def parse_line_too_long(line: str) -> int | None:
    """The byte limit when ``line`` refuses an overlong message, else None."""
    m = _TOO_LONG_RE.fullmatch(line)
    return int(m.group(1)) if m else None


def unknown_command(name: str) -> str:
    return f"Unknown command /{name}. Type /help for the list."


def permission_denied(name: str) -> str:
    return f"{_PERMISSION_DENIED}/{name} is for operators (see /login)."


def usage(text: str) -> str:
    return f"{_USAGE}{text}"


def no_such_user(nick: str) -> str:
    return f"{_NO_SUCH_USER}{nick}."


def now_known_as(nick: str) -> str:
    return f"You are now known as {nick}."


def you_were_muted(by: str, muted: bool = True) -> str:
    return f"You have been {'muted' if muted else 'unmuted'} by {by}."


def is_muted_now(nick: str, muted: bool = True) -> str:
    """The operator's confirmation of ``/mute`` or ``/unmute``."""
    return f"{nick} is {'muted' if muted else 'unmuted'}."


def banned_by_nick(nick: str) -> str:
    """``/ban`` of a loopback client: the whole lab shares that address, so the nickname is
    banned (and its look-alikes)."""
    return f"{nick} is banned by nickname (and look-alikes): loopback is everyone's address."


def banned_address(nick: str, host: str) -> str:
    return f"{nick} is banned: address {host} is refused."


def unbanned(value: str, kind: str) -> str:
    return f"Ban lifted: {value} ({'nickname' if kind == 'nick' else 'address'})."


def no_ban(value: str) -> str:
    return f"No ban on {value}."


def ban_list(bans: Sequence[tuple[str, str]]) -> str:
    """``/bans``: ``Bans: bob (nickname), 10.0.0.5 (address)``."""
    if not bans:
        return "No bans."
    kinds = {"nick": "nickname", "address": "address"}
    return "Bans: " + ", ".join(f"{value} ({kinds[kind]})" for kind, value in bans)


def login_throttled(seconds: float) -> str:
    """Too many wrong passwords from this address: ``/login`` is refused for a while."""
    return f"{_THROTTLED}: /login is refused for {math.ceil(seconds)} s."


def kicked_done(nick: str) -> str:
    """The console's confirmation of a kick (the console is not in the room to see the notice)."""
    return f"{nick} kicked."


def help_line(usages: Sequence[str]) -> str:
    return "Commands: " + " | ".join(usages)


NOBODY_ONLINE = "nobody online"


def online(names: Sequence[str], count: int | None = None) -> str:
    """``/who``'s answer: ``3 online: alice, bob, carol`` (bare names: scripts split them);
    ``nobody online`` for the console of an empty room."""
    if not names and not count:
        return NOBODY_ONLINE
    return f"{len(names) if count is None else count} online: " + ", ".join(names)


def welcome(count: int, others: Sequence[str]) -> str:
    """The line a newcomer gets: ``count`` people online with it, ``others`` the first few of
    the rest, in order of arrival."""
    shown = ", ".join(others)
    if count - 1 > len(others):
        shown += f" and {count - 1 - len(others)} more"
    return f"{CONNECTED} {count} online" + (f": you, {shown}." if others else ": you.")


def welcome_line(count: int, others: Sequence[str]) -> str:
    return welcome(count, others) + " Type /help for commands."


# -- recognisers for clients --


def parse_online(line: str) -> tuple[int, list[str]] | None:
    """``(count, names)`` from ``/who``'s answer, else None."""
    m = _ONLINE.fullmatch(line)
    if m is None:
        return None
    names = m.group(2).split(", ") if m.group(2) else []
    return int(m.group(1)), names


def parse_now_known_as(line: str) -> str | None:
    """The new nickname when ``line`` confirms a ``/nick``, else None."""
    m = _KNOWN_AS.fullmatch(line)
    return m.group(1) if m else None


def login_result(line: str) -> bool | None:
    """True when ``line`` grants operator rights, False when it refuses them, None when it is
    no answer to ``/login``."""
    if line.startswith(NOW_OPERATOR):
        return True
    if line.startswith((WRONG_PASSWORD, NO_OPERATORS, _THROTTLED)):
        return False
    return None


def is_command_error(line: str) -> bool:
    """A refusal of a command: no such user, not an operator, wrong usage."""
    return line.startswith((_NO_SUCH_USER, _PERMISSION_DENIED, _USAGE))


def is_slow_down(data: str | bytes) -> bool:
    """The rate limit's warning is in ``data`` (a line, or raw bytes read)."""
    if isinstance(data, bytes):
        return _SLOW_DOWN.encode(ENCODING) in data
    return _SLOW_DOWN in data


# -- the operator console (standard output of netlab serve) --

CONSOLE_HELLO = (
    "Operator console: /help for the commands (/who, /kick NICK [reason], /ban, /mute,"
    " /say TEXT, /shutdown ...); plain text is said to everyone as operator."
)

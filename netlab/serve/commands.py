"""The commands: ONE table from name to a small handler, for the chat and the console alike.

An actor is whoever typed the command: a chat connection, or the operator console (an
operator called ``operator`` who is not in the room). Each entry says where it may be used;
elsewhere it is unknown, as it always was for ``/shutdown`` in the chat.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from netlab import protocol as p
from netlab.serve.presence import Member, is_loopback
from netlab.serve.room import Room

log = logging.getLogger("netlab.serve")

Where = Literal["chat", "console"]
BOTH: frozenset[Where] = frozenset({"chat", "console"})


class Actor(Protocol):
    nick: str
    host: str
    """The address it connects from (the console: none)."""
    operator: bool
    muted: bool
    console: bool
    """The operator console: not in the room, so it is told what the room would show it."""
    room: Room

    def send(self, line: str) -> None: ...

    def leave(self, reason: str) -> None:
        """Go (``/exit``): a chat connection closes; the console has no such command."""


Handler = Callable[[Actor, p.Command], None]


@dataclass(frozen=True, slots=True)
class Entry:
    handler: Handler
    usage: str
    operator: bool
    where: frozenset[Where]


COMMANDS: dict[str, Entry] = {}
"""Every name and alias -> its entry."""
USAGE: dict[str, str] = {}
"""Each command once (no aliases), in the order ``/help`` lists them."""


def command(
    name: str, usage: str, *aliases: str, operator: bool = False, where: frozenset[Where] = BOTH
):
    """Register a command handler under ``name`` (and aliases)."""

    def register(handler: Handler) -> Handler:
        for each in (name, *aliases):
            COMMANDS[each] = Entry(handler, usage, operator, where)
        USAGE[name] = usage
        return handler

    return register


def _place(actor: Actor) -> Where:
    return "console" if actor.console else "chat"


def dispatch(actor: Actor, cmd: p.Command) -> None:
    entry = COMMANDS.get(cmd.name)
    if entry is None or _place(actor) not in entry.where:
        actor.send(p.unknown_command(cmd.name))
    elif entry.operator and not actor.operator:
        actor.send(p.permission_denied(cmd.name))
        log.warning("%s tried /%s without operator rights", actor.nick, cmd.name)
    else:
        entry.handler(actor, cmd)


@command("help", "/help - this list")
def cmd_help(actor: Actor, cmd: p.Command) -> None:
    place = _place(actor)
    usages = [
        usage
        for name, usage in USAGE.items()
        if place in COMMANDS[name].where and (actor.operator or not COMMANDS[name].operator)
    ]
    actor.send(p.help_line(usages))


@command("who", "/who - who is online")
def cmd_who(actor: Actor, cmd: p.Command) -> None:
    members = actor.room.presence.members()
    if actor.console:  # the operator sees where each one connects from
        actor.send(p.online([f"{m.nick} ({m.address})" for m in members]))
    else:
        actor.send(p.online([m.nick for m in members]))


@command("limits", "/limits - the rate and line limits", where=frozenset({"chat"}))
def cmd_limits(actor: Actor, cmd: p.Command) -> None:
    config = actor.room.config
    actor.send(p.limits(config.rate_limit, config.rate_burst or 1, config.max_line_bytes))


@command("msg", "/msg NICK TEXT - a private message", "w", "tell")
def cmd_msg(actor: Actor, cmd: p.Command) -> None:
    nick, text = cmd.split()
    if actor.muted:  # muted means no text reaches anyone, privately neither
        actor.send(p.MUTED)
        return
    if not nick or not text:
        actor.send(p.usage("/msg NICK TEXT"))
        return
    target = actor.room.find(nick)
    if target is None:
        actor.send(p.no_such_user(nick))
        return
    actor.room.tell(target, p.private_line(actor.nick, text))
    actor.send(p.private_line(actor.nick, text, to=target.nick))


@command("me", "/me TEXT - an action")
def cmd_me(actor: Actor, cmd: p.Command) -> None:
    if not cmd.args:
        actor.send(p.usage("/me TEXT"))
    elif actor.muted:
        actor.send(p.MUTED)
    else:
        _say(actor, p.action_line(actor.nick, cmd.args))


def _say(actor: Actor, line: str) -> None:
    actor.room.say(None if actor.console else actor, line)  # type: ignore[arg-type]


@command("nick", "/nick NEW - change your nickname", where=frozenset({"chat"}))
def cmd_nick(actor: Actor, cmd: p.Command) -> None:
    if actor.muted:  # a new nickname is announced to everyone: it is text too
        actor.send(p.MUTED)
        return
    new = p.normalize_nick(cmd.args)
    old = actor.nick

    def answered(problem: str | None) -> None:
        if problem:
            actor.send(problem)
            return
        actor.send(p.now_known_as(new))
        log.info("%s is now known as %s", old, new)

    # Only a chat connection gets here (where=chat): it holds its next lines until the answer.
    actor.after(actor.room.rename(actor, new), answered)  # type: ignore[attr-defined,arg-type]


@command("login", "/login PASSWORD - operator rights", where=frozenset({"chat"}))
def cmd_login(actor: Actor, cmd: p.Command) -> None:
    password = actor.room.config.admin_password
    if not password:
        actor.send(p.NO_OPERATORS)
        return
    host, now, logins = actor.host, time.monotonic(), actor.room.logins
    wait = logins.refused_for(host, now)
    if wait is not None:
        actor.send(p.login_throttled(wait))
    elif hmac.compare_digest(cmd.args.encode(), password.encode()):
        actor.operator = True
        actor.send(p.NOW_OPERATOR)
        log.info("%s logged in as operator", actor.nick)
    else:
        actor.send(p.WRONG_PASSWORD)
        log.warning("%s gave a wrong operator password", actor.nick)
        if logins.failed(host, now):
            log.warning(
                "too many wrong operator passwords (last from %s): /login refused for %.0f s",
                host,
                logins.window,
            )


@command("exit", "/exit or /quit [reason] - leave", "quit", where=frozenset({"chat"}))
def cmd_exit(actor: Actor, cmd: p.Command) -> None:
    actor.send(p.BYE)
    actor.leave(f"left with /{cmd.name}" + (f": {cmd.args}" if cmd.args else ""))


def _target(actor: Actor, cmd: p.Command) -> tuple[Member | None, str]:
    nick, rest = cmd.split()
    if not nick:
        actor.send(p.usage(USAGE[cmd.name]))
        return None, rest
    target = actor.room.find(nick)
    if target is None:
        actor.send(p.no_such_user(nick))
    return target, rest


def _kick(actor: Actor, target: Member, reason: str) -> None:
    actor.room.act(target, "kick", actor.nick, reason)
    if actor.console:
        actor.send(p.kicked_done(target.nick))


@command("kick", "/kick NICK [reason] - disconnect a user", operator=True)
def cmd_kick(actor: Actor, cmd: p.Command) -> None:
    target, reason = _target(actor, cmd)
    if target is not None:
        _kick(actor, target, reason)


@command("ban", "/ban NICK - kick, and refuse them until /unban or restart", operator=True)
def cmd_ban(actor: Actor, cmd: p.Command) -> None:
    target, reason = _target(actor, cmd)
    if target is None:
        return
    if is_loopback(target.host):
        # Everyone in the lab comes from loopback: banning the address would ban them all.
        actor.room.presence.ban("nick", target.nick)
        actor.send(p.banned_by_nick(target.nick))
    else:
        actor.room.presence.ban("address", target.host)
        actor.send(p.banned_address(target.nick, target.host))
    log.info("%s banned %s (%s)", actor.nick, target.nick, target.host)
    _kick(actor, target, reason or "banned")


@command("unban", "/unban NICK|ADDRESS - lift a ban", operator=True)
def cmd_unban(actor: Actor, cmd: p.Command) -> None:
    value, _ = cmd.split()
    if not value:
        actor.send(p.usage(USAGE[cmd.name]))
        return
    kind = actor.room.presence.unban(value)
    actor.send(p.unbanned(value, kind) if kind else p.no_ban(value))
    if kind:
        log.info("%s lifted the ban on %s", actor.nick, value)


@command("bans", "/bans - the bans in force", operator=True)
def cmd_bans(actor: Actor, cmd: p.Command) -> None:
    actor.send(p.ban_list(actor.room.presence.bans()))


def _set_muted(actor: Actor, cmd: p.Command, muted: bool) -> None:
    target, _ = _target(actor, cmd)
    if target is not None:
        actor.room.act(target, "mute" if muted else "unmute", actor.nick)
        actor.send(p.is_muted_now(target.nick, muted))
        log.info("%s %s %s", actor.nick, "muted" if muted else "unmuted", target.nick)


@command("mute", "/mute NICK - stop a user's messages", operator=True)
def cmd_mute(actor: Actor, cmd: p.Command) -> None:
    _set_muted(actor, cmd, True)


@command("unmute", "/unmute NICK - let a user speak again", operator=True)
def cmd_unmute(actor: Actor, cmd: p.Command) -> None:
    _set_muted(actor, cmd, False)


@command("say", "/say TEXT - say to everyone", where=frozenset({"console"}))
def cmd_say(actor: Actor, cmd: p.Command) -> None:
    if cmd.args:
        _say(actor, p.chat_line(actor.nick, cmd.args))


@command("shutdown", "/shutdown - stop the server", operator=True, where=frozenset({"console"}))
def cmd_shutdown(actor: Actor, cmd: p.Command) -> None:
    actor.leave("shutdown")

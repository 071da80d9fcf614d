"""What a bot does: the steps of a script, ONE table keyed by the step names scenario.py
defines (``STEPS``), and the two ways a bot is driven: by its script or as one of a group.

docs/scenarios.md, "Steps", is the contract for each step.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from netlab import protocol as p
from netlab.protocol import Dialect
from netlab.scenario import ACTIONS, Group
from netlab.scenario import Step as StepSpec
from netlab.sim.bot import Bot, CannotConnect

REPLY_TIMEOUT_S = 5.0
"""How long ``login`` and ``kick`` wait for the server's answer."""
CLOSE_TIMEOUT_S = 3.0
HANDOUT_CLOSE_S = 0.5
"""The handout's server never closes: a reset after this makes it say "left"."""
RECONNECT_TRIES = 5
"""Joins a ``reconnect`` tries while the server still holds the dropped connection's nick."""
HANDOUT_GAP_S = 0.05
"""Least time between two sends of one bot under ``--protocol handout``: that framing has no
terminator, so two sends read by the server in one receive would merge into one message."""
EXIT = "/exit"
"""netlab's leaving, as docs/scenarios.md says ``leave`` sends it."""


# -- sending --


async def pace(bot: Bot) -> None:
    """Under the handout's framing, wait out ``HANDOUT_GAP_S`` since the bot's last send."""
    if bot.session.dialect is Dialect.handout:
        gap = bot.last_write + HANDOUT_GAP_S - bot.sim.now()
        if gap > 0:
            await asyncio.sleep(gap)


async def say(bot: Bot, text: str) -> None:
    """Chat; under netlab a text starting with / is run as a command, so no copy is due."""
    await pace(bot)
    bot.write(bot.session.message(text, time.time()), text)
    if bot.session.dialect is not Dialect.netlab or p.parse_command(text) is None:
        bot.sim.ledger.send(bot.nick, text, bot.last_write)


async def command(bot: Bot, text: str) -> None:
    """A command for netlab; those servers have none, so elsewhere it is chat to them."""
    if bot.session.dialect is not Dialect.netlab:
        await say(bot, text)
    else:
        bot.write(bot.session.command(text), text)


async def reply(bot: Bot, text: str, answers: Callable[[str], bool]) -> str | None:
    """Send command ``text`` and wait for the first line from then on that ``answers`` it."""
    since = len(bot.lines.lines)
    await command(bot, text)
    found = await bot.lines.wait(answers, REPLY_TIMEOUT_S, since)
    return None if found is None else bot.lines.lines[found]


# -- the steps --


async def join(bot: Bot, outcome: str = "connected") -> bool:
    """Connect and register; True when the outcome is the one expected."""
    result = bot.result
    try:
        joined = await bot.connect()
    except CannotConnect as error:  # after the run's first connection: the bot's error
        bot.error(f"join: cannot connect: {error}")
        return False
    if not joined:
        result.refused = bot.refusal
        now = bot.sim.now()
        bot.sim.marks.add(now, bot.nick, "refused", result.refused)
        bot.sim.record(now, bot.nick, "*", f"refused: {result.refused}")
        if outcome != "refused":
            bot.error(f"join: refused: {result.refused}")
            return False
        result.refusals += 1
        return True
    result.refused = None
    result.ended = None
    if outcome == "refused":
        # Said as that, and the bot leaves again, as if it had been refused: its script's next
        # join would otherwise collide with this connection (a cascade of errors, issue 12).
        bot.error("join: expected to be refused, but was connected")
        await leave(bot)
        return False
    return True


async def login(bot: Bot, password: str) -> None:
    said = await reply(bot, f"/login {password}", lambda line: p.login_result(line) is not None)
    if said is None:
        bot.error(f"login: no answer within {REPLY_TIMEOUT_S:g}s")
    elif not p.login_result(said):
        bot.error(f"login: {said}")


async def kick(bot: Bot, nick: str, reason: str) -> None:
    done = p.kicked_notice(nick, bot.nick).rstrip(".").casefold()
    said = await reply(
        bot,
        f"/kick {nick} {reason}".rstrip(),
        lambda line: line.casefold().startswith(done) or p.is_command_error(line),
    )
    if said is None:
        bot.error(f"kick {nick}: no answer within {REPLY_TIMEOUT_S:g}s")
    elif not said.casefold().startswith(done):
        bot.error(f"kick {nick}: {said}")


async def expect(bot: Bot, text: str, within: float) -> None:
    found = await bot.lines.wait(lambda line: text in line, within, bot.lines.cursor)
    if found is None:
        bot.error(f"expect {text!r}: not received within {within:g}s")
    else:
        bot.lines.cursor = found + 1


async def leave(bot: Bot) -> None:
    """Leave as the protocol's client does: ``/exit`` (netlab), the handout client's leaving
    message then a reset (handout), or a plain close (lines)."""
    link = bot.link
    if link is None or bot.phase != "online":
        return
    bot.phase = "leaving"
    bot.result.ended = "left"
    now = bot.sim.now()
    bot.sim.depart(bot, now)
    bot.sim.marks.add(now, bot.nick, "leave")
    session = bot.session
    goodbye = session.command(EXIT) if session.dialect is Dialect.netlab else session.leaving()
    try:
        if goodbye:
            await pace(bot)
            bot.write(goodbye, p.decode(goodbye).strip())
        elif link.transport is not None:
            link.transport.close()
    except ConnectionError:
        pass
    # The handout's server never closes: a reset makes it say "left" (a FIN makes it spin).
    await bot.wait_closed(
        HANDOUT_CLOSE_S if session.dialect is Dialect.handout else CLOSE_TIMEOUT_S
    )
    link.reset()


async def drop(bot: Bot) -> None:
    link = bot.link
    if link is None:
        return
    if bot.phase == "online":
        now = bot.sim.now()
        bot.sim.depart(bot, now)
        bot.sim.marks.add(now, bot.nick, "drop")
    bot.phase = "leaving"
    bot.result.ended = "dropped"
    link.reset()
    await bot.wait_closed(CLOSE_TIMEOUT_S)


async def reconnect(bot: Bot) -> None:
    await drop(bot)
    for _ in range(RECONNECT_TRIES - 1):
        if await join(bot) or bot.result.refused != p.nick_taken(bot.nick):
            return
        # The server may not have seen the reset yet: the nick is still taken. Try again.
        bot.result.errors.pop()
        await asyncio.sleep(0.2)
    await join(bot)  # the last try: a refusal now is the bot's error


@dataclass(frozen=True)
class StepKind:
    run: Callable[[Bot, Any], Awaitable[Any]]
    offline: bool = False
    """It may run while the bot is not connected."""
    reads_lines: bool = False
    """It waits for lines: a bot with such a step keeps what it receives."""


async def fault(bot: Bot, action: str, *args: int) -> None:
    """``kill-server``, ``stop-redis`` or ``start-redis`` on the embedded cluster
    (``netlab.cluster.embedded``); processes start and stop off the event loop."""
    cluster = bot.sim.cluster
    if cluster is None:
        bot.error(f"{action.replace('_', '-')}: needs the embedded cluster (server.servers)")
        return
    bot.sim.record(
        bot.sim.now(), bot.nick, "!", action.replace("_", "-") + "".join(f" {a}" for a in args)
    )
    await asyncio.to_thread(getattr(cluster, action), *args)


def _scaled(seconds: float, bot: Bot) -> float:
    return seconds / bot.sim.speed


STEPS: dict[str, StepKind] = {
    "join": StepKind(lambda bot, step: join(bot, step.outcome), offline=True),
    "say": StepKind(lambda bot, step: say(bot, step.text)),
    "command": StepKind(lambda bot, step: command(bot, step.text)),
    "expect": StepKind(
        lambda bot, step: expect(bot, step.text, _scaled(step.within, bot)), reads_lines=True
    ),
    "login": StepKind(lambda bot, step: login(bot, step.password), reads_lines=True),
    "kick": StepKind(lambda bot, step: kick(bot, step.nick, step.reason), reads_lines=True),
    "wait": StepKind(lambda bot, step: asyncio.sleep(_scaled(step.for_, bot)), offline=True),
    "leave": StepKind(lambda bot, step: leave(bot)),
    "drop": StepKind(lambda bot, step: drop(bot)),
    "reconnect": StepKind(lambda bot, step: reconnect(bot)),
    # The faults of an embedded cluster: they act on it, connected or not.
    "kill-server": StepKind(lambda bot, step: fault(bot, "kill_server", step.server), offline=True),
    "stop-redis": StepKind(lambda bot, step: fault(bot, "stop_redis"), offline=True),
    "start-redis": StepKind(lambda bot, step: fault(bot, "start_redis"), offline=True),
}
if set(STEPS) != set(ACTIONS):  # a step named in scenario.py but not here (or the other way)
    raise ImportError(f"netlab.sim.steps: STEPS {sorted(STEPS)} != scenario ACTIONS {ACTIONS}")


def reads_lines(script: list[StepSpec]) -> bool:
    return any(STEPS[step.action].reads_lines for step in script)


# -- the two drivers --


async def run_script(bot: Bot, script: list[StepSpec]) -> None:
    sim = bot.sim
    previous_end = sim.start
    for number, step in enumerate(script):
        if step.at is not None:
            await sim.sleep_until(sim.due(step.at))
        elif step.after is not None:
            await sim.sleep_until(previous_end + step.after / sim.speed)
        # Not the phase: once the server has closed the connection a kicked bot is offline.
        if bot.result.kicked_by is not None:
            return  # a kicked bot's remaining steps are skipped; being kicked is no error
        kind = STEPS[step.action]
        if bot.phase == "offline" and not kind.offline:
            if bot.result.refused is None and not bot.result.errors:
                bot.error(f"script[{number}] {step.action}: not connected")
            return
        await kind.run(bot, step)
        previous_end = sim.now()


async def run_group_bot(bot: Bot, group: Group, index: int) -> None:
    """Bot ``index`` of ``group``: joins in its share of the spread, chatters, leaves."""
    sim = bot.sim
    share = index / group.count
    await sim.sleep_until(sim.due(group.join.at + group.join.spread * share))
    if not await join(bot):
        return
    leave_at = sim.due(group.leave.at + group.leave.spread * share) if group.leave else math.inf
    chatter = group.chatter
    if chatter is not None:
        until = min(leave_at, sim.due(chatter.until) if chatter.until is not None else math.inf)
        every, jitter = chatter.every / sim.speed, chatter.jitter / sim.speed
        when = sim.now() + bot.rng.uniform(0, every)  # bots do not speak in chorus
        while when < until and bot.phase == "online":
            await sim.sleep_until(when)
            if bot.phase != "online":
                return
            await say(bot, bot.rng.choice(chatter.messages))
            when += every + bot.rng.uniform(-jitter, jitter)
    if group.leave is not None and bot.phase == "online":
        await sim.sleep_until(leave_at)
        await (drop(bot) if group.leave.how == "drop" else leave(bot))

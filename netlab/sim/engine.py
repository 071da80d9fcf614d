"""The engine: runs one scenario's bots against ``host:port`` on a clock scaled by ``--speed``,
keeps the shared books (the ledger, who is online, the transcript), and ends the run with a
``RunResult`` of plain data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TextIO

from netlab import aio, net, procstat
from netlab.scenario import Bot as BotSpec
from netlab.scenario import Scenario
from netlab.sim import steps, timeline
from netlab.sim.bot import Bot, Unreachable
from netlab.sim.ledger import Ledger
from netlab.sim.observe import observe
from netlab.sim.results import RunResult, Snapshot

RECIPIENTS_UP_TO = 40
"""Up to this many bots, the timeline says who got each message (as the summary has a row
per bot up to 40): a crowd's would be hundreds of thousands of entries."""
SETTLE_S = 2.0
"""When every script is done, at most this long for the copies in flight to arrive."""

SnapshotTaker = Callable[[], list[dict[str, Any]]]


class Simulation:
    """Runs one scenario's bots against ``host:port``."""

    def __init__(
        self,
        scenario: Scenario,
        host: str,
        port: int,
        protocol: str,
        speed: float = 1.0,
        seed: int | None = None,
        transcript: TextIO | None = None,
        snapshot: SnapshotTaker | None = None,
        servers: list[tuple[str, int]] | None = None,
        cluster: Any = None,
    ) -> None:
        self.scenario = scenario
        self.host, self.port = host, port
        self.servers = servers or [(host, port)]
        """Where the bots join: one server, or each server of a cluster (docs/cluster.md)."""
        self.cluster = cluster
        """The embedded cluster the fault steps act on (netlab.cluster.embedded), or None."""
        self.target = ",".join(net.format_address(*address) for address in self.servers)
        self.protocol = protocol
        self.speed = speed
        self.seed = scenario.seed if seed is None else seed
        self.transcript = transcript
        self.take_snapshot = snapshot
        self.ledger = Ledger(
            "text" if protocol == "lines" else "sender",
            recipients=scenario.bot_count() <= RECIPIENTS_UP_TO,
        )
        self.marks = timeline.Marks()
        self.reached = False
        self.online = 0
        self.snapshots: list[Snapshot] = []
        self.bots: list[Bot] = []
        self._conns = 0
        self.loop: asyncio.AbstractEventLoop
        self.start = 0.0

    # -- the clock: scenario seconds, scaled by --speed --

    # time.monotonic, not loop.time: uvloop's clock ticks in whole milliseconds, too coarse
    # for loopback latencies.
    def now(self) -> float:
        return time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def due(self, scenario_seconds: float) -> float:
        return self.start + scenario_seconds / self.speed

    async def sleep_until(self, when: float) -> None:
        delay = when - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    # -- bookkeeping shared by the bots --

    def register(self, bot: Bot, now: float) -> int:
        self._conns += 1
        self.online += 1
        self.ledger.register(self._conns, bot.nick)
        self.marks.add(now, bot.nick, "join")
        self.record(now, bot.nick, "*", "registered")
        return self._conns

    def depart(self, bot: Bot, now: float) -> None:
        if bot.conn in self.ledger.windows:
            self.online -= 1
        self.ledger.depart(bot.conn, now)

    def record(self, now: float, nick: str, direction: str, text: str) -> None:
        if self.transcript is not None:
            self.transcript.write(f"{now - self.start:10.3f} {nick} {direction} {text}\n")

    # -- running --

    async def run(self) -> RunResult:
        """Run to the end; raises Unreachable when the target accepts no connection."""
        self.loop = asyncio.get_running_loop()
        cpu_before = procstat.own_cpu_seconds()
        self.start = self.ledger.origin = time.monotonic()
        work = [asyncio.ensure_future(job) for job in self._jobs()]
        observers = [
            asyncio.ensure_future(observe(self, at)) for at in self.scenario.observe.sockets
        ]
        cut = False
        everything = asyncio.gather(*work, *observers)
        try:
            duration = self.scenario.duration
            limit = None if duration is None else max(0.0, self.due(duration) - self.now())
            try:
                await aio.within(asyncio.shield(everything), limit)
            except asyncio.TimeoutError:
                cut = True
            if not cut:
                await self._settle()
        except Unreachable:
            for bot in self.bots:
                bot.close_now()
            raise
        finally:
            for task in (*work, *observers):
                task.cancel()
            await asyncio.gather(*work, *observers, return_exceptions=True)
            if everything.done() and not everything.cancelled():
                # Seen here: once the shield is cancelled (Ctrl-C) nothing else retrieves it,
                # and asyncio would print "exception was never retrieved" with a traceback.
                everything.exception()
        end = self.now()
        self.ledger.finish(end)
        await asyncio.gather(*(self._last_leave(bot) for bot in self.bots))
        over_time = timeline.build(self.ledger, self.marks, end)
        return RunResult(
            scenario=self.scenario,
            protocol=self.protocol,
            target=self.target,
            embedded=False,
            duration_s=end - self.start,
            bots=[bot.result for bot in self.bots],
            totals=self.ledger.totals(),
            snapshots=sorted(self.snapshots, key=lambda s: s.at_s),
            speed=self.speed,
            seed=self.seed,
            engine=_engine_cost(cpu_before),
            cut_by_duration=cut,
            timeline=over_time,
        )

    async def _settle(self) -> None:
        deadline = self.now() + SETTLE_S
        while self.ledger.pending and self.now() < deadline:
            await asyncio.sleep(0.02)

    async def _last_leave(self, bot: Bot) -> None:
        if bot.phase == "online":
            try:
                await steps.leave(bot)
                bot.result.ended = "stayed to the end"
            except Exception:  # the run is over: a failing goodbye changes no figure
                bot.close_now()
        bot.close_now()

    def address_of(self, number: int, server: int | None) -> tuple[str, int]:
        """Bot ``number``'s server: the one its scenario names (1 for the first), else the
        servers in turn."""
        return self.servers[(server - 1 if server else number) % len(self.servers)]

    def _jobs(self) -> Iterator[Coroutine[Any, Any, None]]:
        for spec in self.scenario.bots:
            if isinstance(spec, BotSpec):
                # Only a bot that waits for lines keeps them: a crowd's are never kept.
                bot = Bot(self, spec.nick, keep_lines=steps.reads_lines(spec.script))
                bot.address = self.address_of(len(self.bots), spec.server)
                self.bots.append(bot)
                yield _guard(bot, steps.run_script(bot, spec.script))
            else:
                for index, nick in enumerate(spec.nicks()):
                    bot = Bot(self, nick, keep_lines=False, group=spec.group)
                    bot.address = self.address_of(len(self.bots), spec.server)
                    self.bots.append(bot)
                    yield _guard(bot, steps.run_group_bot(bot, spec, index))


async def _guard(bot: Bot, job: Coroutine[Any, Any, None]) -> None:
    """A bug in a step is that bot's error, never the end of the run."""
    try:
        await job
    except (Unreachable, asyncio.CancelledError):
        raise
    except ConnectionError:
        if bot.phase == "online":
            bot.error("connection lost while sending")
    except Exception as error:  # report it as the bot's error rather than a traceback
        bot.error(f"internal error: {type(error).__name__}: {error}")


def _engine_cost(cpu_before: float) -> dict[str, float]:
    cost = {"cpu_s": round(procstat.own_cpu_seconds() - cpu_before, 3)}
    rss = procstat.own_peak_rss_mb()
    if rss is not None:
        cost["max_rss_mb"] = rss
    return cost

"""``netlab simulate``: scenario files in, a summary, a report and an exit status out.

The command's flow: find the scenario files, validate each (exit 2), start the embedded
``netlab serve`` when there is no target, run the bots (``netlab.bots``) with a live progress
line, then print the summary and write the report (``netlab.report``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from netlab import embedded, net
from netlab.bots import RunResult, Simulation, Unreachable
from netlab.scenario import Group, Scenario
from netlab.serve.config import ServerConfig
from netlab.sim import observe

EXIT_PASSED, EXIT_FAILED, EXIT_INVALID, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # as shells report a Ctrl-C


@dataclass
class SimulateConfig:
    """Everything ``netlab simulate`` was asked for."""

    path: Path
    target: str | None = None
    protocol: str | None = None
    speed: float = 1.0
    seed: int | None = None
    report: Path | None = None
    transcript: Path | None = None
    quiet: bool = False


def needed_rate(scenario: Scenario, speed: float = 1.0) -> float:
    """The rate limit (messages a second per client) the scenario's busiest bot needs so that
    none of its messages is dropped, given bursts of twice the rate."""
    rate = 0.0
    for spec in scenario.bots:
        if isinstance(spec, Group):
            if spec.chatter is not None:
                shortest = spec.chatter.every - spec.chatter.jitter
                rate = max(rate, 1.25 * speed / shortest)
            continue
        times, clock = [], 0.0
        for step in spec.script:
            # Steps that wait on the network take time we cannot know: counting them as
            # instant overestimates the need, which is the safe side.
            clock = max(clock, step.at) if step.at is not None else clock + (step.after or 0)
            if step.action == "wait":
                clock += step.for_  # type: ignore[attr-defined]
            elif step.action in ("say", "command", "login", "kick", "leave"):
                times.append(clock / speed)
        densest, first = 0, 0
        for last, when in enumerate(times):
            while when - times[first] >= 1.0:
                first += 1
            densest = max(densest, last - first + 1)
        rate = max(rate, densest / 2)
    return rate


def server_config(scenario: Scenario, speed: float = 1.0) -> ServerConfig:
    """The embedded server's configuration (docs/scenarios.md, "The embedded server"): the
    scenario's options; room for every bot; the server's own rate limit unless the
    scenario's bots would exceed it; warnings only in its log."""
    defaults: dict[str, Any] = {
        "max_clients": max(ServerConfig.max_clients, len(scenario.nicks()) + 16),
        "log_level": "warning",
    }
    rate = needed_rate(scenario, speed)
    if rate > ServerConfig.rate_limit:
        defaults["rate_limit"] = float(math.ceil(rate))
    return scenario.server.options.config(**defaults)


def server_arguments(scenario: Scenario, speed: float = 1.0) -> list[str]:
    """``netlab serve`` options for the embedded server."""
    return server_config(scenario, speed).arguments()


def simulate(config: SimulateConfig) -> int:
    """``netlab simulate``: run the scenario(s) at ``config.path``; returns the exit status."""
    from netlab.scenario import ScenarioError, resolve_path

    errors = _stderr()
    if not config.speed > 0:
        errors.print("netlab simulate: --speed must be more than 0")
        return EXIT_INVALID
    if config.target is not None:
        try:
            net.parse_address(config.target)
        except ValueError as error:
            errors.print(f"netlab simulate: --target: {error}")
            return EXIT_INVALID
    try:
        files = resolve_path(config.path)
    except ScenarioError as error:
        errors.print(str(error))
        return EXIT_INVALID
    statuses = []
    for file in files:
        naming = file.stem if len(files) > 1 else None
        statuses.append(_simulate_file(file, config, naming))
        if statuses[-1] == EXIT_INTERRUPTED:  # Ctrl-C stops the whole run, not one scenario
            return EXIT_INTERRUPTED
    if len(files) > 1 and not config.quiet:
        passed = statuses.count(EXIT_PASSED)
        _stdout().print(f"\n{passed} of {len(files)} scenarios passed", style="bold")
    return max(statuses)


def _stdout():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _named(path: Path | None, naming: str | None) -> Path | None:
    """With several scenarios, FILE.json becomes FILE-<scenario>.json for each."""
    if path is None or naming is None:
        return path
    return path.with_name(f"{path.stem}-{naming}{path.suffix}")


def _simulate_file(file: Path, config: SimulateConfig, naming: str | None) -> int:
    from netlab import aio, report
    from netlab.scenario import ScenarioError, load

    out, errors = _stdout(), _stderr()
    try:
        scenario = load(file)
    except ScenarioError as error:
        errors.print(str(error))
        return EXIT_INVALID
    protocol = config.protocol or scenario.server.protocol
    problems = scenario.protocol_problems(protocol)
    if problems:
        errors.print("\n".join(f"{file}: {problem}" for problem in problems))
        return EXIT_INVALID
    target = config.target or scenario.server.target
    address = net.parse_address(target) if target else None
    transcript_path = _named(config.transcript, naming)
    try:
        transcript = open(transcript_path, "w", encoding="utf-8") if transcript_path else None  # noqa: SIM115
    except OSError as error:
        errors.print(f"netlab simulate: --transcript: {error}")
        return EXIT_INVALID
    try:
        result = aio.run(_run(scenario, address, protocol, config, transcript))
    except (Unreachable, embedded.ServerStartError) as error:
        errors.print(f"netlab simulate: {file}: {error}", style="bold red")
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        errors.print("netlab simulate: interrupted")
        return EXIT_INTERRUPTED
    finally:
        if transcript is not None:
            transcript.close()
    verdicts = report.evaluate(result)
    if not config.quiet:
        renderer = observe.renderer(net.parse_address(result.target)[1])
        for style, text in report.summary(result, verdicts, renderer):
            out.print()
            out.print(text, style=style or None, markup=False)
        out.print()
    style, text = report.verdict_line(result, verdicts)
    out.print(text, style=style, markup=False)
    report_path = _named(config.report, naming)
    if report_path is not None:
        try:
            report_path.write_text(
                json.dumps(report.build(result, verdicts), ensure_ascii=False, indent=2) + "\n",
                encoding="utf-8",
            )
        except OSError as error:
            errors.print(f"netlab simulate: --report: {error}")
            return EXIT_INVALID
    return EXIT_PASSED if all(v.passed for v in verdicts) else EXIT_FAILED


async def _run(
    scenario: Scenario,
    address: tuple[str, int] | None,
    protocol: str,
    config: SimulateConfig,
    transcript: TextIO | None,
) -> RunResult:
    own = None
    if address is None:
        own = await asyncio.to_thread(embedded.start, server_arguments(scenario, config.speed))
        address = own.address
    host, port = address

    sim = Simulation(
        scenario, host, port, protocol, config.speed, config.seed, transcript, observe.taker(port)
    )
    progress = None if config.quiet else asyncio.ensure_future(_progress(sim))
    try:
        result = await sim.run()
    finally:
        if progress is not None:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
        if own is not None:
            await asyncio.to_thread(own.stop)
            own.log_file.close()
    result.embedded = own is not None
    return result


async def _progress(sim: Simulation) -> None:
    """One live line on standard error while the run goes on; it goes away at the end."""
    from rich.live import Live
    from rich.text import Text

    console = _stderr()
    if not console.is_terminal:
        return

    def line() -> Text:
        total = len(sim.bots) or len(sim.scenario.nicks())
        errors = sum(len(bot.errors) for bot in sim.bots)
        text = Text()
        text.append(f" {sim.scenario.name} ", style="bold reverse")
        text.append(f"  {sim.elapsed():6.1f}s", style="bold")
        text.append(f"   online {sim.online}/{total}")
        text.append(f"   sent {sim.ledger.sent}")
        text.append(f"   delivered {sim.ledger.delivered}")
        if errors:
            text.append(f"   errors {errors}", style="bold red")
        return text

    with Live(line(), console=console, transient=True, refresh_per_second=8) as live:
        while True:
            await asyncio.sleep(0.125)
            live.update(line())

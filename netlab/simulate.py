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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from netlab import bounds, embedded, net
from netlab.bots import RunResult, Simulation, Unreachable
from netlab.scenario import Group, Scenario, script_clock
from netlab.serve.config import RATE_LIMIT_MAX, ServerConfig
from netlab.sim import console, observe

EXIT_PASSED, EXIT_FAILED, EXIT_INVALID, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # as shells report a Ctrl-C


@dataclass
class SimulateConfig:
    """Everything ``netlab simulate`` was asked for."""

    path: Path | None
    target: str | None = None
    protocol: str | None = None
    speed: float = 1.0
    seed: int | None = None
    report: Path | None = None
    transcript: Path | None = None
    quiet: bool = False
    list: bool = False
    """Show the built-in scenarios instead of running one."""
    html: Path | None = None
    """One self-contained HTML report for the whole run (netlab.html)."""


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
        sends = ("say", "command", "login", "kick", "leave")
        times = [clock / speed for step, clock in script_clock(spec.script) if step.action in sends]
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
        defaults["rate_limit"] = min(float(math.ceil(rate)), RATE_LIMIT_MAX)
    return scenario.server.options.config(**defaults)


def server_arguments(scenario: Scenario, speed: float = 1.0) -> list[str]:
    """``netlab serve`` options for the embedded server."""
    return server_config(scenario, speed).arguments()


LIST_COLUMNS = {"name": "Name", "bots": "Bots", "duration": "Duration", "shows": "What it shows"}


def list_builtins() -> int:
    """``netlab simulate --list``: the built-in scenarios, a row each."""
    from netlab import tables
    from netlab.scenario import ScenarioError, load
    from netlab.sim.loading import builtins

    rows = []
    for file in builtins():
        try:
            scenario = load(file)
        except ScenarioError as error:  # a broken install: say so in its row
            rows.append({"name": file.stem, "shows": f"invalid: {error}"})
            continue
        seconds, fixed = scenario.planned_seconds()
        rows.append(
            {
                "name": file.stem,
                "bots": scenario.bot_count(),
                "duration": f"{seconds:g}s" if fixed else f"about {seconds:g}s",
                "shows": " ".join(scenario.description.split()) or "-",
            }
        )
    console.say(console.stdout(), tables.render(rows, LIST_COLUMNS, wrap={"shows"}))
    return EXIT_PASSED


def simulate(config: SimulateConfig) -> int:
    """``netlab simulate``: run the scenario(s) at ``config.path``; returns the exit status."""
    from netlab.scenario import ScenarioError, resolve_path

    errors = console.stderr()
    if config.list:
        return list_builtins()
    if config.path is None:
        errors.print(
            "netlab simulate: give a scenario: a file, a directory, or a built-in name"
            " (netlab simulate --list shows them)"
        )
        return EXIT_INVALID
    if not bounds.positive(config.speed):
        errors.print("netlab simulate: --speed must be a number more than 0")
        return EXIT_INVALID
    if config.target is not None:
        try:
            net.parse_targets(config.target)  # one server, or several of one cluster
        except ValueError as error:
            errors.print(f"netlab simulate: --target: {error}")
            return EXIT_INVALID
    try:
        files = resolve_path(config.path)
    except ScenarioError as error:
        errors.print(str(error))
        return EXIT_INVALID
    if config.html is not None:
        from netlab import html

        if problem := html.unwritable(config.html):
            errors.print(f"netlab simulate: --html: {problem}")
            return EXIT_INVALID
    statuses, documents = [], []
    for file in files:
        naming = file.stem if len(files) > 1 else None
        statuses.append(_simulate_file(file, config, naming, documents))
        if statuses[-1] == EXIT_INTERRUPTED:  # Ctrl-C stops the whole run, not one scenario
            return EXIT_INTERRUPTED
    if config.html is not None and documents:
        from netlab import html

        # One page for the whole run, a section per scenario (issue 15).
        if not html.save("simulate", config.html, html.simulate_report(documents)):
            return EXIT_INVALID
    if len(files) > 1 and not config.quiet:
        passed = statuses.count(EXIT_PASSED)
        console.say(console.stdout(), f"\n{passed} of {len(files)} scenarios passed", "bold")
    return max(statuses)


def _named(path: Path | None, naming: str | None) -> Path | None:
    """With several scenarios, FILE.json becomes FILE-<scenario>.json for each."""
    if path is None or naming is None:
        return path
    return path.with_name(f"{path.stem}-{naming}{path.suffix}")


def _open_transcript(path: Path | None) -> TextIO | None:
    if path is None:
        return None
    return open(path, "w", encoding="utf-8", buffering=1)  # line by line: `tail -f` follows it


def _simulate_file(
    file: Path, config: SimulateConfig, naming: str | None, documents: list[dict[str, Any]]
) -> int:
    """Run one scenario file; its report document is added to ``documents``."""
    from netlab import aio, report
    from netlab.scenario import ScenarioError, bot_limit, load

    out, errors = console.stdout(), console.stderr()
    try:
        scenario = load(file, bot_limit()[0])
    except ScenarioError as error:
        errors.print(str(error))
        return EXIT_INVALID
    protocol = config.protocol or scenario.server.protocol
    problems = scenario.protocol_problems(protocol)
    if problems:
        errors.print("\n".join(f"{file}: {problem}" for problem in problems))
        return EXIT_INVALID
    target = config.target or scenario.server.target
    addresses = net.parse_targets(target) if target else None
    options = scenario.server.options.arguments()
    if target and options:  # said up front: what the scenario expects of them may not happen
        errors.print(
            f"netlab simulate: {file}: server.options cannot apply to {target}, a server"
            f" already running: start it with {' '.join(options)} for what they would do"
        )
    transcript_path = _named(config.transcript, naming)
    try:
        transcript = _open_transcript(transcript_path)
    except OSError as error:
        errors.print(f"netlab simulate: --transcript: {error}")
        return EXIT_INVALID

    def announce(head: str, port: int) -> None:
        if not config.quiet:
            console.say(out, f"{head}: running (netlab sockets --port {port} shows it)", "bold")

    try:
        result = aio.run(_run(scenario, addresses, protocol, config, transcript, announce))
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
        renderer = observe.renderer(net.parse_targets(result.target)[0][1])
        for style, text in report.summary(result, verdicts, renderer):
            out.print()
            console.say(out, text, style or None)
        out.print()
    style, text = report.verdict_line(result, verdicts)
    console.say(out, text, style)
    document = report.build(result, verdicts)
    documents.append(document)
    report_path = _named(config.report, naming)
    if report_path is not None:
        try:
            report_path.write_text(
                json.dumps(document, ensure_ascii=False, indent=2) + "\n",
                encoding="utf-8",
            )
        except OSError as error:
            errors.print(f"netlab simulate: --report: {error}")
            return EXIT_INVALID
    return EXIT_PASSED if all(v.passed for v in verdicts) else EXIT_FAILED


async def _run(
    scenario: Scenario,
    addresses: list[tuple[str, int]] | None,
    protocol: str,
    config: SimulateConfig,
    transcript: TextIO | None,
    announce: Callable[[str, int], None],
) -> RunResult:
    from netlab import report

    own = cluster = None
    if addresses is None and scenario.server.servers > 1:
        from netlab.cluster.embedded import EmbeddedCluster

        options = server_arguments(scenario, config.speed)
        cluster = EmbeddedCluster(scenario.server.servers, options)
        await asyncio.to_thread(cluster.start)
        addresses = cluster.addresses
    elif addresses is None:
        own = await asyncio.to_thread(embedded.start, server_arguments(scenario, config.speed))
        addresses = [own.address]
    host, port = addresses[0]
    where = ",".join(net.format_address(*address) for address in addresses)
    embedded_run = own is not None or cluster is not None
    head = report.header(scenario.name, scenario.bot_count(), protocol, where, embedded_run)
    announce(head, port)  # before the first bot joins: the sockets can be watched from now
    sim = Simulation(
        scenario,
        host,
        port,
        protocol,
        config.speed,
        config.seed,
        transcript,
        observe.taker(port),
        servers=addresses,
        cluster=cluster,
    )
    progress = None if config.quiet else asyncio.ensure_future(console.progress(sim))
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
        if cluster is not None:
            await asyncio.to_thread(cluster.stop)
    result.embedded = embedded_run
    return result

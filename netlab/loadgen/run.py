"""One bench run: join every client, let the senders send, count the copies, and sample the
server's process (when it is on this machine) and the bench's own CPU over the send phase."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import signal
import time

from netlab import aio, net, procstat, stats
from netlab.loadgen.config import BenchConfig, BenchError, BenchResult
from netlab.loadgen.counter import Bench, BenchClient
from netlab.loadgen.join import check_joined, join_all
from netlab.loadgen.progress import Progress
from netlab.procstat import ProcessWatch
from netlab.protocol.client_session import Dialect
from netlab.serve.config import ServerConfig

PROBES = 8
MAX_LATENCY_SAMPLES = 50_000
"""Parsing a timed copy costs about a microsecond: beyond this many, sample every k-th message."""
RSS_EVERY = 0.1
"""Seconds between samples of the server's memory, for its peak."""
CLOCK_TICK = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
MIN_CPU_TICKS = 10
"""CPU times count whole clock ticks (10 ms here): a figure from fewer than this many is more
rounding than measurement, so the run says so instead."""
MIN_CPU_WALL_S = MIN_CPU_TICKS * CLOCK_TICK


def own_server_options(clients: int) -> list[str]:
    """The bench's own ``netlab serve``: rate limit off, room for everyone."""
    return ServerConfig(rate_limit=0, max_clients=clients + 64, log_level="warning").arguments()


def timed_stride(messages: int, probes: int) -> int:
    """Time every k-th of ``messages`` (each read by ``probes`` probes), so that the probes
    parse at most about ``MAX_LATENCY_SAMPLES`` send times in all: this k."""
    return max(1, math.ceil(messages * probes / MAX_LATENCY_SAMPLES))


async def sample_rss(watch: ProcessWatch) -> None:
    while watch.process is not None:
        watch.rss()
        await asyncio.sleep(RSS_EVERY)


def make_clients(bench: Bench, config: BenchConfig) -> list[BenchClient]:
    run_id = os.urandom(2).hex()
    probes = min(PROBES, config.clients)
    probe_every = max(1, config.clients // probes)
    return [
        BenchClient(
            bench,
            i,
            f"b{run_id}-{i}",
            i if i < config.senders else None,
            # Probes are spread over the clients, so that both senders and listeners are seen.
            probe=(i % probe_every == probe_every - 1) and i // probe_every < probes,
        )
        for i in range(config.clients)
    ]


@contextlib.contextmanager
def interruptible(stop: asyncio.Event):
    """Ctrl-C sets ``stop`` instead of tearing the run down, so what was measured is kept."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def measure(
    config: BenchConfig,
    host: str,
    port: int,
    server_pid: int | None,
    progress: Progress | None = None,
    servers: list[tuple[str, int]] | None = None,
) -> BenchResult:
    """One run against the server at ``host:port`` (or the cluster of ``servers``, whose
    first is ``host:port``: its process is the one watched)."""
    servers = servers or [(host, port)]
    loop = asyncio.get_running_loop()
    bench = Bench(config, time.perf_counter_ns())
    watch = ProcessWatch(server_pid)
    where = ",".join(net.format_address(*address) for address in servers)
    result = BenchResult(
        target=where,
        protocol=config.protocol,
        server=watch.name,
        clients=config.clients,
        joined=0,
        join_s=0.0,
        senders=config.senders,
        messages=config.messages,
        size=config.size,
        rate=config.rate,
    )
    limit = aio.raise_file_limit(config.clients + 64)
    if limit is not None and config.clients + 16 > limit:
        raise BenchError(
            f"the open-file limit ({limit}) is too low for {config.clients} clients;"
            " raise it with `ulimit -n` (hard limit: `ulimit -Hn`)"
        )
    base_rss = watch.rss()
    sampler = loop.create_task(sample_rss(watch))
    clients = make_clients(bench, config)
    progress = progress or Progress(config.clients, enabled=False)
    started = time.perf_counter()
    try:
        with interruptible(bench.stop), progress:
            errors = await join_all(clients, config, servers, progress, bench.stop)
            result.joined = sum(1 for c in clients if c.counting and not c.lost)
            result.join_s = round(time.perf_counter() - started, 3)
            if bench.stop.is_set():
                result.interrupted = True
                result.notes.append("interrupted (Ctrl-C) while joining: nothing was sent")
                return result
            check_joined(result.joined, config, errors, time.perf_counter() - started, where)
            idle_rss = watch.rss()
            if base_rss is not None and idle_rss is not None and result.joined:
                result.server_kb_per_idle_client = round(
                    (idle_rss - base_rss) / result.joined / 1024, 2
                )
            await send_and_count(bench, clients, result, watch, progress)
    finally:
        close_all(clients, config)
        await asyncio.sleep(0)
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    if watch.peak_rss:
        result.server_rss_mb = round(watch.peak_rss / 2**20, 1)
    if bench.rate_limited:
        result.notes.append("the server rate-limited the senders (netlab serve: --rate-limit 0)")
    return result


def close_all(clients: list[BenchClient], config: BenchConfig) -> None:
    for c in clients:
        if c.transport is None:
            continue
        if config.protocol == Dialect.lines.value:
            # ncat quits when a connection it is accepting has been reset.
            c.transport.close()
        else:
            # A reset: no TIME_WAIT left behind, and the handout server's threads see an
            # error instead of spinning on empty receives.
            net.reset(c.transport)


async def send_and_count(
    bench: Bench,
    clients: list[BenchClient],
    result: BenchResult,
    watch: ProcessWatch,
    progress: Progress,
) -> None:
    config = bench.config
    live = [c for c in clients if c.counting and not c.lost]
    senders = [c for c in live if c.sender_id is not None]
    listeners = len(live)
    total = len(senders) * config.messages
    probes = sum(1 for c in live if c.probe)
    stride = timed_stride(total, probes)
    # Copies that arrive before the senders start (a sync, a notice) are no deliveries.
    bench.delivered = bench.echoed = 0
    bench.samples.clear()
    bench.expected = total * (listeners - 1)
    bench.measuring = True
    if bench.expected == 0 and not bench.complete.done():
        bench.complete.set_result(None)
    # The cycle collector found nothing to free here but cost a tenth of the bench's time
    # (py-spy): the clients' objects are frozen out of its reach while copies are counted.
    gc.collect()
    gc.freeze()
    gc.disable()
    cpu = CpuSpan(watch)
    start = time.perf_counter()
    bench.last_copy = start
    sending = [
        asyncio.ensure_future(c.send_messages(config.messages, config.rate, stride, start))
        for c in senders
    ]
    stopping = asyncio.ensure_future(bench.stop.wait())
    deadline = start + config.run_timeout
    try:
        while not bench.complete.done() and not bench.stop.is_set():
            before = bench.delivered
            await asyncio.wait(
                [bench.complete, stopping], timeout=0.25, return_when="FIRST_COMPLETED"
            )
            if bench.delivered != before:
                cpu.copies_arrived()  # the send phase goes on to the last copy
            progress.counted(bench.delivered, bench.expected)
            now = time.perf_counter()
            quiet = now - bench.last_copy
            if all(s.done() for s in sending) and quiet > config.settle_timeout:
                break
            if now > deadline or (before == bench.delivered and all(c.lost for c in senders)):
                break
        if bench.complete.done():
            cpu.copies_arrived()
    finally:
        stopping.cancel()
        for s in sending:
            if not s.done():
                s.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        gc.enable()
        gc.unfreeze()
    if bench.stop.is_set():
        cpu.copies_arrived()
        result.interrupted = True
        result.notes.append("interrupted (Ctrl-C): these are the figures measured so far")
    end = bench.last_copy if bench.delivered else time.perf_counter()
    bench.measuring = False
    wall = max(end - start, 1e-9)
    result.sent = sum(c.sent for c in senders)
    # What the senders wrote is what every other joined client should get.
    result.expected = result.sent * (listeners - 1)
    result.delivered = bench.delivered
    result.lost = max(0, result.expected - result.delivered)
    result.echoed = bench.echoed
    result.dropped_clients = bench.dropped
    result.elapsed_s = round(wall, 4)
    result.deliveries_per_s = round(result.delivered / wall) if result.delivered else 0
    if bench.samples:
        result.latency_samples = len(bench.samples)
        latency = stats.percentiles([us / 1000 for us in bench.samples], digits=3)
        for name, value in latency.items():
            setattr(result, f"latency_ms_{name}", value)
    cpu.report(result, wall)
    if result.dropped_clients:
        result.notes.append(f"{result.dropped_clients} clients were disconnected during the run")


class CpuSpan:
    """The server's and the bench's CPU time over the send phase: from the first send to the
    moment the last copy was seen (sampled while copies still arrive, not after the quiet
    wait that ends a run)."""

    def __init__(self, watch: ProcessWatch) -> None:
        self.watch = watch
        self.server_start = watch.cpu_seconds()
        self.bench_start = procstat.own_cpu_seconds()
        self.server_end, self.bench_end = self.server_start, self.bench_start

    def copies_arrived(self) -> None:
        self.server_end = self.watch.cpu_seconds()
        self.bench_end = procstat.own_cpu_seconds()

    def report(self, result: BenchResult, wall: float) -> None:
        server = None
        if self.server_start is not None and self.server_end is not None:
            server = self.server_end - self.server_start
        bench = self.bench_end - self.bench_start
        if wall < MIN_CPU_WALL_S:
            result.notes.append(
                f"the send phase was too short for the CPU clock ({wall * 1000:.0f} ms; CPU"
                f" times tick every {CLOCK_TICK * 1000:g} ms): CPU not measured"
            )
            return
        result.bench_cpu_pct = round(100 * bench / wall, 1)
        if result.delivered and bench >= MIN_CPU_TICKS * CLOCK_TICK:
            result.bench_cpu_us_per_copy = round(bench / result.delivered * 1e6, 4)
        elif result.delivered:
            result.notes.append(
                f"the bench spent under {MIN_CPU_TICKS} CPU clock ticks ({bench * 1000:.0f} ms):"
                " its own CPU per copy is not measured"
            )
        if server is None:
            return
        result.server_cpu_pct = round(100 * server / wall, 1)
        # A one-thread server is read to the nanosecond (procstat), others to the tick.
        if result.delivered and server >= MIN_CPU_TICKS * self.watch.cpu_resolution:
            result.server_cpu_us_per_copy = round(server / result.delivered * 1e6, 4)
        elif result.delivered:
            result.notes.append(
                f"the server spent under {MIN_CPU_TICKS} CPU clock ticks: its CPU per copy is"
                " not measured"
            )

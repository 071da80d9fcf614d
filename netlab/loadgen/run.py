"""One bench run: join every client, let the senders send, count the copies, sample the
server's process (when it is on this machine) and the bench's own CPU."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import time

from netlab import aio, net, procstat, stats
from netlab.loadgen.config import SYNC, BenchConfig, BenchError, BenchResult
from netlab.loadgen.counter import Bench, BenchClient
from netlab.procstat import ProcessWatch
from netlab.protocol.client_session import Dialect
from netlab.serve.config import ServerConfig

PROBES = 8
MIN_CPU_WALL_S = 0.1
MAX_LATENCY_SAMPLES = 50_000
"""Parsing a timed copy costs about a microsecond: beyond this many, sample every k-th message."""
CONNECTS_AT_ONCE = 256
"""Connections in progress at once: enough to join thousands quickly, few enough to stay
within the server's listen backlog."""
LINES_CONNECTS_AT_ONCE = 8
"""The same for a relay with no handshake, which may have a tiny backlog (ncat's is 10): a
connection counts as in progress until the first bytes arrive on it (or ``LINES_QUIET``)."""
LINES_QUIET = 0.5
SYNC_LINE = SYNC + b"\n"
RSS_EVERY = 0.1
"""Seconds between samples of the server's memory, for its peak."""


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


async def measure(config: BenchConfig, host: str, port: int, server_pid: int | None) -> BenchResult:
    """One run against the server at ``host:port``."""
    loop = asyncio.get_running_loop()
    bench = Bench(config, time.perf_counter_ns())
    watch = ProcessWatch(server_pid)
    where = net.format_address(host, port)
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
    lines = config.protocol == Dialect.lines.value
    gate = asyncio.Semaphore(LINES_CONNECTS_AT_ONCE if lines else CONNECTS_AT_ONCE)

    async def join(client: BenchClient) -> None:
        async with gate:
            await loop.create_connection(lambda: client, host, port)
            if not lines:
                await client.joined
            else:
                # Anything said to it (a greeting, another client's sync) shows that the
                # server has accepted it; a silent server gets a short wait instead.
                await asyncio.wait([client.heard], timeout=LINES_QUIET)

    started = time.perf_counter()
    try:
        try:
            joins = [loop.create_task(join(c)) for c in clients]
            done, pending = await asyncio.wait(joins, timeout=config.join_timeout)
            for task in pending:
                task.cancel()
            errors = [t.exception() for t in done if t.exception() is not None]
            if lines and not errors:
                await sync_lines(clients, config.join_timeout)
            result.joined = sum(1 for c in clients if c.counting and not c.lost)
            result.join_s = round(time.perf_counter() - started, 3)
            if result.joined < config.clients:
                first = errors[0] if errors else None
                if isinstance(first, OSError) and result.joined == 0:
                    raise BenchError(f"cannot connect to {where}: {first.strerror or first}")
                why = f": {first}" if first else f" within {config.join_timeout:g}s"
                result.notes.append(f"{config.clients - result.joined} clients did not join{why}")
            idle_rss = watch.rss()
            if base_rss is not None and idle_rss is not None and result.joined:
                result.server_kb_per_idle_client = round(
                    (idle_rss - base_rss) / result.joined / 1024, 2
                )
            await send_and_count(bench, clients, result, watch)
        finally:
            for c in clients:
                if c.transport is None:
                    continue
                if lines:
                    # ncat quits when a connection it is accepting has been reset.
                    c.transport.close()
                else:
                    # A reset: no TIME_WAIT left behind, and the handout server's threads
                    # see an error instead of spinning on empty receives.
                    net.reset(c.transport)
            await asyncio.sleep(0)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    if watch.peak_rss:
        result.server_rss_mb = round(watch.peak_rss / 2**20, 1)
    if bench.rate_limited:
        result.notes.append("the server rate-limited the senders (netlab serve: --rate-limit 0)")
    return result


async def sync_lines(clients: list[BenchClient], timeout: float) -> None:
    """A relay with no handshake: repeat a sync line until every other client has seen one,
    so that no one starts counting before the server has registered everyone."""
    sender = clients[0]
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and not sender.lost:
        assert sender.transport is not None
        sender.transport.write(SYNC_LINE)
        waiting = [c.joined for c in clients[1:] if not c.joined.done()]
        if not waiting:
            break
        await asyncio.wait(waiting, timeout=0.25)
        if all(c.joined.done() for c in clients[1:]):
            break
    # The sync's own copies may still be on their way back; the sender cannot see its own.
    sender._joined(b"")


async def send_and_count(
    bench: Bench, clients: list[BenchClient], result: BenchResult, watch: ProcessWatch
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
    server_cpu, my_cpu = watch.cpu_seconds(), procstat.own_cpu_seconds()
    start = time.perf_counter()
    bench.last_copy = start
    sending = [
        asyncio.ensure_future(c.send_messages(config.messages, config.rate, stride, start))
        for c in senders
    ]
    deadline = start + config.run_timeout
    try:
        while not bench.complete.done():
            before = bench.delivered
            await asyncio.wait([bench.complete], timeout=0.25)
            now = time.perf_counter()
            quiet = now - bench.last_copy
            if all(s.done() for s in sending) and quiet > config.settle_timeout:
                break
            if now > deadline or (before == bench.delivered and all(c.lost for c in senders)):
                break
    finally:
        for s in sending:
            if not s.done():
                s.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        gc.enable()
        gc.unfreeze()
    end = bench.last_copy if bench.delivered else time.perf_counter()
    bench.measuring = False
    wall = max(end - start, 1e-9)
    result.sent = sum(s.result() for s in sending if not s.cancelled() and s.exception() is None)
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
    # CPU times tick in hundredths of a second: over a shorter run a percentage means nothing.
    if wall < MIN_CPU_WALL_S:
        result.notes.append(f"the run took under {MIN_CPU_WALL_S:g} s: CPU not measured")
    else:
        if server_cpu is not None and (after := watch.cpu_seconds()) is not None:
            result.server_cpu_pct = round(100 * (after - server_cpu) / wall, 1)
        result.bench_cpu_pct = round(100 * (procstat.own_cpu_seconds() - my_cpu) / wall, 1)
    if result.dropped_clients:
        result.notes.append(f"{result.dropped_clients} clients were disconnected during the run")

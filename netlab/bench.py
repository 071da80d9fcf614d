"""``netlab bench``: fan-out throughput and latency of a chat server, measured from outside.

The bench joins ``clients`` connections, lets the first ``senders`` of them send ``messages``
each, and counts the copies that reach the others. It has to keep up with millions of copies a
second in one Python process, so nothing is decoded per message:

* every message carries a fixed-format payload (``PAYLOAD_FORMAT``) of ``--size`` bytes,
  starting with the marker ``@@``; a receiver counts copies with one ``bytes.count`` per
  receive (C speed), whatever the server put around them (a netlab stamp and nick, ncat's
  ``<user#N>`` prefix, the handout server's unframed chunks);
* a sender also counts its own marker (``@@<sender id>``), so a server that echoes a message to
  its sender is seen, and those copies are not counted as deliveries;
* latency is sampled, not tracked per copy: a few *probe* receivers parse the send time out of
  the messages marked as timed (every message at default sizes, every k-th one when a run is
  so big that parsing them all would slow the bench down).

The protocols: ``netlab`` answers the ``NICK`` prompt with a line and waits for
``Connected to server!``; ``handout`` answers with a bare nickname, as the handout's client
does; ``lines`` is any line relay with no handshake (``ncat --chat``): a client counts as joined
once it has received a sync line that another bench client sent through the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from netlab import aio, embedded
from netlab import protocol as p

PROTOCOLS = ("netlab", "handout", "lines")
FORMATS = ("table", "json")

MARK = b"@@"
PAYLOAD_FORMAT = "@@{sender:05d}{kind}{seq:07d}{kind}{sent_us:011d}"
"""A message's first bytes; the rest of its ``--size`` bytes are padding. ``kind`` is ``^`` on
messages whose send time a probe reads, ``-`` on the others."""
TIMED, UNTIMED = "^", "-"
RECORD = len(PAYLOAD_FORMAT.format(sender=0, kind=TIMED, seq=0, sent_us=0))
MIN_SIZE = RECORD
MAX_SIZE = 3000
"""Below netlab serve's default longest line (4096 bytes) with room for its stamp and nick."""
SYNC = b"#netlab-bench-sync#"

PROBES = 8
MIN_CPU_WALL_S = 0.1
MAX_LATENCY_SAMPLES = 50_000
"""Parsing a timed copy costs about a microsecond: beyond this many, sample every k-th message."""
SENDER_WRITE_LIMIT = 256 * 1024
"""A sender stops writing while this much is queued to a server that is not reading."""
CONNECTS_AT_ONCE = 256
"""Connections in progress at once: enough to join thousands quickly, few enough to stay
within the server's listen backlog."""
LINES_CONNECTS_AT_ONCE = 8
"""The same for a relay with no handshake, which may have a tiny backlog (ncat's is 10): a
connection counts as in progress until the first bytes arrive on it (or ``LINES_QUIET``)."""
LINES_QUIET = 0.5


class BenchError(Exception):
    """A problem to report in one line (bad target, unreachable server): no traceback."""


@dataclass
class BenchConfig:
    target: str | None = None
    """``HOST:PORT`` of a running server; None: start a ``netlab serve`` for the run."""
    protocol: str = "netlab"
    clients: int = 200
    senders: int = 20
    messages: int = 200
    """Messages per sender."""
    rate: float = 0.0
    """Messages per second per sender; 0: as fast as the server takes them."""
    size: int = 32
    """Payload bytes per message."""
    format: str = "table"
    join_timeout: float = 60.0
    settle_timeout: float = 3.0
    """After the last send, a run ends when no copy has arrived for this long."""
    run_timeout: float = 300.0

    def problem(self) -> str | None:
        """Why this configuration cannot run, or None."""
        if self.protocol not in PROTOCOLS:
            return f"unknown protocol {self.protocol!r}: use one of {', '.join(PROTOCOLS)}"
        if self.format not in FORMATS:
            return f"unknown format {self.format!r}: use one of {', '.join(FORMATS)}"
        if self.clients < 2:
            return "--clients must be at least 2 (one to send, one to receive)"
        if not 1 <= self.senders <= self.clients:
            return f"--senders must be between 1 and --clients ({self.clients})"
        if not 0 <= self.messages <= 9_999_999:
            return "--messages must be between 0 and 9999999"
        if self.rate < 0 or math.isnan(self.rate):
            return "--rate must be 0 (as fast as possible) or more"
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            return f"--size must be between {MIN_SIZE} and {MAX_SIZE} bytes"
        if self.target is not None:
            try:
                parse_target(self.target)
            except BenchError as error:
                return str(error)
        return None


def parse_target(target: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` as (host, port)."""
    m = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\s]+):(\d+)", target.strip())
    if not m:
        raise BenchError(f"bad --target {target!r}: expected HOST:PORT, e.g. 127.0.0.1:55555")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 1 <= port <= 65535:
        raise BenchError(f"bad --target {target!r}: port must be 1-65535")
    return host, port


@dataclass
class BenchResult:
    target: str
    protocol: str
    server: str
    clients: int
    joined: int
    join_s: float
    senders: int
    messages: int
    size: int
    rate: float
    sent: int = 0
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    echoed: int = 0
    dropped_clients: int = 0
    elapsed_s: float | None = None
    deliveries_per_s: int | None = None
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    latency_ms_p99: float | None = None
    latency_ms_max: float | None = None
    latency_samples: int = 0
    server_cpu_pct: float | None = None
    server_rss_mb: float | None = None
    server_kb_per_idle_client: float | None = None
    bench_cpu_pct: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.joined == self.clients and self.delivered == self.expected


# ---- the server's process, when it is on this machine ------------------------------------


class ServerWatch:
    """CPU and memory of the server process, sampled by psutil (None when it is remote)."""

    def __init__(self, pid: int | None) -> None:
        import psutil

        self.process: psutil.Process | None = None
        self.peak_rss = 0
        self.name = "-"
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                self.process = psutil.Process(pid)
                self.name = f"{describe(self.process)} (pid {pid})"

    def rss(self) -> int | None:
        if self.process is None:
            return None
        try:
            value = self.process.memory_info().rss
        except Exception:
            self.process = None
            return None
        self.peak_rss = max(self.peak_rss, value)
        return value

    def cpu(self) -> float | None:
        if self.process is None:
            return None
        try:
            times = self.process.cpu_times()
        except Exception:
            self.process = None
            return None
        return times.user + times.system

    async def sample_forever(self, every: float = 0.1) -> None:
        while self.process is not None:
            self.rss()
            await asyncio.sleep(every)


def describe(process: Any) -> str:
    """``ncat``, ``netlab``, or for a script run by Python, ``python3 server.py``."""
    name = process.name()
    command = process.cmdline()
    if name.startswith("python") and len(command) > 1 and not command[1].startswith("-"):
        name += " " + os.path.basename(command[1])
    return name


def listening_pid(host: str, port: int) -> int | None:
    """The process listening on ``port`` when ``host`` is this machine, else None."""
    import socket

    import psutil

    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except OSError:
        return None
    local = {a.address for nics in psutil.net_if_addrs().values() for a in nics}
    if not any(ipaddress.ip_address(a.split("%")[0]).is_loopback or a in local for a in addresses):
        return None
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    return None


# ---- one bench connection ----------------------------------------------------------------


class Bench:
    """The shared counters of one run; connections add to them as they read."""

    def __init__(self, config: BenchConfig, epoch_ns: int) -> None:
        self.config = config
        self.epoch_ns = epoch_ns
        self.delivered = 0
        self.echoed = 0
        self.expected = 0
        self.last_copy = 0.0
        self.complete = asyncio.get_running_loop().create_future()
        self.samples: list[int] = []
        self.dropped = 0
        self.rate_limited = False
        self.measuring = False
        self.synced = 0

    def counted(self, copies: int, now: float) -> None:
        self.delivered += copies
        self.last_copy = now
        if self.delivered >= self.expected and self.measuring and not self.complete.done():
            self.complete.set_result(None)


class BenchClient(asyncio.Protocol):
    """One connection: joins, then only counts markers (and, as a probe, reads send times)."""

    def __init__(
        self, bench: Bench, index: int, nick: str, sender_id: int | None, probe: bool
    ) -> None:
        self.bench = bench
        self.index = index
        self.nick = nick
        self.sender_id = sender_id
        self.own = (b"@@%05d" % sender_id) if sender_id is not None else b""
        self.probe = probe
        self.transport: asyncio.Transport | None = None
        self.joined = asyncio.get_running_loop().create_future()
        self.heard = asyncio.get_running_loop().create_future()
        self.handshake = p.ClientHandshake()
        self.greeting = b""
        self.answered = False
        self.counting = False
        self.tail = b""  # the last bytes of the previous receive, for markers cut in two
        self.carry = b""  # a probe's unparsed end of the previous receive
        self.writable: asyncio.Future[None] | None = None
        self.lost = False

    # -- asyncio callbacks --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.bench.config.protocol == "lines":
            # Say something at once: a server whose listen backlog overflowed (ncat's is 10)
            # may have answered with a SYN cookie and dropped our ACK; only data we send makes
            # the kernel retry until the connection really exists on its side.
            transport.write(SYNC + b"\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.heard.done():
            self.heard.set_result(None)
        if self.counting:
            self.count(data)
        else:
            self.joining(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.joined.done():
            reason = self.greeting.decode(errors="replace").strip() or "connection closed"
            self.joined.set_exception(BenchError(reason))
            self.joined.exception()  # seen here: nobody may be waiting any more
        elif self.bench.measuring:
            self.bench.dropped += 1
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    # -- joining --

    def joining(self, data: bytes) -> None:
        config = self.bench.config
        self.greeting += data
        if config.protocol == "lines":
            at = self.greeting.find(SYNC)
            if at >= 0:
                self._joined(self.greeting[at + len(SYNC) :])
            else:
                self.greeting = self.greeting[-len(SYNC) :]
            return
        if not self.answered:
            state = self.handshake.feed(data)
            if state is None:
                return
            if state == "refused":
                assert self.transport is not None
                self.transport.close()
                return
            self.answered = True
            answer = self.nick if config.protocol == "handout" else self.nick + "\n"
            assert self.transport is not None
            self.transport.write(answer.encode())
            self.greeting = self.handshake.rest
        at = self.greeting.find(p.CONNECTED.encode())
        if at >= 0:
            self._joined(self.greeting[at:])
        elif len(self.greeting) > 64 * 1024:
            self.greeting = self.greeting[-64:]

    def _joined(self, rest: bytes) -> None:
        self.greeting = b""
        self.counting = True
        if not self.joined.done():
            self.joined.set_result(None)
        if rest:
            self.count(rest)

    # -- counting --

    def count(self, data: bytes) -> None:
        # ``tail`` is the end of the stream so far, so that a marker cut over two (or more)
        # receives is counted once, in the receive that completes it.
        tail = self.tail
        copies = data.count(MARK)
        if tail:
            copies += (tail[-1:] + data[:1]).count(MARK)
        own = 0
        if self.own:
            keep = len(self.own) - 1
            own = data.count(self.own)
            if tail:
                own += (tail + data[:keep]).count(self.own)
            self.tail = data[-keep:] if len(data) >= keep else (tail + data)[-keep:]
            if not self.bench.rate_limited and b"Slow down" in data:
                self.bench.rate_limited = True
        else:
            self.tail = data[-1:]
        if copies or own or self.probe:
            now = time.perf_counter()
            if own:
                self.bench.echoed += own
            if copies or own:
                self.bench.counted(copies - own, now)
            if self.probe:
                self.sample(data, now)

    def sample(self, data: bytes, now: float) -> None:
        buffer = self.carry + data if self.carry else data
        now_us = (int(now * 1e9) - self.bench.epoch_ns) // 1000
        samples = self.bench.samples
        safe = max(0, len(buffer) - (RECORD - 1))
        find = buffer.find
        at = find(b"^")
        while at >= 0:
            start = at - 7
            end = start + RECORD
            if start >= 0 and buffer[start : start + 2] == MARK:
                if end > len(buffer):
                    safe = min(safe, start)
                    break
                samples.append(now_us - int(buffer[end - 11 : end]))
                safe = max(safe, end)
                at = find(b"^", end)
            else:
                at = find(b"^", at + 1)
        self.carry = buffer[safe:]

    # -- sending --

    async def send_messages(self, count: int, rate: float, stride: int, started: float) -> int:
        """Send ``count`` messages; return how many were written."""
        assert self.transport is not None and self.sender_id is not None
        config = self.bench.config
        epoch_ns = self.bench.epoch_ns
        pad = "." * (config.size - RECORD)
        handout = config.protocol == "handout"
        write = self.transport.write
        sent = 0
        for seq in range(count):
            if rate:
                delay = started + seq / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif seq % 8 == 7:
                # Let the readers run between bursts, as separate clients would.
                await asyncio.sleep(0)
            if self.writable is not None:
                await self.writable
            if self.lost:
                break
            payload = PAYLOAD_FORMAT.format(
                sender=self.sender_id,
                kind=TIMED if seq % stride == 0 else UNTIMED,
                seq=seq,
                sent_us=(time.perf_counter_ns() - epoch_ns) // 1000,
            )
            text = p.handout_message(self.nick, payload + pad) if handout else payload + pad
            write(text.encode() + b"\n")
            sent += 1
        return sent


# ---- a run -------------------------------------------------------------------------------


def timed_stride(messages: int, probes: int) -> int:
    """Time every k-th of ``messages`` (each read by ``probes`` probes), so that the probes
    parse at most about ``MAX_LATENCY_SAMPLES`` send times in all: this k."""
    return max(1, math.ceil(messages * probes / MAX_LATENCY_SAMPLES))


def percentile(ordered: list[int], fraction: float) -> float:
    """Nearest-rank percentile of sorted samples."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


async def measure(config: BenchConfig, host: str, port: int, server_pid: int | None) -> BenchResult:
    """One run against the server at ``host:port``."""
    loop = asyncio.get_running_loop()
    bench = Bench(config, time.perf_counter_ns())
    watch = ServerWatch(server_pid)
    import psutil

    me = psutil.Process()
    result = BenchResult(
        target=f"{host}:{port}",
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
    sampler = loop.create_task(watch.sample_forever())
    run_id = os.urandom(2).hex()
    probes = min(PROBES, config.clients)
    probe_every = max(1, config.clients // probes)
    clients = [
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
    lines = config.protocol == "lines"
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
                    raise BenchError(f"cannot connect to {host}:{port}: {first.strerror or first}")
                why = f": {first}" if first else f" within {config.join_timeout:g}s"
                result.notes.append(f"{config.clients - result.joined} clients did not join{why}")
            idle_rss = watch.rss()
            if base_rss is not None and idle_rss is not None and result.joined:
                result.server_kb_per_idle_client = round(
                    (idle_rss - base_rss) / result.joined / 1024, 2
                )
            await send_and_count(bench, clients, result, watch, me)
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
                    c.transport.abort()
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
        sender.transport.write(SYNC + b"\n")
        waiting = [c.joined for c in clients[1:] if not c.joined.done()]
        if not waiting:
            break
        await asyncio.wait(waiting, timeout=0.25)
        if all(c.joined.done() for c in clients[1:]):
            break
    # The sync's own copies may still be on their way back; the sender cannot see its own.
    sender._joined(b"")


async def send_and_count(
    bench: Bench, clients: list[BenchClient], result: BenchResult, watch: ServerWatch, me: Any
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
    server_cpu, my_cpu = watch.cpu(), me.cpu_times()
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
    ordered = sorted(bench.samples)
    if ordered:
        result.latency_samples = len(ordered)
        for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)):
            value = round(percentile(ordered, fraction) / 1000, 3)
            setattr(result, f"latency_ms_{name}", value)
    # CPU times tick in hundredths of a second: over a shorter run a percentage means nothing.
    if wall < MIN_CPU_WALL_S:
        result.notes.append(f"the run took under {MIN_CPU_WALL_S:g} s: CPU not measured")
    else:
        if server_cpu is not None and (after := watch.cpu()) is not None:
            result.server_cpu_pct = round(100 * (after - server_cpu) / wall, 1)
        mine = me.cpu_times()
        result.bench_cpu_pct = round(
            100 * ((mine.user + mine.system) - (my_cpu.user + my_cpu.system)) / wall, 1
        )
    if result.dropped_clients:
        result.notes.append(f"{result.dropped_clients} clients were disconnected during the run")


# ---- a server of its own -----------------------------------------------------------------


def own_server_options(clients: int) -> list[str]:
    """The bench's own ``netlab serve``: rate limit off, room for everyone."""
    return ["--rate-limit", "0", "--max-clients", str(clients + 64), "--log-level", "warning"]


# ---- output ------------------------------------------------------------------------------

ROWS = (
    ("target", "target"),
    ("server", "server"),
    ("protocol", "protocol"),
    ("clients joined", "joined"),
    ("join time (s)", "join_s"),
    ("senders x messages", None),
    ("payload bytes", "size"),
    ("rate per sender (msg/s)", "rate"),
    ("messages sent", "sent"),
    ("copies expected", "expected"),
    ("copies delivered", "delivered"),
    ("copies lost", "lost"),
    ("copies echoed to sender", "echoed"),
    ("run time (s)", "elapsed_s"),
    ("deliveries per second", "deliveries_per_s"),
    ("latency p50 (ms)", "latency_ms_p50"),
    ("latency p95 (ms)", "latency_ms_p95"),
    ("latency p99 (ms)", "latency_ms_p99"),
    ("latency max (ms)", "latency_ms_max"),
    ("latency samples", "latency_samples"),
    ("server CPU (%)", "server_cpu_pct"),
    ("server peak RSS (MB)", "server_rss_mb"),
    ("server KB per idle client", "server_kb_per_idle_client"),
    ("bench CPU (%)", "bench_cpu_pct"),
)


def result_rows(result: BenchResult) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for label, key in ROWS:
        if key is None:
            value: Any = f"{result.senders} x {result.messages}"
        elif key == "joined":
            value = f"{result.joined} / {result.clients}"
        elif key == "rate":
            value = result.rate or "as fast as possible"
        else:
            value = getattr(result, key)
        rows.append((label, value))
    return rows


def render(result: BenchResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({**asdict(result), "complete": result.complete}, indent=2)
    from netlab import tables

    rows = [{"metric": label, "value": value} for label, value in result_rows(result)]
    text = tables.render(rows, {"metric": "metric", "value": "value"}, tables.TABLE)
    notes = "".join(f"\nnote: {note}" for note in result.notes)
    return text + notes


# ---- the command -------------------------------------------------------------------------


def run(config: BenchConfig) -> int:
    """``netlab bench``: 0 when every client joined and every copy arrived, 1 when not (or on
    an error, told in one line), 2 for bad arguments."""
    problem = config.problem()
    if problem:
        print(f"netlab bench: {problem}", file=sys.stderr)
        return 2
    try:
        if config.target is None:
            with embedded.running(own_server_options(config.clients)) as server:
                result = aio.run(measure(config, server.host, server.port, server.pid))
        else:
            host, port = parse_target(config.target)
            result = aio.run(measure(config, host, port, listening_pid(host, port)))
    except (BenchError, embedded.ServerStartError) as error:
        print(f"netlab bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(render(result, config.format), flush=True)
    if not result.complete:
        print(
            f"netlab bench: incomplete: {result.joined}/{result.clients} joined,"
            f" {result.delivered}/{result.expected} copies delivered",
            file=sys.stderr,
        )
        return 1
    return 0

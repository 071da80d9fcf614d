"""What a bench run is asked to do, what it found, and the payload every message carries."""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab import net
from netlab.bounds import positive
from netlab.protocol.client_session import Dialect

FORMATS = ("table", "json")

MARK = b"@@@@"
"""What a receiver counts. Four bytes, not two: ``bytes.count`` skips up to len + 1 bytes at a
step, so a 4-byte marker is counted about 40 % faster than ``@@`` (docs/performance.md, the
bench against a plain counter); one repeated byte keeps a marker cut between receives a
matter of run lengths (counter.py)."""
PAYLOAD_FORMAT = "@@@@{sender:05d}{kind}{seq:07d}{kind}{sent_us:011d}"
"""A message's first bytes; the rest of its ``--size`` bytes are padding. ``kind`` is ``^`` on
messages whose send time a probe reads, ``-`` on the others."""
TIMED, UNTIMED = "^", "-"
RECORD = len(PAYLOAD_FORMAT.format(sender=0, kind=TIMED, seq=0, sent_us=0))
MIN_SIZE = RECORD
MAX_SIZE = 3000
"""Below netlab serve's default longest line (4096 bytes) with room for its stamp and nick."""
SYNC = b"#netlab-bench-sync#"


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
    join_timeout: float = 10.0
    """A join gives up when no client has got in (or been turned away) for this long."""
    settle_timeout: float = 3.0
    """After the last send, a run ends when no copy has arrived for this long."""
    run_timeout: float = 300.0
    compare: str | None = None
    """``netlab,ncat[,handout]``: servers to start and measure side by side, round by round."""
    rounds: int = 5
    html: str | None = None
    """Also draw the result as one HTML file here (netlab/html/bench.py)."""
    servers: int = 1
    """Above 1, without a target: an embedded cluster of this many servers (docs/cluster.md)."""

    def problem(self) -> str | None:
        """Why this configuration cannot run, or None."""
        protocols = [d.value for d in Dialect]
        if self.protocol not in protocols:
            return f"unknown protocol {self.protocol!r}: use one of {', '.join(protocols)}"
        if self.format not in FORMATS:
            return f"unknown format {self.format!r}: use one of {', '.join(FORMATS)}"
        if self.clients < 2:
            return "--clients must be at least 2 (one to send, one to receive)"
        if not 1 <= self.senders <= self.clients:
            return f"--senders must be between 1 and --clients ({self.clients})"
        if not 0 <= self.messages <= 9_999_999:
            return "--messages must be between 0 and 9999999"
        if not (self.rate == 0 or positive(self.rate)):
            return "--rate must be 0 (as fast as possible) or a finite number of messages a second"
        if not positive(self.join_timeout):
            return "--join-timeout must be a finite number of seconds, more than 0"
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            return f"--size must be between {MIN_SIZE} and {MAX_SIZE} bytes"
        if self.target is not None:
            try:
                self.addresses()
            except BenchError as error:
                return str(error)
        if self.servers > 1 and (self.target is not None or self.compare is not None):
            return "--servers starts a cluster of its own: not with --target or --compare"
        if self.compare is not None and self.target is not None:
            return "--compare starts each server itself on a free port: not with --target"
        if self.compare is None and self.rounds != 5:
            return "--rounds goes with --compare (rounds of each server, side by side)"
        if self.html:
            from netlab import html

            if problem := html.unwritable(self.html):
                return f"--html: {problem}"
        return None

    def address(self) -> tuple[str, int]:
        """``--target`` as (host, port), the first when it lists several."""
        return self.addresses()[0]

    def addresses(self) -> list[tuple[str, int]]:
        """``--target`` as (host, port) pairs; BenchError says what is wrong with it."""
        assert self.target is not None
        try:
            return net.parse_targets(self.target)
        except ValueError as error:
            # net says "bad address 'x': why"; the option's name tells the user more.
            why = str(error).split(": ", 1)[-1]
            raise BenchError(f"bad --target {self.target!r}: {why}") from None


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
    server_cpu_us_per_copy: float | None = None
    """The server's CPU time (user + system) over the send phase, per delivered copy."""
    bench_cpu_us_per_copy: float | None = None
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.joined == self.clients and self.delivered == self.expected

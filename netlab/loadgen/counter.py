"""One bench connection, and the counters a run's connections share.

A connection joins through the sans-IO ``ClientSession`` (the prompt, the nickname, the
welcome, a refusal) and, once the session has reported ``Joined``, reads raw: copies are
counted by their markers with one ``bytes.count`` per receive, because decoding lines would
cost the bench more per copy than the server spends (docs/performance.md, the ceiling).
"""

from __future__ import annotations

import asyncio
import time

from netlab import protocol as p
from netlab.loadgen.config import (
    MARK,
    PAYLOAD_FORMAT,
    RECORD,
    SYNC,
    TIMED,
    UNTIMED,
    BenchConfig,
    BenchError,
)
from netlab.protocol.client_session import Dialect

PAYLOAD_BYTES = b"%s%c%07d%c%011d%s"
"""``PAYLOAD_FORMAT`` as bytes: (the marker and sender, kind, seq, kind, send time, the rest)."""


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
        self.stop = asyncio.Event()
        """Set by Ctrl-C: the run ends and reports what it has measured so far."""

    def counted(self, copies: int, now: float) -> None:
        self.delivered += copies
        self.last_copy = now
        if self.delivered >= self.expected and self.measuring and not self.complete.done():
            self.complete.set_result(None)


AT = MARK[:1]
RUN = len(MARK)
"""The marker is one byte repeated: a stream holds ``run // RUN`` markers per run of that byte,
whatever the receives cut it into."""
KIND_AT = PAYLOAD_FORMAT.format(sender=0, kind=TIMED, seq=0, sent_us=0).index(TIMED)
"""Where a record's first ``^`` (or ``-``) is, after the marker and the sender."""
SLOW_DOWN_FIRST = p.slow_down(1).encode()[:1]
"""The first byte of netlab serve's rate-limit warning: a receive without it (a ``memchr``)
needs no search for the whole text."""


def run_length(data: bytes, first: bool) -> int:
    """How many AT bytes ``data`` starts (``first``) or ends with; a copy of the whole
    receive only when a whole marker is there, never for a marker cut by the receive."""
    if first:
        piece = data if data.startswith(MARK) else data[:RUN]
        return len(piece) - len(piece.lstrip(AT))
    piece = data if data.endswith(MARK) else data[-RUN:]
    return len(piece) - len(piece.rstrip(AT))


class MarkerCounter:
    """Counts the copies in one connection's raw stream by their markers, exactly: a marker
    cut between two receives once, a sender's own copies (an echo) apart; as a probe, reads
    the send times of timed copies.

    Per receive: one ``bytes.count`` of the marker over the whole receive, as a plain counter
    would; what else there is, is per receive and small (a byte compare for a cut marker; a
    sender's count of its own marker; a probe's ``memchr`` for timed records), never a copy
    of the receive (docs/performance.md)."""

    def __init__(self, bench: Bench, sender_id: int | None, probe: bool) -> None:
        self.bench = bench
        self.own = (MARK + b"%05d" % sender_id) if sender_id is not None else b""
        self.probe = probe
        self.run = 0  # the length (mod RUN) of the run of AT that ended the previous receive
        self.tail = b""  # a sender's: the last bytes of the previous receive
        self.carry = b""  # a probe's: the last RECORD - 1 bytes of the previous receive

    def count(self, data: bytes) -> None:
        copies = data.count(MARK)
        if self.run or data[-1:] == AT:
            copies += self.cut(data)
        own = self.count_own(data) if self.own else 0
        if copies or own or self.probe:
            now = time.perf_counter()
            if own:
                self.bench.echoed += own
            if copies or own:
                self.bench.counted(copies - own, now)
            if self.probe:
                self.sample(data, now)

    def cut(self, data: bytes) -> int:
        """The marker completed by this receive across the cut (0 or 1), and the run of AT it
        leaves open: ``data.count`` saw this receive's first run alone, the stream sees it
        joined to the previous receive's last (rare: a receive seldom ends in a marker)."""
        extra = 0
        if self.run and data[:1] == AT:
            extra = (self.run + run_length(data, first=True) % RUN) // RUN
        if data[-1:] == AT:
            trail = run_length(data, first=False)
            self.run = (self.run + trail if trail == len(data) else trail) % RUN
        else:
            self.run = 0
        return extra

    def count_own(self, data: bytes) -> int:
        """A sender's own copies in this receive (an echoing server), and the rate limit."""
        own = data.count(self.own)
        keep = len(self.own) - 1
        tail = self.tail
        if AT in tail:  # the previous receive may have ended inside an own marker
            own += (tail + data[:keep]).count(self.own)
        self.tail = data[-keep:] if len(data) >= keep else (tail + data)[-keep:]
        if not self.bench.rate_limited and SLOW_DOWN_FIRST in data and p.is_slow_down(data):
            self.bench.rate_limited = True
        return own

    def sample(self, data: bytes, now: float) -> None:
        """The send times of the timed records this receive completes, found by ``memchr``
        for their ``^``; a record cut by the receive is read from the small carry."""
        now_us = (int(now * 1e9) - self.bench.epoch_ns) // 1000
        carry = self.carry
        if carry:
            # The records that began in the carry and end in this receive, and only those.
            self.parse(carry + data[: RECORD - 1], now_us, len(carry))
        self.parse(data, now_us, 0)
        keep = RECORD - 1
        self.carry = data[-keep:] if len(data) >= keep else (carry + data)[-keep:]

    def parse(self, buffer: bytes, now_us: int, seen: int) -> None:
        """Read the send time of every timed record inside ``buffer`` that ends after
        ``seen`` (the records ending sooner were read with the previous receive)."""
        samples = self.bench.samples
        find = buffer.find
        size = len(buffer)
        at = find(b"^", max(0, seen - RECORD + 1) + KIND_AT)
        while at >= 0:
            start = at - KIND_AT
            end = start + RECORD
            if end > size:
                break  # cut: read with the next receive, from the carry
            sent = buffer[end - 11 : end]
            # A record, not a ``^`` in other text: the marker before it, digits after it.
            if end > seen and buffer.startswith(MARK, start) and sent.isdigit():
                samples.append(now_us - int(sent))
                at = find(b"^", end)
            else:
                at = find(b"^", at + 1)


class BenchClient(MarkerCounter, asyncio.Protocol):
    """One connection: joins through its session, then only counts markers; a sender sends."""

    def __init__(
        self, bench: Bench, index: int, nick: str, sender_id: int | None, probe: bool
    ) -> None:
        MarkerCounter.__init__(self, bench, sender_id, probe)
        self.index = index
        self.nick = nick
        self.sender_id = sender_id
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.joined = loop.create_future()
        self.heard = loop.create_future()
        self.session = p.ClientSession(nick, bench.config.protocol)
        self.lines = self.session.dialect is Dialect.lines
        self.greeting = b""  # lines: the stream so far, while looking for the sync
        self.refusal = ""
        self.counting = False
        self.writable: asyncio.Future[None] | None = None
        self.lost = False
        self.sent = 0
        """Messages written so far (kept when a run is cut short)."""

    # -- asyncio callbacks --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.lines:
            # Say something at once: a server whose listen backlog overflowed (ncat's is 10)
            # may have answered with a SYN cookie and dropped our ACK; only data we send makes
            # the kernel retry until the connection really exists on its side.
            transport.write(SYNC + b"\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.heard.done():
            self.heard.set_result(None)
        if self.counting:
            self.count(data)
        elif self.lines:
            self.syncing(data)
        else:
            self.joining(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.joined.done():
            self.joined.set_exception(BenchError(self.refusal or "connection closed"))
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
        """The handshake, through the session; what follows the welcome is counted."""
        assert self.transport is not None
        session = self.session
        events = session.receive_data(data)
        if session.holding and session.phase == "joining":
            events += session.flush()  # a welcome is never cut by a full receive
        after: list[bytes] = []
        for event in events:
            if isinstance(event, p.Prompted):
                self.transport.write(event.reply)
            elif isinstance(event, p.Refused | p.Rejected):
                self.refusal = event.text if isinstance(event, p.Refused) else event.reason
                self.transport.close()
            elif isinstance(event, p.Joined):
                self.counting = True
            elif isinstance(event, p.Received) and self.counting:
                after.append(event.text.encode() + b"\n")
        if self.counting:
            self._joined(b"".join(after))

    def syncing(self, data: bytes) -> None:
        """A relay with no handshake: joined once a sync line came back through the server."""
        self.greeting += data
        at = self.greeting.find(SYNC)
        if at >= 0:
            self._joined(self.greeting[at + len(SYNC) :])
        else:
            self.greeting = self.greeting[-len(SYNC) :]

    def _joined(self, rest: bytes) -> None:
        self.greeting = b""
        self.counting = True
        if not self.joined.done():
            self.joined.set_result(None)
        if rest:
            self.count(rest)

    # -- sending --

    def framing(self) -> tuple[bytes, bytes] | None:
        """What the session puts before and after a message's text, when that is fixed (a
        line: nothing, and a newline); None for the handout's, which stamps each message."""
        if self.session.dialect is Dialect.handout:
            return None
        before, _, after = self.session.message("\x00").partition(b"\x00")
        return before, after

    async def send_messages(self, count: int, rate: float, stride: int, started: float) -> int:
        """Send ``count`` messages; return how many were written."""
        assert self.transport is not None and self.sender_id is not None
        config = self.bench.config
        epoch_ns = self.bench.epoch_ns
        pad = b"." * (config.size - RECORD)
        head = MARK + b"%05d" % self.sender_id
        framing = self.framing()
        # The payload as PAYLOAD_FORMAT writes it, built as bytes: a str.format and an encode
        # per message cost the bench a fifth of its CPU per copy (docs/performance.md).
        if framing is not None:
            head, pad = framing[0] + head, pad + framing[1]
        message = self.session.message
        write = self.transport.write
        now_ns = time.perf_counter_ns
        timed, untimed = ord(TIMED), ord(UNTIMED)
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
            kind = timed if seq % stride == 0 else untimed
            data = PAYLOAD_BYTES % (head, kind, seq, kind, (now_ns() - epoch_ns) // 1000, pad)
            if framing is None:
                # The handout's client sends no newline; the bench adds one so that messages
                # merged into one receive by TCP are still told apart by a netlab server.
                data = message(p.decode(data)) + b"\n"
            write(data)
            self.sent += 1
        return self.sent

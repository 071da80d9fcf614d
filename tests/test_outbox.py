"""The outbox's flush rhythm, on a fake clock: a line after a quiet spell leaves at the end of
its tick; under sustained heavy output the flushes are spaced out, a light stream never is;
nothing is lost or reordered."""

from __future__ import annotations

import itertools

from netlab.serve import outbox as ob


class FakeLoop:
    """Just what the outbox asks of a loop, with time moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.soon: list = []
        self.later: list[tuple[float, object]] = []

    def time(self) -> float:
        return self.now

    def call_soon(self, callback) -> None:
        self.soon.append(callback)

    def call_at(self, when: float, callback) -> None:
        self.later.append((when, callback))

    def run_until(self, when: float) -> None:
        """Run what is due up to ``when``, moving the clock along."""
        while True:
            if self.soon:
                self.soon.pop(0)()
                continue
            due = sorted((w, i) for i, (w, _) in enumerate(self.later) if w <= when)
            if not due:
                break
            at, index = due[0]
            self.now = max(self.now, at)
            self.later.pop(index)[1]()
        self.now = max(self.now, when)


class FakeTransport:
    def __init__(self, loop: FakeLoop) -> None:
        self.loop = loop
        self.writes: list[tuple[float, bytes]] = []

    def write(self, data: bytes) -> None:
        self.writes.append((self.loop.now, data))

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class Client:
    def __init__(self, nick: str, loop: FakeLoop) -> None:
        self.nick = self.address = nick
        self.transport = FakeTransport(loop)

    def overflowed(self) -> None:
        raise AssertionError("nobody is slow here")

    def received(self) -> bytes:
        return b"".join(data for _, data in self.transport.writes)


def room(size: int = 3) -> tuple[FakeLoop, list[Client], ob.Outbox]:
    loop = FakeLoop()
    clients = [Client(f"c{i}", loop) for i in range(size)]
    return loop, clients, ob.Outbox(loop, lambda: clients, 1 << 20)  # type: ignore[arg-type]


def test_a_line_after_a_quiet_spell_leaves_in_its_tick():
    loop, clients, outbox = room()
    outbox.deliver(b"hello\n", exclude=clients[0])
    assert loop.soon and not loop.later  # at the end of this tick, not on a timer
    loop.run_until(loop.now)
    assert clients[1].received() == clients[2].received() == b"hello\n"
    assert clients[0].received() == b""
    loop.run_until(loop.now + ob.QUIET * 2)
    outbox.deliver(b"again\n")
    assert loop.soon and not loop.later


def heavy_line(i: int) -> bytes:
    """A line that alone makes a heavy flush."""
    return b"%06d " % i + b"." * ob.HEAVY + b"\n"


def test_sustained_output_is_flushed_spaced_out_and_complete():
    loop, clients, outbox = room()
    step = 0.001  # a heavy tick every millisecond, for twice the time a burst may last
    lines = [heavy_line(i) for i in range(int(ob.SUSTAINED * 2 / step))]
    for i, line in enumerate(lines):
        outbox.deliver(line, exclude=clients[i % 2])
        loop.run_until(loop.now + step)
    loop.run_until(loop.now + ob.FLUSH_SPACING * 2)
    assert clients[2].received() == b"".join(lines)
    assert clients[0].received() == b"".join(lines[1::2])
    assert clients[1].received() == b"".join(lines[0::2])
    times = [at for at, _ in clients[2].transport.writes]
    start = times[0]
    burst = [t for t in times if t - start <= ob.SUSTAINED]
    spaced = times[len(burst) :]
    assert len(burst) > ob.SUSTAINED / step * 0.9  # a burst goes out tick by tick
    gaps = [b - a for a, b in itertools.pairwise(spaced)]
    assert gaps and min(gaps) >= ob.FLUSH_SPACING - 1e-9
    assert max(gaps) <= ob.FLUSH_SPACING + step + 1e-9


def test_a_light_stream_is_never_held_back():
    loop, clients, outbox = room()
    for i in range(int(ob.SUSTAINED * 3 / 0.001)):  # a paced chat: a short line a millisecond
        outbox.deliver(b"line %d\n" % i)
        assert loop.soon and not loop.later
        loop.run_until(loop.now + 0.001)
    assert len(clients[0].transport.writes) == int(ob.SUSTAINED * 3 / 0.001)


def test_what_is_pending_still_goes_out_before_a_close():
    loop, clients, outbox = room()
    for i in range(int(ob.SUSTAINED / 0.001) + 5):
        outbox.deliver(heavy_line(i))
        loop.run_until(loop.now + 0.001)
    outbox.deliver(b"last words\n")
    assert loop.later  # waiting for its spaced flush
    outbox.flush_now(clients[1], member=True)
    assert clients[1].received().endswith(b"last words\n")

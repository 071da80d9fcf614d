"""``netlab bench`` counts right: joined, sent, expected and delivered copies, at small sizes.

Speed is not tested here (benchmarks are commands: bench/compare.py); every run is a few
hundred copies on 127.0.0.1, bounded by pytest's timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import selectors
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from helpers import HANDOUT, NETLAB, free_port, wait_listening
from hypothesis import given
from hypothesis import strategies as st

from netlab import bench as b

pytestmark = pytest.mark.timeout(30)


def run_bench(*args: str, timeout: float = 25) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*NETLAB, "bench", *args], capture_output=True, text=True, timeout=timeout
    )


def bench_json(*args: str) -> dict:
    done = run_bench(*args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_counted(result: dict, clients: int, senders: int, messages: int) -> None:
    assert result["joined"] == clients
    assert result["sent"] == senders * messages
    assert result["expected"] == senders * messages * (clients - 1)
    assert result["delivered"] == result["expected"]
    assert result["lost"] == 0
    assert result["complete"] is True


# ---- against netlab serve ----------------------------------------------------------------


def test_counts_every_copy_from_netlab_serve(server_factory):
    server = server_factory("--rate-limit", "0", "--max-clients", "50")
    result = bench_json(
        *("--target", f"{server.host}:{server.port}", "--clients", "12", "--senders", "3"),
        *("--messages", "20", "--size", "40"),
    )
    assert_counted(result, clients=12, senders=3, messages=20)
    assert result["echoed"] == 0
    assert result["latency_samples"] > 0
    assert 0 < result["latency_ms_p50"] <= result["latency_ms_p99"] <= result["latency_ms_max"]
    # The server is a local process: found by its port, measured by psutil.
    assert result["server_rss_mb"] > 0
    assert re.fullmatch(r"netlab \(pid \d+\)", result["server"])
    # CPU over a run this short is not a figure: it is left out, and the report says why.
    too_short = any("CPU not measured" in note for note in result["notes"])
    assert (result["server_cpu_pct"] is None) == too_short


def test_the_bench_resets_its_connections_and_leaves_no_time_wait(server_factory):
    import psutil

    server = server_factory("--rate-limit", "0")
    result = bench_json(
        *("--target", f"{server.host}:{server.port}", "--clients", "20", "--senders", "2"),
        *("--messages", "5"),
    )
    assert_counted(result, clients=20, senders=2, messages=5)
    waiting = [
        c
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_TIME_WAIT
        and server.port in (c.laddr.port, c.raddr.port if c.raddr else None)
    ]
    assert waiting == []


def test_starts_its_own_server_without_a_target():
    done = run_bench("--clients", "6", "--senders", "2", "--messages", "10")
    assert done.returncode == 0, done.stderr
    assert "copies delivered" in done.stdout
    assert re.search(r"server +netlab \(pid \d+\)", done.stdout)  # the process it measured
    rows = dict(line.split(None, 1) for line in done.stdout.splitlines() if line)
    assert rows["copies"]  # a table, not JSON


def test_handout_protocol_against_netlab_serve(server_factory):
    server = server_factory("--rate-limit", "0")
    result = bench_json(
        *("--target", f"{server.host}:{server.port}", "--protocol", "handout"),
        *("--clients", "5", "--senders", "2", "--messages", "5", "--rate", "50"),
    )
    assert_counted(result, clients=5, senders=2, messages=5)


def test_a_rate_limited_server_loses_copies_and_says_why(server_factory):
    server = server_factory("--rate-limit", "2", "--max-clients", "50")
    done = run_bench(
        *("--target", f"{server.host}:{server.port}", "--clients", "3", "--senders", "1"),
        *("--messages", "60", "--format", "json"),
    )
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["delivered"] < result["expected"]
    assert any("rate-limit" in note for note in result["notes"])
    assert "incomplete" in done.stderr


# ---- against other servers ---------------------------------------------------------------


class LineRelay:
    """A ``lines`` server of the test's own: every chunk read from one client goes to all
    others as it came (and back to the sender too when ``echo``)."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.clients: list[socket.socket] = []
        self.relayed = 0  # bench markers relayed so far
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stopping:
            for key, _ in self.selector.select(0.05):
                if key.fileobj is self.listener:
                    conn, _ = self.listener.accept()
                    self.selector.register(conn, selectors.EVENT_READ)
                    self.clients.append(conn)
                    continue
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.selector.unregister(conn)
                    self.clients.remove(conn)
                    conn.close()
                    continue
                self.relayed += data.count(b.MARK)
                for other in self.clients:
                    if other is not conn or self.echo:
                        other.setblocking(True)
                        other.sendall(data)
                        other.setblocking(False)

    def close(self) -> None:
        self.stopping = True
        self.thread.join(5)
        for conn in self.clients:
            conn.close()
        self.selector.close()
        self.listener.close()


@pytest.fixture
def relay() -> Iterator[LineRelay]:
    server = LineRelay()
    yield server
    server.close()


def test_counts_every_copy_from_a_plain_line_relay(relay):
    result = bench_json(
        *("--target", f"127.0.0.1:{relay.port}", "--protocol", "lines"),
        *("--clients", "8", "--senders", "3", "--messages", "15"),
    )
    assert_counted(result, clients=8, senders=3, messages=15)
    assert result["echoed"] == 0


def test_copies_echoed_to_their_sender_are_not_deliveries():
    relay = LineRelay(echo=True)
    try:
        result = bench_json(
            *("--target", f"127.0.0.1:{relay.port}", "--protocol", "lines"),
            *("--clients", "5", "--senders", "2", "--messages", "10"),
        )
    finally:
        relay.close()
    assert_counted(result, clients=5, senders=2, messages=10)
    assert result["echoed"] == 2 * 10


@pytest.mark.skipif(shutil.which("ncat") is None, reason="ncat is not installed")
def test_counts_every_copy_from_ncat_chat():
    port = free_port()
    ncat = subprocess.Popen(
        ["ncat", "-l", "127.0.0.1", str(port), "--chat", "--max-conns", "100"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port)
        result = bench_json(
            *("--target", f"127.0.0.1:{port}", "--protocol", "lines"),
            *("--clients", "10", "--senders", "2", "--messages", "10"),
        )
    finally:
        ncat.terminate()
        ncat.wait(5)
    assert_counted(result, clients=10, senders=2, messages=10)
    assert result["server"].startswith("ncat")


@pytest.mark.skipif(not (HANDOUT / "server.py").exists(), reason="no handout directory")
def test_counts_every_copy_from_the_handout_server():
    port = free_port()
    handout = subprocess.Popen(
        [sys.executable, str(HANDOUT / "server.py"), "127.0.0.1", str(port), "20"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert handout.stdout is not None
        assert b"listening" in handout.stdout.readline()
        result = bench_json(
            *("--target", f"127.0.0.1:{port}", "--protocol", "handout"),
            *("--clients", "6", "--senders", "2", "--messages", "10"),
        )
    finally:
        handout.kill()
        handout.wait(5)
        if handout.stdout is not None:
            handout.stdout.close()
    assert_counted(result, clients=6, senders=2, messages=10)


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--size", "5"), "--size must be between"),
        (("--senders", "30", "--clients", "10"), "--senders must be between"),
        (("--target", "nohost"), "bad --target"),
        (("--target", "127.0.0.1:99999"), "port must be"),
    ],
)
def test_bad_arguments_are_told_in_one_line(args, message):
    done = run_bench(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_target_is_an_error_without_traceback():
    done = run_bench("--target", f"127.0.0.1:{free_port()}", "--clients", "3", "--senders", "1")
    assert done.returncode == 1
    assert "cannot connect" in done.stderr
    assert "Traceback" not in done.stderr


# ---- the counting itself -----------------------------------------------------------------


def chat_copies(count: int, sender: int = 1) -> bytes:
    lines = []
    for seq in range(count):
        payload = b.PAYLOAD_FORMAT.format(sender=sender, kind=b.TIMED, seq=seq, sent_us=seq)
        lines.append(f"[2026-01-01 00:00:00] b1-{sender}: {payload}....\n".encode())
    return b"".join(lines)


@pytest.mark.parametrize("own_sender", [None, 1])
async def test_markers_cut_between_receives_are_counted_once(own_sender):
    stream = b"1 user joined: x\n" + chat_copies(30) + chat_copies(5, sender=2)
    for cut in range(1, len(stream) // 2, 7):
        bench = b.Bench(b.BenchConfig(), epoch_ns=0)
        bench.expected = 10**9
        client = b.BenchClient(bench, 0, "n", own_sender, probe=True)
        for start in range(0, len(stream), cut):
            client.count(stream[start : start + cut])
        if own_sender == 1:
            assert (bench.delivered, bench.echoed) == (5, 30)
        else:
            assert (bench.delivered, bench.echoed) == (35, 0)
        assert len(bench.samples) == 35  # every timed copy read once by the probe


def feed(pieces: list[bytes], sender_id: int | None, probe: bool) -> tuple[int, int, int]:
    """(delivered, echoed, latency samples) of one counter fed ``pieces`` as its receives."""

    async def run() -> tuple[int, int, int]:
        bench = b.Bench(b.BenchConfig(), epoch_ns=0)
        bench.expected = 10**9
        client = b.BenchClient(bench, 0, "n", sender_id, probe)
        for piece in pieces:
            client.count(piece)
        return bench.delivered, bench.echoed, len(bench.samples)

    return asyncio.run(run())


def cut_at(stream: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(stream), *(min(point, len(stream)) for point in points)})
    return [stream[a:z] for a, z in itertools.pairwise(edges) if z > a]


def test_every_cut_of_a_stream_counts_as_the_whole():
    # Copies of three senders (one of them the counter's own) with the marker at every
    # place a receive can end: before it, inside it, inside the sender and the send time.
    stream = chat_copies(4) + chat_copies(3, sender=2) + chat_copies(2, sender=1)
    for own_sender, truth in ((None, (9, 0, 9)), (2, (6, 3, 9))):
        assert feed([stream], own_sender, probe=True) == truth
        for cut in range(1, len(stream)):
            assert feed([stream[:cut], stream[cut:]], own_sender, probe=True) == truth, cut
        assert feed(cut_at(stream, list(range(len(stream)))), own_sender, True) == truth


PIECES = [
    chat_copies(1),
    chat_copies(1, sender=7),
    b"@",
    b"@@",
    b"@@@",
    b"x",
    b"^",
    b"\n",
    b"@@@@00007",  # the sender's marker, without a record after it
]


@given(
    parts=st.lists(st.sampled_from(PIECES), max_size=25),
    points=st.lists(st.integers(min_value=0, max_value=1500), max_size=12),
    own_sender=st.sampled_from([None, 7]),
)
def test_any_cuts_count_what_the_stream_holds(parts, points, own_sender):
    """Runs of ``@`` of any length, cut anywhere: as many markers as ``bytes.count`` finds in
    the whole stream, a sender's own apart, and the same timed records read."""
    stream = b"".join(parts)
    own = stream.count(b.MARK + b"%05d" % own_sender) if own_sender is not None else 0
    whole = feed([stream], own_sender, probe=True)
    assert whole[:2] == (stream.count(b.MARK) - own, own)
    assert feed(cut_at(stream, points), own_sender, probe=True) == whole

"""``netlab bench`` as a person runs it: join progress on a terminal, a server that stops
letting clients in, Ctrl-C, its options, the server's CPU per copy, and ``--compare``
(issue 12 item 9 and the bench's part of 12; issue 16 items 1 and 2)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pexpect
import pytest
from helpers import NETLAB, ROOT, interrupt_when
from test_bench import LineRelay, run_bench

from netlab import protocol as p
from netlab.loadgen.config import BenchResult
from netlab.loadgen.run import CpuSpan

pytestmark = pytest.mark.timeout(60)


class FewSeats:
    """A netlab-speaking server of the test's own that lets ``seats`` clients in and then
    accepts the others without a word (as a full handout server does)."""

    def __init__(self, seats: int) -> None:
        self.seats = seats
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)
            if len(self.held) <= self.seats:
                threading.Thread(target=self._welcome, args=(conn,), daemon=True).start()

    def _welcome(self, conn: socket.socket) -> None:
        try:
            conn.sendall(p.PROMPT)
            conn.settimeout(5)
            while b"\n" not in conn.recv(4096):
                pass
            conn.sendall(p.encode_line(p.CONNECTED + " Welcome."))
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def few_seats() -> Iterator[FewSeats]:
    server = FewSeats(3)
    yield server
    server.close()


def test_clients_that_stop_getting_in_are_told_in_one_line(few_seats):
    started = time.monotonic()
    done = run_bench(
        *("--target", f"127.0.0.1:{few_seats.port}", "--clients", "6", "--senders", "1"),
        *("--join-timeout", "1"),
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert re.fullmatch(
        r"netlab bench: 3 of 6 joined in \d\.\d s: the server may be full or not answering",
        lines[0],
    )
    assert time.monotonic() - started < 15  # not the old 60 s


def test_join_progress_is_shown_on_a_terminal(few_seats):
    child = pexpect.spawn(
        sys.executable,
        [
            *("-m", "netlab", "bench", "--target", f"127.0.0.1:{few_seats.port}"),
            *("--clients", "6", "--senders", "1", "--join-timeout", "2"),
        ],
        encoding="utf-8",
        dimensions=(24, 100),
        cwd=str(ROOT),
        timeout=15,
    )
    try:
        child.expect(r"joined.*3/6")  # rich's bar, on standard error
        child.expect_exact("3 of 6 joined in")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 1


def test_ctrl_c_prints_what_was_measured_so_far():
    relay = LineRelay()
    bench = subprocess.Popen(
        [
            *(*NETLAB, "bench", "--target", f"127.0.0.1:{relay.port}", "--protocol", "lines"),
            *("--clients", "3", "--senders", "1", "--messages", "100000", "--rate", "100"),
            *("--format", "json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = interrupt_when(bench, lambda: relay.relayed >= 10)  # sending has begun
    finally:
        relay.close()
    assert bench.returncode == 130, err
    result = json.loads(out)
    assert result["interrupted"] is True
    assert 10 <= result["sent"] < 100000
    assert result["delivered"] > 0
    assert any("interrupted" in note for note in result["notes"])
    assert "Traceback" not in err


@pytest.mark.parametrize("command", [[], ["serve"], ["chat"], ["simulate"], ["bench"], ["check"]])
def test_flags_show_no_bool_metavar(command):
    done = subprocess.run([*NETLAB, *command, "--help"], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0
    assert "--help" in done.stdout
    assert "<bool>" not in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("bench", "--protocol", "foo"),
        ("bench", "--format", "foo"),
        ("chat", "--protocol", "foo"),
    ],
)
def test_option_errors_read_plainly(args):
    done = subprocess.run([*NETLAB, *args], capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    assert "'foo' is not one of" in done.stderr
    assert "Value error" not in done.stderr


class FakeWatch:
    cpu_resolution = 0.01  # read to the clock tick, as psutil does

    def __init__(self, *readings: float) -> None:
        self.readings = list(readings)

    def cpu_seconds(self) -> float:
        return self.readings.pop(0)


def result_of(delivered: int) -> BenchResult:
    return BenchResult("t", "netlab", "s", 2, 2, 0.0, 1, 1, 32, 0.0, delivered=delivered)


def span_report(monkeypatch, bench: tuple, server: tuple, delivered: int, wall: float):
    """What ``CpuSpan`` reports for these CPU readings (start, end) of bench and server."""
    from netlab.loadgen import run

    own = iter(bench)
    monkeypatch.setattr(run.procstat, "own_cpu_seconds", lambda: next(own))
    span = CpuSpan(FakeWatch(*server))  # type: ignore[arg-type]
    span.copies_arrived()
    result = result_of(delivered)
    span.report(result, wall)
    return result


def test_server_cpu_per_copy_over_the_send_phase(monkeypatch):
    result = span_report(monkeypatch, (10.0, 10.8), (3.0, 3.5), 1_000_000, wall=1.0)
    assert result.server_cpu_us_per_copy == pytest.approx(0.5)
    assert result.bench_cpu_us_per_copy == pytest.approx(0.8)
    assert result.notes == []


def test_a_run_too_short_for_the_clock_says_so(monkeypatch):
    result = span_report(monkeypatch, (10.0, 10.03), (3.0, 3.01), 50_000, wall=0.04)
    assert result.server_cpu_us_per_copy is None and result.bench_cpu_us_per_copy is None
    assert any("too short for the CPU clock" in note for note in result.notes)


def test_a_tiny_run_reports_no_cpu_figure_but_says_why(server_factory):
    server = server_factory("--rate-limit", "0")
    done = run_bench(
        *("--target", f"{server.host}:{server.port}", "--clients", "4", "--senders", "1"),
        *("--messages", "5", "--format", "json"),
    )
    result = json.loads(done.stdout)
    assert result["server_cpu_us_per_copy"] is None
    assert any("CPU" in note for note in result["notes"])


@pytest.mark.skipif(shutil.which("ncat") is None, reason="ncat is not installed")
def test_compare_runs_interleaved_rounds_on_fresh_servers():
    done = run_bench(
        *("--compare", "netlab,ncat", "--rounds", "2", "--clients", "6", "--senders", "2"),
        *("--messages", "10", "--format", "json"),
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    rounds = re.findall(r"^round (\d) (\w+):", done.stderr, re.M)
    assert rounds == [("1", "netlab"), ("1", "ncat"), ("2", "ncat"), ("2", "netlab")]
    report = json.loads(done.stdout)
    rows = {row["server"]: row for row in report["summary"]}
    assert rows["netlab"]["rounds"] == rows["ncat"]["rounds"] == "2/2"
    assert rows["netlab"]["rate_ratio"] == "1.00x"
    assert rows["netlab"]["lost"] == rows["ncat"]["lost"] == "0"
    servers = {server["name"]: server["rounds"] for server in report["servers"]}
    targets = [run["target"] for run in servers["netlab"]]
    assert len(set(targets)) == 2  # a fresh server, on a free port, each round
    assert all(run["complete"] for run in servers["ncat"])


def test_compare_prints_one_table_and_draws_it(tmp_path):
    page = tmp_path / "compare.html"
    done = run_bench(
        *("--compare", "netlab", "--rounds", "1", "--clients", "4", "--senders", "1"),
        *("--messages", "5", "--html", str(page)),
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    assert "Side by side" in page.read_text(encoding="utf-8")
    header = next(line for line in done.stdout.splitlines() if line.startswith("server"))
    assert "M deliveries/s" in header and "server CPU µs/copy" in header
    assert "rate vs 1st" in header


@pytest.mark.parametrize("protocol", ["netlab", "handout"])
async def test_messages_carry_the_payload_format_at_their_size(protocol):
    from netlab import bench as b
    from netlab.loadgen.config import RECORD

    class Transport:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.written.append(data)

    bench = b.Bench(b.BenchConfig(protocol=protocol, size=40), epoch_ns=0)
    client = b.BenchClient(bench, 0, "b1-3", 3, probe=False)
    client.transport = Transport()  # type: ignore[assignment]
    assert await client.send_messages(3, rate=0, stride=2, started=0) == 3
    for seq, data in enumerate(client.transport.written):  # type: ignore[attr-defined]
        text = data.decode()
        assert text.endswith("\n")
        payload = text.rstrip("\n").rsplit(": ", 1)[-1] if protocol == "handout" else text[:-1]
        assert len(payload) == 40
        kind = b.TIMED if seq % 2 == 0 else "-"
        sent_us = int(payload[RECORD - 11 : RECORD])
        expected = b.PAYLOAD_FORMAT.format(sender=3, kind=kind, seq=seq, sent_us=sent_us)
        assert payload[:RECORD] == expected
        if protocol == "handout":
            assert p.parse_server_line(text.rstrip("\n")).nick == "b1-3"  # type: ignore[union-attr]


def test_fewer_clients_than_the_default_senders_is_not_an_error():
    done = run_bench("--clients", "4", "--messages", "5", "--format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["senders"] == 3 and result["delivered"] == result["expected"] == 3 * 5 * 3


def test_a_join_refused_by_a_server_of_another_protocol_names_the_others():
    from netlab.loadgen.join import stalled

    line = stalled(0, 5, 0.01, Exception("b9bd5-0"), "netlab")
    assert line.startswith("0 of 5 joined in 0.0 s") and "(it said: b9bd5-0)" in line
    assert "try --protocol handout or --protocol lines" in line
    assert "try" not in stalled(3, 5, 10.0, Exception("full"), "netlab")  # some got in

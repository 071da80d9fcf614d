"""``netlab bench --compare netlab,ncat[,handout]``: servers side by side, measured alike.

Each round starts every server fresh on a free loopback port and runs the same load against
it; the order alternates from round to round (netlab, ncat, then ncat, netlab), so that what
else the machine does falls on all of them alike. One table gives, per server, the median and
the spread (lowest-highest) of the rounds, and the ratios to the first server named.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from netlab import aio, embedded, net, procstat, stats, tables
from netlab.loadgen.config import BenchConfig, BenchError, BenchResult
from netlab.loadgen.output import document as run_document
from netlab.loadgen.output import write_html
from netlab.loadgen.run import measure, own_server_options

SERVERS = {"netlab": "netlab", "ncat": "lines", "handout": "handout"}
"""The servers --compare can start, and the protocol the bench speaks to each."""
START_TIMEOUT = 10.0


def kinds_of(text: str) -> list[str]:
    """``netlab,ncat`` as a list; BenchError names what is unknown or missing."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in SERVERS]
    if not kinds or unknown:
        raise BenchError(
            f"--compare takes a comma list of {', '.join(SERVERS)}; not {', '.join(unknown)!r}"
        )
    if "ncat" in kinds and shutil.which("ncat") is None:
        raise BenchError("--compare ncat: ncat is not installed (apt-get install ncat)")
    if "handout" in kinds:
        handout_server()
    return kinds


def handout_server() -> Path:
    """The handout's ``server.py``: ``$NETLAB_HANDOUT``, else ``../shared/handout`` from here
    or from the source tree."""
    roots = [os.environ.get("NETLAB_HANDOUT"), Path.cwd().parent / "shared" / "handout"]
    roots.append(Path(__file__).resolve().parents[3] / "shared" / "handout")
    for root in roots:
        if root and (Path(root) / "server.py").is_file():
            return Path(root) / "server.py"
    raise BenchError("--compare handout: no server.py found; set NETLAB_HANDOUT to its folder")


def _wait_for_line(proc: subprocess.Popen, wanted: bytes) -> None:
    """Until the child prints a line holding ``wanted`` (a connect probe would count as a
    client for the handout's server, which then waits for its nickname)."""
    if embedded.read_until(proc, lambda line: True if wanted in line else None, START_TIMEOUT):
        return
    raise BenchError(f"{proc.args[0]} did not start within {START_TIMEOUT:g} s")


def _wait_listening(port: int, proc: subprocess.Popen) -> None:
    """Until the child listens on ``port``, seen in its socket list: a connect probe that
    closes at once can make ncat quit (it reads the close as a reset)."""
    watch = procstat.ProcessWatch(proc.pid)
    if embedded.poll_until(lambda: watch.listens(port), START_TIMEOUT, lambda: proc.poll() is None):
        return
    raise BenchError(f"{proc.args[0]} did not listen on port {port} within {START_TIMEOUT:g} s")


@contextlib.contextmanager
def started(kind: str, clients: int) -> Iterator[tuple[str, int, int]]:
    """One fresh server: (host, port, pid), stopped after."""
    if kind == "netlab":
        with embedded.running(own_server_options(clients)) as server:
            yield server.host, server.port, server.pid
        return
    port = net.free_port()
    if kind == "ncat":
        command = ["ncat", "-l", "127.0.0.1", str(port), "--chat", "--max-conns", str(clients + 64)]
    else:
        command = [sys.executable, "-u", str(handout_server()), "127.0.0.1", str(port)]
        command.append(str(clients + 64))
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        if kind == "handout":
            _wait_for_line(proc, b"listening")
        else:
            _wait_listening(port, proc)
        yield "127.0.0.1", port, proc.pid
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def one_round(config: BenchConfig, kind: str) -> BenchResult | str:
    """One measurement of a fresh ``kind``; the error in words when it could not be made."""
    try:
        with started(kind, config.clients) as (host, port, pid):
            return aio.run(measure(replace(config, protocol=SERVERS[kind]), host, port, pid))
    except (BenchError, embedded.ServerStartError) as error:
        return str(error)


def compare(config: BenchConfig) -> int:
    """Every round of every server, then the table; 0 when every run was complete."""
    kinds = kinds_of(config.compare or "")
    runs: dict[str, list[BenchResult | str]] = {kind: [] for kind in kinds}
    interrupted = False
    try:
        for number in range(config.rounds):
            for kind in kinds if number % 2 == 0 else kinds[::-1]:
                outcome = one_round(config, kind)
                runs[kind].append(outcome)
                print(f"round {number + 1} {kind}: {said(outcome)}", file=sys.stderr, flush=True)
                if isinstance(outcome, BenchResult) and outcome.interrupted:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = True
    print(render(config, runs), flush=True)
    if config.html and not write_html(config.html, document(runs)):
        return 1
    if interrupted:
        return 130
    ok = all(isinstance(r, BenchResult) and r.complete for rs in runs.values() for r in rs)
    return 0 if ok else 1


def said(outcome: BenchResult | str) -> str:
    if isinstance(outcome, str):
        return f"failed: {outcome}"
    cpu = outcome.server_cpu_us_per_copy
    return (
        f"{outcome.deliveries_per_s:,} deliveries/s, p99 {outcome.latency_ms_p99} ms,"
        f" server CPU {'-' if cpu is None else f'{cpu:.3f}'} µs/copy,"
        f" {outcome.delivered:,}/{outcome.expected:,} copies"
    )


def _median(values: list[float | None], unit: float = 1.0) -> tuple[float | None, str]:
    """The median of the known values, and ``median (low-high)`` written in ``unit``s."""
    known = [v / unit for v in values if v is not None]
    if not known:
        return None, "-"
    middle = stats.median(known)
    if len(known) == 1:
        return middle * unit, _num(middle)
    return middle * unit, f"{_num(middle)} ({_num(min(known))}-{_num(max(known))})"


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"


def _ratio(value: float | None, first: float | None) -> str:
    return "-" if value is None or not first else f"{value / first:.2f}x"


def summary(runs: dict[str, list[BenchResult | str]]) -> list[dict]:
    """One row a server: medians (and spreads) of its rounds, ratios to the first server."""
    rows: list[dict] = []
    first: dict[str, float | None] = {}
    for kind, outcomes in runs.items():
        ok = [r for r in outcomes if isinstance(r, BenchResult)]
        rate, rate_text = _median([r.deliveries_per_s for r in ok], 1e6)
        cpu, cpu_text = _median([r.server_cpu_us_per_copy for r in ok])
        first = first or {"rate": rate, "cpu": cpu}
        rows.append(
            {
                "server": kind,
                "rounds": f"{len(ok)}/{len(outcomes)}",
                "deliveries_per_s": rate_text,
                "p50_ms": _median([r.latency_ms_p50 for r in ok])[1],
                "p99_ms": _median([r.latency_ms_p99 for r in ok])[1],
                "server_cpu_us_per_copy": cpu_text,
                "lost": f"{sum(r.lost for r in ok):,}",
                "rate_ratio": _ratio(rate, first["rate"]),
                "cpu_ratio": _ratio(cpu, first["cpu"]),
            }
        )
    return rows


COLUMNS = {
    "server": "server",
    "rounds": "rounds",
    "deliveries_per_s": "M deliveries/s",
    "p50_ms": "p50 ms",
    "p99_ms": "p99 ms",
    "server_cpu_us_per_copy": "server CPU µs/copy",
    "lost": "lost",
    "rate_ratio": "rate vs 1st",
    "cpu_ratio": "CPU vs 1st",
}


def document(runs: dict[str, list[BenchResult | str]]) -> dict:
    """The comparison as plain data, in the shape ``netlab.html.bench_report`` draws: every
    server's rounds (a failed round is ``{"error": ...}``), and the summary rows."""

    def one(outcome: BenchResult | str) -> dict:
        return {"error": outcome} if isinstance(outcome, str) else run_document(outcome)

    servers = [{"name": kind, "rounds": [one(r) for r in rs]} for kind, rs in runs.items()]
    return {"servers": servers, "summary": summary(runs)}


def render(config: BenchConfig, runs: dict[str, list[BenchResult | str]]) -> str:
    if config.format == "json":
        import json

        return json.dumps(document(runs), indent=2)
    head = (
        f"{config.clients} clients, {config.senders} senders x {config.messages} messages,"
        f" {config.size}-byte payload, {config.rounds} round{'s' if config.rounds != 1 else ''}:"
        " median (lowest-highest)\n"
    )
    return head + tables.render(summary(runs), COLUMNS, tables.TABLE)

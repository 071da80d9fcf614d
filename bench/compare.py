"""Side by side: ``netlab serve`` vs ``ncat --chat`` vs the handout's server, and the 10,000
client scale run, each measured with ``netlab bench`` (docs/performance.md).

    python bench/compare.py                 # 200 clients, 20 senders x 200 messages, 5 rounds
    python bench/compare.py --scale 10000   # plus one round of the scale run
    python bench/compare.py --rounds 3 --servers netlab,ncat --messages 1000

Servers run one after another, round by round (netlab, ncat, handout, netlab, ...), so that
the load other programs put on the machine falls on all of them alike; the table gives the
median of the rounds and the best. Everything stays on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from netlab import embedded
from netlab.serve.config import ServerConfig

ROOT = Path(__file__).resolve().parent.parent
HANDOUT_SERVER = ROOT.parent / "shared" / "handout" / "server.py"
PROTOCOL = {"netlab": "netlab", "ncat": "lines", "handout": "handout"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def server_command(kind: str, port: int, max_clients: int) -> list[str]:
    if kind == "ncat":
        return ["ncat", "-l", "127.0.0.1", str(port), "--chat", "--max-conns", "1000"]
    if kind == "handout":
        return [sys.executable, str(HANDOUT_SERVER), "127.0.0.1", str(port), str(max_clients)]
    raise ValueError(kind)


@contextmanager
def running(kind: str, max_clients: int) -> Iterator[int]:
    """Start one server on a free loopback port; yield the port; stop it after."""
    if kind == "netlab":
        options = ServerConfig(rate_limit=0, max_clients=max_clients, log_level="warning")
        with embedded.running(options.arguments()) as server:
            yield server.port
        return
    port = free_port()
    proc = subprocess.Popen(
        server_command(kind, port, max_clients),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # A connect-probe would count as a client for the handout's server (which then
        # blocks waiting for its nickname), so that one gets a moment instead.
        if kind == "handout":
            time.sleep(1.0)
        else:
            wait_listening(port, proc)
        yield port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def bench(
    port: int, protocol: str, args: argparse.Namespace, clients: int, senders: int, messages: int
) -> dict:
    command = [
        *(sys.executable, "-m", "netlab", "bench", "--target", f"127.0.0.1:{port}"),
        *("--protocol", protocol, "--clients", str(clients), "--senders", str(senders)),
        *("--messages", str(messages), "--size", str(args.size), "--format", "json"),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
        result = json.loads(done.stdout)
    except subprocess.TimeoutExpired:
        # One run that hangs is a failed run, not the end of all the rounds measured so far.
        result = {"error": f"no result within {args.timeout:g} s (killed)"}
    except json.JSONDecodeError:
        result = {"error": (done.stderr or done.stdout).strip()[-300:]}
    result["command"] = " ".join(["netlab", *command[3:]])
    return result


def median(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def summary(kind: str, runs: list[dict]) -> list[str]:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return [kind, str(len(runs)), "-", "-", "-", "-", "-", "-", "-", "-", "-"]
    rates = [r["deliveries_per_s"] for r in ok]
    return [
        kind,
        str(len(ok)),
        f"{min(r['joined'] for r in ok)}/{ok[0]['clients']}",
        f"{min(r['delivered'] for r in ok):,}/{ok[0]['expected']:,}",
        fmt(median(rates)),
        fmt(max(rates)),
        fmt(median([r["latency_ms_p50"] for r in ok]), 1),
        fmt(median([r["latency_ms_p99"] for r in ok]), 1),
        fmt(median([r["latency_ms_max"] for r in ok]), 1),
        fmt(median([r["server_cpu_pct"] for r in ok])),
        fmt(median([r["server_rss_mb"] for r in ok]), 1),
    ]


HEADER = [
    "server",
    "runs",
    "joined",
    "delivered/expected",
    "deliveries/s (median)",
    "deliveries/s (best)",
    "p50 ms",
    "p99 ms",
    "max ms",
    "server CPU %",
    "server RSS MB",
]


def markdown(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="netlab,ncat,handout")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--scale", type=int, default=0, help="clients of the scale run (0: none)")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--json", type=Path, help="also write every run's result here")
    args = parser.parse_args()

    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    if "ncat" in kinds and shutil.which("ncat") is None:
        print("ncat is not installed (apt-get install ncat): skipped", file=sys.stderr)
        kinds.remove("ncat")
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for round_no in range(1, args.rounds + 1):
        for kind in kinds:
            with running(kind, args.clients + 64) as port:
                result = bench(
                    port, PROTOCOL[kind], args, args.clients, args.senders, args.messages
                )
            runs[kind].append(result)
            print(
                f"round {round_no} {kind}: "
                + (
                    result.get("error")
                    or f"{result['deliveries_per_s']:,} deliveries/s,"
                    f" p99 {result['latency_ms_p99']} ms,"
                    f" {result['delivered']:,}/{result['expected']:,}"
                ),
                file=sys.stderr,
                flush=True,
            )
    print(
        f"\n{args.clients} clients, {args.senders} senders x {args.messages} messages,"
        f" {args.size}-byte payload, {args.rounds} rounds; loadavg"
        f" {os.getloadavg()[0]:.2f} at the end\n"
    )
    print(markdown([summary(k, runs[k]) for k in kinds], HEADER))
    scale = None
    if args.scale:
        with running("netlab", args.scale + 100) as port:
            scale = bench(port, "netlab", args, args.scale, 1, 1)
        print(f"\nscale run: {args.scale} clients on one netlab serve, one message to all\n")
        if "error" in scale:
            print("failed:", scale["error"])
        else:
            print(
                markdown(
                    [
                        [
                            f"{scale['joined']}/{scale['clients']}",
                            fmt(scale["join_s"], 2),
                            f"{scale['delivered']:,}/{scale['expected']:,}",
                            fmt(scale["elapsed_s"] * 1000, 0),
                            fmt(scale["server_rss_mb"], 1),
                            fmt(scale["server_kb_per_idle_client"], 2),
                        ]
                    ],
                    [
                        "joined",
                        "join s",
                        "delivered/expected",
                        "one message to all (ms)",
                        "server peak RSS MB",
                        "KB per idle client",
                    ],
                )
            )
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "scale": scale}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

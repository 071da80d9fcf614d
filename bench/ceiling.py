"""The bench's own ceiling: how many copies a second ``netlab bench`` can count at most.

A writer process stands in for an ideal server: it has the copies ready (netlab-formatted chat
lines with the bench's payload) and pushes them to every connection with ``sendall``, C speed,
``--lines`` copies per write, round-robin over the connections. The bench side is the very code
of ``netlab bench`` (``BenchClient.count`` in ``netlab/loadgen/counter.py`` and the probes'
latency sampling) in one uvloop process. Whatever it reaches is the most a ``netlab bench``
run can report on this machine.

    python bench/ceiling.py                      # 200 connections, 1, 16, 64 and 256 lines a write
    python bench/ceiling.py --connections 200 --copies 2000000 --lines 64
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import sys
import time

from netlab import aio
from netlab import protocol as p
from netlab.loadgen import config as b
from netlab.loadgen import counter, run


def copy_line(sender: int, seq: int, kind: str) -> bytes:
    payload = b.PAYLOAD_FORMAT.format(sender=sender, kind=kind, seq=seq, sent_us=0)
    payload += "." * (32 - b.RECORD)
    return p.encode_line(p.chat_line(f"b1a2b-{sender}", payload))


def writer(port: int, connections: int, copies: int, lines: int, stride: int) -> None:
    """Connect, then send ``copies`` copies in all, ``lines`` lines per ``sendall``."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    chunk = b"".join(
        copy_line(i % 20, i, b.TIMED if i % stride == 0 else b.UNTIMED) for i in range(lines)
    )
    writes_per_socket = copies // connections // lines
    for _ in range(writes_per_socket):
        for s in socks:
            s.sendall(chunk)
    for s in socks:
        s.close()


async def count(connections: int, copies: int, lines: int) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    config = b.BenchConfig(clients=connections)
    bench = counter.Bench(config, time.perf_counter_ns())
    per_socket = copies // connections // lines * lines
    bench.expected = per_socket * connections
    bench.measuring = True
    probes = min(run.PROBES, connections)
    stride = run.timed_stride(per_socket, probes)
    made = 0

    def factory() -> counter.BenchClient:
        nonlocal made
        client = counter.BenchClient(bench, made, "x", None, probe=made < probes)
        client.counting = True
        made += 1
        return client

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    process = multiprocessing.get_context("spawn").Process(
        target=writer, args=(port, connections, copies, lines, stride)
    )
    process.start()

    async def first_copy() -> float:
        while not bench.delivered:
            await asyncio.sleep(0.001)
        return time.perf_counter()

    try:
        # Bounded, as a writer that failed to connect sends nothing at all.
        first = await asyncio.wait_for(first_copy(), 120)
        await asyncio.wait_for(bench.complete, 120)
    finally:
        server.close()
        await server.wait_closed()
        await loop.run_in_executor(None, process.join)
    return bench.delivered / (bench.last_copy - first), bench.delivered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--copies", type=int, default=4_000_000)
    parser.add_argument("--lines", type=int, action="append", help="lines per write")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    aio.raise_file_limit(args.connections * 2 + 64)
    print("| lines per write | copies counted | copies/s (median) | copies/s (best) |")
    print("|---|---|---|---|")
    for lines in args.lines or [1, 16, 64, 256]:
        rates = []
        for _ in range(args.rounds):
            rate, counted = aio.run(count(args.connections, args.copies, lines))
            rates.append(rate)
        print(
            f"| {lines} | {counted:,} | {statistics.median(rates):,.0f} | {max(rates):,.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

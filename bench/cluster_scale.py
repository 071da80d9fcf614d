"""40,000 clients over 4 servers of one cluster: how long they take to join, how long one
message takes to reach all the others, and each server's memory (issue 14's figure).

    python bench/cluster_scale.py [--clients 40000] [--servers 4] [--procs 4]

It starts a ``redis-server`` and ``--servers`` ``netlab serve --redis`` on free loopback ports
(``netlab.cluster.embedded``), then ``--procs`` load processes (this script again, with
``--worker``), each holding its share of the clients, so that no process passes its open-file
limit (one descriptor a connection; ``aio.raise_file_limit`` lifts each to its hard limit).
Client ``g`` joins server ``g % servers`` as ``uNNNNN``; the load processes join at once, a
few hundred connects in flight each. Once everyone is in, one client says one line with a
marker, and every load process counts the connections the marker reached (the sender's own
is not one). Every phase has a deadline; everything is on 127.0.0.1.

The parent and its workers talk in JSON lines over the workers' stdin and stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import time
import uuid

from netlab import aio
from netlab import protocol as p
from netlab.procstat import ProcessWatch

CONNECTS_AT_ONCE = 200
"""Connects in progress at once in one load process: within the servers' listen backlog."""
FILES_SPARE = 64


# ---- a load process ------------------------------------------------------------------------


class Client(asyncio.Protocol):
    """One chat client: answers the prompt with its nickname, waits for the welcome, then
    only looks for the marker (a tail of the last receive catches one cut in two)."""

    def __init__(self, nick: str, marker: bytes, joined: asyncio.Future) -> None:
        self.nick = nick
        self.marker = marker
        self.joined = joined
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.heard_at: float | None = None
        self.stage = "connecting"
        """Where a client that did not get in stopped: connecting, prompted, offered."""

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.stage = "connected"

    def data_received(self, data: bytes) -> None:
        if not self.joined.done():
            self.buffer += data
            if self.buffer.startswith(p.PROMPT) and self.transport is not None:
                self.buffer = self.buffer[len(p.PROMPT) :]
                self.transport.write(f"{self.nick}\n".encode())
                self.stage = "offered"
            if p.CONNECTED.encode() in self.buffer:
                self.stage = "joined"
                self.joined.set_result(time.time())
                self.buffer = self.buffer[-len(self.marker) :]
            return
        if self.heard_at is None:
            seen = self.buffer + data
            if self.marker in seen:
                self.heard_at = time.time()
            self.buffer = seen[-len(self.marker) :]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"{self.nick}: closed before the welcome"))


async def worker(
    number: int, procs: int, clients: int, addresses: list, marker: bytes, progress: bool
) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def tell(**fields) -> None:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()

    mine = list(range(number, clients, procs))
    limit = aio.raise_file_limit(len(mine) + FILES_SPARE)
    tell(ready=True, files=limit)
    deadline = json.loads(await reader.readline())["join"]
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    conns: list[Client] = []

    async def join(g: int) -> float:
        async with gate:
            client = Client(f"u{g:05d}", marker, loop.create_future())
            conns.append(client)
            await loop.create_connection(lambda: client, *addresses[g % len(addresses)])
            return await client.joined

    tasks = [loop.create_task(join(g)) for g in mine]
    started = time.monotonic()
    pending = set(tasks)
    while pending and time.monotonic() - started < deadline:
        _, pending = await asyncio.wait(pending, timeout=min(5.0, deadline))
        if progress:
            print(f"  [{number}] {len(tasks) - len(pending)} joined", file=sys.stderr)
    for task in tasks:
        task.cancel()  # (those still joining: counted as failed)
    await asyncio.gather(*tasks, return_exceptions=True)
    times = [t.result() for t in tasks if not t.cancelled() and t.exception() is None]
    stuck = collections.Counter(c.stage for c in conns if c.stage != "joined")
    for client in conns:
        if client.stage != "joined" and client.transport is not None:
            client.transport.close()  # late: out of the count
    conns = [c for c in conns if c.stage == "joined"]
    errors = [
        "timed out" if t.cancelled() else repr(t.exception())
        for t in tasks
        if t.cancelled() or t.exception() is not None
    ]
    tell(
        joined=len(times),
        last=max(times, default=0.0),
        errors=errors[:3],
        failed=len(errors),
        stuck=dict(stuck),
    )
    while command := json.loads(await reader.readline() or "{}"):
        if command.get("say"):
            sender = next(c for c in conns if c.joined.done() and not c.joined.exception())
            assert sender.transport is not None
            sender.transport.write(command["say"].encode() + b"\n")
            tell(sent=time.time())
        elif command.get("count"):
            deadline = time.monotonic() + command["count"]
            expected = len(times) - (1 if command.get("sender") else 0)
            while time.monotonic() < deadline:
                if sum(c.heard_at is not None for c in conns) >= expected:
                    break
                await asyncio.sleep(0.02)
            heard = [c.heard_at for c in conns if c.heard_at is not None]
            tell(heard=len(heard), last=max(heard, default=0.0))
        elif command.get("quit"):
            break


# ---- the parent ----------------------------------------------------------------------------


class Workers:
    def __init__(self, args, addresses: list, marker: bytes) -> None:
        command = [sys.executable, __file__, "--worker"]
        self.procs = [
            subprocess.Popen(
                [
                    *command,
                    *("--number", str(n), "--procs", str(args.procs)),
                    *("--clients", str(args.clients), "--marker", marker.decode()),
                    *(["--progress"] if args.progress else []),
                    "--addresses",
                    json.dumps(addresses),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(args.procs)
        ]

    def send(self, fields: dict, only: int | None = None) -> None:
        for n, proc in enumerate(self.procs):
            if only is None or n == only:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(fields) + "\n")
                proc.stdin.flush()

    def read(self, n: int) -> dict:
        assert self.procs[n].stdout is not None
        line = self.procs[n].stdout.readline()
        if not line:
            raise SystemExit(f"load process {n} ended early (exit {self.procs[n].wait()})")
        return json.loads(line)

    def read_all(self) -> list[dict]:
        return [self.read(n) for n in range(len(self.procs))]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def mib(value: int | None) -> str:
    return "?" if value is None else f"{value / 2**20:.0f} MiB"


def run(args) -> None:
    from netlab.cluster.embedded import EmbeddedCluster
    from netlab.serve.config import ServerConfig

    per_server = -(-args.clients // args.servers)
    options = ServerConfig(
        rate_limit=0,
        max_clients=per_server + FILES_SPARE,
        log_level="warning",
        notice_burst=args.notice_burst,
    ).arguments()
    cluster = EmbeddedCluster(args.servers, options).start()
    marker = f"MARK{uuid.uuid4().hex[:12]}".encode()
    workers = Workers(args, [list(a) for a in cluster.addresses], marker)
    try:
        ready = workers.read_all()
        share = -(-args.clients // args.procs)
        files = min(r["files"] or 0 for r in ready)
        print(
            f"{args.clients} clients over {args.servers} servers, {args.procs} load processes"
            f" ({share} connections each, open-file limit {files}),"
            f" --notice-burst {args.notice_burst}"
        )
        if files and share + FILES_SPARE > files:
            raise SystemExit(f"{share} connections a process pass its open-file limit {files}")
        start = time.time()
        workers.send({"join": args.join_deadline})
        joined = workers.read_all()
        count = sum(j["joined"] for j in joined)
        took = max(j["last"] for j in joined) - start
        print(f"joined: {count} of {args.clients} in {took:.1f} s")
        for j in joined:
            if j["failed"]:
                print(f"  a load process: {j['failed']} failed ({j['stuck']}), e.g. {j['errors']}")
        watches = [ProcessWatch(s.pid) for s in cluster.servers]
        print("RSS after the joins: " + ", ".join(mib(w.rss()) for w in watches))
        time.sleep(args.settle)  # the join notices' last batches go out
        workers.send({"say": f"one line for everyone {marker.decode()}"}, only=0)
        sent = workers.read(0)["sent"]
        for n in range(args.procs):
            workers.send({"count": args.deadline, "sender": n == 0}, only=n)
        heard = workers.read_all()
        reached = sum(h["heard"] for h in heard)
        last = max(h["last"] for h in heard)
        print(
            f"one message: reached {reached} of {count - 1} others"
            f" in {last - sent:.2f} s (the last copy)"
        )
        print("RSS after the message: " + ", ".join(mib(w.rss()) for w in watches))
        cpu = [w.cpu_seconds() for w in watches]
        print("server CPU so far: " + ", ".join(f"{c:.1f} s" if c else "?" for c in cpu))
        load = [ProcessWatch(proc.pid).cpu_seconds() for proc in workers.procs]
        print("load processes' CPU: " + ", ".join(f"{c:.1f} s" if c else "?" for c in load))
        loadavg = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"load average: {loadavg} on {os.cpu_count()} CPUs")
        redis = (
            ProcessWatch(cluster.redis.proc.pid) if cluster.redis and cluster.redis.proc else None
        )
        print(f"redis-server RSS: {mib(redis.rss() if redis else None)}")
        workers.send({"quit": True})
        for number, server in enumerate(cluster.servers, 1):
            said = [line for line in server.log().splitlines() if line.strip()]
            if said:
                print(f"server {number} logged {len(said)} lines, e.g.:", *said[:4], sep="\n  ")
    finally:
        workers.stop()
        cluster.stop()


def main() -> None:
    from netlab.serve.config import ServerConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40_000)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--procs", type=int, default=4, help="load processes")
    parser.add_argument("--join-deadline", type=float, default=120.0, help="seconds to join")
    parser.add_argument("--deadline", type=float, default=30.0, help="seconds for the message")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before it is sent")
    parser.add_argument(
        "--notice-burst",
        type=int,
        default=ServerConfig.notice_burst,
        help="the servers' --notice-burst (join notices a second one by one, on each server)",
    )
    parser.add_argument("--progress", action="store_true", help="joins so far, every 5 s")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--number", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--marker", default="", help=argparse.SUPPRESS)
    parser.add_argument("--addresses", default="[]", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        addresses = [tuple(a) for a in json.loads(args.addresses)]
        marker = args.marker.encode()
        aio.run(worker(args.number, args.procs, args.clients, addresses, marker, args.progress))
    else:
        run(args)


if __name__ == "__main__":
    main()

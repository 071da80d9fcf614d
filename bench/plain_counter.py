"""The yardstick for ``netlab bench``'s counting: a plain asyncio script, nothing but
``bytes.count``, against the same server and load (issue 16: the bench must count at least
as fast as this, docs/performance.md).

    netlab serve --port 55555 --rate-limit 0 --max-clients 300 --no-console &
    python bench/plain_counter.py --target 127.0.0.1:55555 --messages 2000

It joins ``--clients`` netlab clients (the NICK prompt, a nickname line, the welcome), lets
the first ``--senders`` send ``--messages`` 32-byte lines each as fast as the server takes
them, and counts the ``@@`` markers every other client receives. It prints copies counted and
copies per second from the first send to the last copy.
"""

import argparse
import asyncio
import os
import time

MARK = b"@@"


class Counter(asyncio.Protocol):
    def __init__(self, nick, totals):
        self.nick, self.totals = nick, totals
        self.transport = None
        self.joined = asyncio.get_running_loop().create_future()
        self.head = b""
        self.answered = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if self.joined.done():
            self.totals["copies"] += data.count(MARK)
            self.totals["last"] = time.perf_counter()
            if self.totals["copies"] >= self.totals["expected"] and not self.totals["done"].done():
                self.totals["done"].set_result(None)
            return
        self.head += data
        if not self.answered and self.head.startswith(b"NICK"):
            self.answered = True
            self.transport.write(self.nick.encode() + b"\n")
        if b"Connected to server!" in self.head:
            self.joined.set_result(None)

    def connection_lost(self, exc):
        if not self.joined.done():
            self.joined.set_exception(ConnectionError("closed before the welcome"))


async def send(counter, number, messages):
    line = (b"@@%05d" % number).ljust(31, b".") + b"\n"
    for seq in range(messages):
        counter.transport.write(line)
        if seq % 8 == 7:
            await asyncio.sleep(0)  # let the readers run between bursts


async def main(args):
    loop = asyncio.get_running_loop()
    host, port = args.target.rsplit(":", 1)
    totals = {"copies": 0, "last": 0.0, "done": loop.create_future()}
    totals["expected"] = args.senders * args.messages * (args.clients - 1)
    tag = os.urandom(2).hex()
    counters = [Counter(f"p{tag}-{i}", totals) for i in range(args.clients)]
    gate = asyncio.Semaphore(256)

    async def join(counter):
        async with gate:
            await loop.create_connection(lambda: counter, host, int(port))
            await counter.joined

    await asyncio.gather(*(join(c) for c in counters))
    totals["copies"] = 0
    start, cpu = time.perf_counter(), os.times()
    senders = counters[: args.senders]
    await asyncio.gather(*(send(c, i, args.messages) for i, c in enumerate(senders)))
    # Done when every copy arrived, or when none has for 3 s (a server may drop a reader).
    while not totals["done"].done() and time.perf_counter() - max(start, totals["last"]) < 3:
        await asyncio.wait([totals["done"]], timeout=0.25)
    spent = sum(os.times()[:2]) - sum(cpu[:2])
    elapsed = totals["last"] - start
    for c in counters:
        c.transport.abort()
    print(
        f"{totals['copies']:,} of {totals['expected']:,} copies counted in {elapsed:.3f} s:"
        f" {totals['copies'] / elapsed:,.0f} copies/s,"
        f" {spent / max(1, totals['copies']) * 1e6:.4f} us CPU per copy (send and count)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="127.0.0.1:55555")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as netlab bench does")
    arguments = parser.parse_args()
    if arguments.uvloop:
        import uvloop

        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))

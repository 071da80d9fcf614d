"""Joining every bench client: many connects in flight at once, progress as they get in, and
a server that stops letting them in (full, or busy-looping like the handout's) told as such."""

from __future__ import annotations

import asyncio
import time

from netlab.loadgen.config import SYNC, BenchConfig, BenchError
from netlab.loadgen.counter import BenchClient
from netlab.loadgen.progress import Progress
from netlab.protocol.client_session import Dialect

CONNECTS_AT_ONCE = 256
"""Connections in progress at once: enough to join thousands quickly, few enough to stay
within the server's listen backlog."""
LINES_CONNECTS_AT_ONCE = 8
"""The same for a relay with no handshake, which may have a tiny backlog (ncat's is 10): a
connection counts as in progress until the first bytes arrive on it (or ``LINES_QUIET``)."""
LINES_QUIET = 0.5
SYNC_LINE = SYNC + b"\n"


def stalled(
    joined: int, clients: int, seconds: float, said: BaseException | None, protocol: str = ""
) -> str:
    """The one line for a join that stopped: ``12 of 200 joined in 10 s: ...``; when nobody
    got in though the server answered, the other protocols are named as the likely cause."""
    took = f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"
    line = f"{joined} of {clients} joined in {took} s: the server may be full or not answering"
    if said is not None and str(said):
        line += f" (it said: {said})"
        if joined == 0 and protocol:
            others = " or ".join(f"--protocol {d.value}" for d in Dialect if d.value != protocol)
            line += f"; if it speaks another protocol, try {others}"
    return line


async def join_all(
    clients: list[BenchClient],
    config: BenchConfig,
    addresses: list[tuple[str, int]],
    progress: Progress,
    stop: asyncio.Event,
) -> list[BaseException]:
    """Connect and join every client; stop when all are done, when none has got in (or been
    refused) for ``join_timeout`` seconds, or on ``stop``. The errors of those that failed."""
    loop = asyncio.get_running_loop()
    lines = config.protocol == Dialect.lines.value
    gate = asyncio.Semaphore(LINES_CONNECTS_AT_ONCE if lines else CONNECTS_AT_ONCE)
    changed = asyncio.Event()
    finished = ok = 0

    # Several servers (a cluster's): the clients in turn, so senders are on each as well.
    where = {id(client): addresses[i % len(addresses)] for i, client in enumerate(clients)}

    async def join(client: BenchClient) -> None:
        nonlocal finished, ok
        try:
            async with gate:
                await loop.create_connection(lambda: client, *where[id(client)])
                if not lines:
                    await client.joined
                else:
                    # Anything said to it (a greeting, another client's sync) shows that the
                    # server has accepted it; a silent server gets a short wait instead.
                    await asyncio.wait([client.heard], timeout=LINES_QUIET)
            ok += 1
        finally:
            finished += 1
            changed.set()

    tasks = [loop.create_task(join(c)) for c in clients]
    stopping = loop.create_task(stop.wait())
    try:
        while finished < len(clients) and not stop.is_set():
            changed.clear()
            waiting = loop.create_task(changed.wait())
            done, _ = await asyncio.wait(
                {waiting, stopping}, timeout=config.join_timeout, return_when="FIRST_COMPLETED"
            )
            waiting.cancel()
            progress.joined(ok)
            if not done:
                break  # nobody got in or was turned away for join_timeout: it has stalled
    finally:
        stopping.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    errors = [t.exception() for t in tasks if not t.cancelled() and t.exception() is not None]
    if lines and not errors and not stop.is_set():
        await sync_lines(clients, config.join_timeout)
    return errors  # type: ignore[return-value]


async def sync_lines(clients: list[BenchClient], timeout: float) -> None:
    """A relay with no handshake: repeat a sync line until every other client has seen one,
    so that no one starts counting before the server has registered everyone."""
    sender = clients[0]
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and not sender.lost:
        assert sender.transport is not None
        sender.transport.write(SYNC_LINE)
        waiting = [c.joined for c in clients[1:] if not c.joined.done()]
        if not waiting:
            break
        await asyncio.wait(waiting, timeout=0.25)
        if all(c.joined.done() for c in clients[1:]):
            break
    # The sync's own copies may still be on their way back; the sender cannot see its own.
    sender._joined(b"")


def check_joined(
    joined: int, config: BenchConfig, errors: list[BaseException], seconds: float, where: str
) -> None:
    """BenchError in one line unless every client got in."""
    if joined >= config.clients:
        return
    first = errors[0] if errors else None
    if isinstance(first, OSError) and joined == 0:
        raise BenchError(f"cannot connect to {where}: {first.strerror or first}")
    raise BenchError(stalled(joined, config.clients, seconds, first, config.protocol))

"""The connection to Redis: one publisher, one subscriber reader, and what an outage does.

Everything a server says to the others goes through ``publish`` (one queue, one connection,
so one sender's events stay in order) on one channel; everything the others say arrives on the
subscriber, read by its own task that only decodes and hands over (delivery to sockets is
buffered by the room), so Redis never finds it slow and never drops it
(``client-output-buffer-limit pubsub``). A server's own publications are not delivered to it
again: it delivered them locally when it published.

When Redis goes away: the first failure is logged once and ``on_down`` called once (the server
tells its clients); publications meanwhile are dropped (pub/sub is at most once); the link
retries with a doubling backoff; on return it subscribes again, runs the ``on_connect`` hooks
(the presence re-syncs) and only then calls ``on_up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry as SyncRetry

from netlab import aio
from netlab.cluster import redact

log = logging.getLogger("netlab.serve")

ERRORS = (RedisError, OSError, asyncio.TimeoutError)
"""What a lost or refused Redis looks like from here (ConnectionError is a RedisError)."""

Handler = Callable[[str, dict], None]
"""Called with the origin server id and the event's fields."""


class Keys:
    """The names of one cluster's keys and channel (docs/cluster.md lists them)."""

    def __init__(self, cluster: str) -> None:
        self.prefix = f"netlab:{cluster}:"
        self.nodes = self.prefix + "nodes"
        self.bans = self.prefix + "bans"
        self.channel = self.prefix + "events"
        self.nick_prefix = self.prefix + "nick:"
        self.node_prefix = self.prefix + "node:"

    def nick(self, key: str) -> str:
        return self.nick_prefix + key

    def mark(self, skeleton: str) -> str:
        """A confusable skeleton's key: look-alike nicknames meet on it."""
        return self.prefix + "mark:" + skeleton

    def node(self, server_id: str) -> str:
        return self.node_prefix + server_id

    def users(self, server_id: str) -> str:
        return self.prefix + "users:" + server_id


_OPTIONS = {"decode_responses": True, "socket_connect_timeout": 1, "socket_timeout": 2}


class RedisLink:
    """One server's connection to the cluster's Redis."""

    def __init__(
        self,
        url: str,
        cluster: str,
        server_id: str,
        backoff: tuple[float, float] = (0.05, 0.5),
    ) -> None:
        self.url = url
        self.cluster = cluster
        self.keys = Keys(cluster)
        self.server_id = server_id
        self.backoff = backoff
        # No retries inside the client: the link retries itself, and says so once.
        self.redis = aioredis.from_url(url, retry=Retry(NoBackoff(), 0), **_OPTIONS)
        self.sync = redis.Redis.from_url(url, retry=SyncRetry(NoBackoff(), 0), **_OPTIONS)
        """For the re-sync after an outage (``nodes.NodeWatch.reclaim``), which blocks the loop
        on purpose so that no claim slips in between its steps; the room's claims and releases
        go through ``writes.Writes``, without blocking."""
        self.handlers: dict[str, Handler] = {}
        self.on_connect: list[Callable[[], Awaitable[None]]] = []
        self.workers: list[Callable[[], Awaitable[None]]] = []
        self.on_down: Callable[[], None] = lambda: None
        self.on_up: Callable[[], None] = lambda: None
        self.up = asyncio.Event()
        self.dropped = 0
        """Publications dropped in the last outage (docs/cluster.md measures them)."""
        self._queue: asyncio.Queue[list] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._down_since: float | None = None
        self._ever_up = False
        self._sending = False
        self._broken = asyncio.Event()

    # -- the server's side --

    def publish(self, kind: str, fields: dict) -> None:
        """Send an event to the other servers (dropped, and counted, while Redis is away)."""
        if not self.up.is_set():
            self.dropped += 1
            return
        self._queue.put_nowait([kind, fields])

    async def start(self, wait: float = 3.0) -> None:
        """Connect in the background; wait up to ``wait`` seconds for the first connection."""
        self._task = asyncio.create_task(self._supervise())
        with contextlib.suppress(asyncio.TimeoutError):
            await aio.within(self.up.wait(), wait)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=3)
        await _close_quietly(self.redis)
        with contextlib.suppress(*ERRORS):
            self.sync.close()

    async def flush(self, timeout: float = 2.0) -> None:
        """Until what was published has gone out (or ``timeout``): for a clean shutdown."""
        deadline = time.monotonic() + timeout
        while (self._queue.qsize() or self._sending) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    # -- the supervisor: connect, run, lose, retry --

    async def _supervise(self) -> None:
        delay = self.backoff[0]
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                if self._down_since is not None:
                    # None of the pool's connections from before the outage is used again:
                    # one whose Redis went away can fail the first command after the return.
                    await self.redis.connection_pool.disconnect()
                    self.sync.connection_pool.disconnect()
                await self.redis.ping()
                await pubsub.subscribe(self.keys.channel)
                for hook in self.on_connect:
                    await hook()
            except ERRORS as error:
                self.lost(error)
                await _close_quietly(pubsub)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # spread the servers
                delay = min(delay * 2, self.backoff[1])
                continue
            delay = self.backoff[0]
            self._broken.clear()
            self._restored()
            tasks = [
                asyncio.create_task(self._broken.wait()),  # a caller's command failed
                asyncio.create_task(read_events(pubsub, self.server_id, self.handlers)),
                asyncio.create_task(self._send()),
                *(asyncio.create_task(worker()) for worker in self.workers),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await _stop(tasks)
                await _close_quietly(pubsub)
            errors = [t.exception() for t in done if not t.cancelled() and t.exception()]
            error = errors[0] if errors else ConnectionError("the subscription ended")
            if not isinstance(error, ERRORS):
                log.error("cluster link failed: %r", error)
            self.lost(error)

    def lost(self, error: BaseException) -> None:
        """Redis failed (here or in a caller's command): down until the supervisor reconnects."""
        self.up.clear()
        self._broken.set()
        first = self._down_since is None
        if first:
            self._down_since, self.dropped = time.monotonic(), 0
        self.dropped += self._queue.qsize()
        self._queue = asyncio.Queue()
        if not first:
            return  # logged and told once per outage
        log.warning(
            "Redis at %s is unreachable (%s): the chat with the other servers is interrupted;"
            " local chat goes on, retrying",
            redact(self.url),
            error or type(error).__name__,
        )
        self.on_down()

    def _restored(self) -> None:
        self.up.set()
        if self._down_since is not None:
            outage = time.monotonic() - self._down_since
            log.info(
                "Redis at %s is back after %.1f s (%d publications lost): presence re-synced",
                redact(self.url),
                outage,
                self.dropped,
            )
            self._down_since = None
            self.on_up()
        elif not self._ever_up:
            log.info("joined the cluster %r on Redis at %s", self.cluster, redact(self.url))
        self._ever_up = True

    # -- the two loops that run while connected --

    async def _send(self) -> None:
        channel, queue = self.keys.channel, self._queue
        while True:
            events = [await queue.get()]
            self._sending = True
            while not queue.empty() and len(events) < FRAME_EVENTS * 8:
                events.append(queue.get_nowait())
            # A tick's events in few frames and one round trip: a receiver decodes one
            # message for many lines (the pure-Python parser costs tens of µs a message).
            frames = [frame(self.server_id, group) for group in framed(events)]
            if len(frames) == 1:  # the usual case: no pipeline to build
                await self.redis.publish(channel, frames[0])
            else:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for data in frames:
                        pipe.publish(channel, data)
                    await pipe.execute()
            self._sending = False


FRAME_EVENTS = 256
"""Events in one published message, at most."""
FRAME_TEXT = 256 << 10
"""Characters of chat text in one published message, at most, once it holds one event: a
``said`` carries a whole read of one sender, and a subscriber's output buffer in Redis is
limited (``client-output-buffer-limit pubsub``: 8 MB over 60 s by default)."""


def framed(events: list) -> list[list]:
    """``events`` in groups for one frame each: in order, each within both bounds."""
    groups: list[list] = [[]]
    size = 0
    for event in events:
        text = len(event[1].get("line") or "")
        if groups[-1] and (len(groups[-1]) >= FRAME_EVENTS or size + text > FRAME_TEXT):
            groups.append([])
            size = 0
        groups[-1].append(event)
        size += text
    return groups


def frame(origin: str, events: list) -> str:
    """One message on the channel: ``{"o": server, "e": [[kind, fields], ...]}``, in order."""
    return json.dumps({"o": origin, "e": events}, separators=(",", ":"), ensure_ascii=False)


async def read_events(pubsub: aioredis.client.PubSub, own: str, handlers: dict[str, Handler]):
    """Read the subscription as fast as it comes: decode, hand over, next. A server's own
    publications are skipped (it delivered them when it published)."""
    while True:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
        if message is None or message.get("type") != "message":
            continue
        try:
            data = json.loads(message["data"])
            origin, events = data["o"], [(kind, fields) for kind, fields in data["e"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignored a malformed cluster message: %r", message.get("data"))
            continue
        if origin == own:
            continue
        for kind, fields in events:
            handler = handlers.get(kind)
            if handler is None:
                continue
            try:
                handler(origin, fields)
            except Exception:
                # A bad event (or a bug) stays with that event: the reader goes on.
                log.exception("error while handling a cluster %r event", kind)


async def _stop(tasks: list[asyncio.Task]) -> None:
    """Cancel ``tasks`` and wait for them, a little: redis-py can take a cancellation that
    arrives during a command for its own and carry on, so a second one may be needed."""
    for _ in range(3):
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=0.5)
        if not pending:
            break
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the supervisor reports the first one itself


async def _close_quietly(closable: object) -> None:
    # redis 5.0.0 has close(); later versions aclose() (and deprecate close()).
    close = getattr(closable, "aclose", None) or closable.close  # type: ignore[attr-defined]
    with contextlib.suppress(*ERRORS):
        await close()

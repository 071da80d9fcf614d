"""Presence changes sent to Redis without blocking the loop: ``Writes``.

A claim or a release is a Lua script (``scripts``) whose answer the room waits for without
the loop waiting: each is queued, and one task sends what was queued in one pipeline on one
connection, then the next batch. So the changes reach Redis in the order they were asked (a
release before a later claim of the same nickname), a join storm costs one round trip a batch
rather than one a join, and the answers come back as futures.

``EVALSHA``, the scripts loaded each time the link connects (an ``on_connect`` hook, so a
Redis restarted empty has them again before any claim): sending each script's text with
``EVAL`` would put a megabyte in a batch of a thousand claims, and redis-py's pipeline asks
``SCRIPT EXISTS`` before each batch for registered scripts. A ``NOSCRIPT`` all the same
(``SCRIPT FLUSH`` by hand) is an error like any other: the link reconnects, and loads them
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

from redis.exceptions import NoScriptError

from netlab.cluster.link import ERRORS, RedisLink

BATCH = 1024
"""Scripts in one pipeline, at most (one round trip stays short)."""


class Writes:
    def __init__(self, link: RedisLink, scripts: tuple[str, ...]) -> None:
        self.link = link
        self.scripts = {script: hashlib.sha1(script.encode()).hexdigest() for script in scripts}
        self._queue: list[tuple[str, list[str], list[str], asyncio.Future]] = []
        self._task: asyncio.Task[None] | None = None
        link.on_connect.append(self._load)

    async def _load(self) -> None:
        for script in self.scripts:
            await self.link.redis.script_load(script)

    def call(self, script: str, keys: list[str], args: list[str]) -> asyncio.Future:
        """Run ``script`` (one of ``scripts``) after everything asked before; the future gets
        its answer, or the error (one of ``link.ERRORS``) that cut Redis off (``link.lost`` is
        told)."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((self.scripts[script], keys, args, future))
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return future

    async def flush(self, timeout: float = 2.0) -> None:
        """Until what was asked has been answered (or ``timeout``): for a clean shutdown."""
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        batch: list = []
        try:
            while self._queue:
                batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
                if not self.link.up.is_set():  # cut off meanwhile: no waiting on a timeout
                    answers = [ConnectionError("Redis is unreachable")] * len(batch)
                else:
                    answers = await self._send(batch)
                for (*_, future), answer in zip(batch, answers, strict=True):
                    if future.done():
                        continue
                    if isinstance(answer, BaseException):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
                batch = []
        except asyncio.CancelledError:
            for *_, future in [*batch, *self._queue]:
                future.cancel()  # shutting down: no answer is coming
            self._queue = []
            raise
        finally:
            self._task = None

    async def _send(self, batch: list) -> list:
        try:
            async with self.link.redis.pipeline(transaction=False) as pipe:
                for sha, keys, args, _ in batch:
                    pipe.evalsha(sha, len(keys), *keys, *args)
                answers = await pipe.execute(raise_on_error=False)
        except ERRORS as error:
            self.link.lost(error)
            return [error] * len(batch)
        missing = next((a for a in answers if isinstance(a, NoScriptError)), None)
        if missing is not None:
            self.link.lost(missing)  # reconnect, and load them again
        return answers

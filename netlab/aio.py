"""The event loop: uvloop where the platform has it, asyncio's own elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on the fastest loop available."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """``await awaitable``, raising TimeoutError after ``seconds`` (None: no limit).

    Not ``asyncio.wait_for``: on Python 3.11 it returns the result when the awaited thing
    completes just as the task is cancelled, swallowing the cancel, so a Ctrl-C that lands as a
    bot's welcome arrives was lost and the run went on. ``asyncio.timeout`` keeps the cancel."""
    if sys.version_info < (3, 11):  # no asyncio.timeout there: wait_for, race and all
        return await asyncio.wait_for(awaitable, seconds)
    async with asyncio.timeout(seconds):
        return await awaitable


def raise_file_limit(wanted: int) -> int | None:
    """Lift this process's open-file limit to its hard limit, as many sockets need one
    descriptor each; return the soft limit now in force (None where there is no such limit)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard or hard == resource.RLIM_INFINITY:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + 64)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]

"""netlab.aio.within: a timeout that never swallows a cancel."""

from __future__ import annotations

import asyncio
import sys

import pytest

from netlab import aio


async def _cancelled_as_it_completes(waiting) -> str:
    """Cancel a task in the very step its awaited future completes: what a Ctrl-C does when
    it lands as a bot's welcome arrives."""
    future = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(waiting(future))
    await asyncio.sleep(0)  # the task now waits on the future
    future.set_result("welcome")
    task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        return "cancelled"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is Python 3.11+")
async def test_a_cancel_that_lands_as_the_result_arrives_is_kept():
    assert await _cancelled_as_it_completes(lambda f: aio.within(f, 10)) == "cancelled"


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for was rewritten in 3.12")
async def test_wait_for_is_why_within_exists():
    # If this starts failing, Python fixed wait_for and within can become it again.
    assert await _cancelled_as_it_completes(lambda f: asyncio.wait_for(f, 10)) == "welcome"


async def test_within_times_out_and_passes_results():
    assert await aio.within(asyncio.sleep(0, "done"), 1) == "done"
    with pytest.raises(TimeoutError):
        await aio.within(asyncio.sleep(5), 0.01)

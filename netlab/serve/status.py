"""The server's use of the status file (``netlab.status``) that ``netlab sockets`` reads.

The one place that writes it, so that switching to ``status.StatusWriter`` is one change.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

from netlab import status

log = logging.getLogger("netlab.serve")


class StatusFile:
    """Written at once on the first change, then at most every ``delay`` (each write is
    O(room)); a failed write (a full disk, no descriptor left) is retried, not given up."""

    RETRY = 2.0
    """Seconds before a failed write is tried again."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        document: Callable[[], dict[str, Any]],
        room_size: Callable[[], int],
        enabled: bool,
    ) -> None:
        self.loop, self.document, self.room_size = loop, document, room_size
        self.enabled = enabled
        self.failing = False
        self._timer: asyncio.TimerHandle | None = None
        self._last = float("-inf")

    def changed(self) -> None:
        if not self.enabled or self._timer is not None:
            return
        # A crowd of thousands waits longer between rewrites; the first change is written
        # at once, so that `netlab sockets` shows a newcomer's nickname right away.
        delay = max(0.2, self.room_size() / 2000)
        wait = self._last + delay - self.loop.time()
        if wait <= 0:
            self.write()
        else:
            self._timer = self.loop.call_later(wait, self.write)

    def write(self) -> None:
        self._timer = None
        if not self.enabled:
            return
        self._last = self.loop.time()
        try:
            status.write_status(self.document())
        except OSError as error:
            if not self.failing:
                log.warning("cannot write the status file (retrying): %s", error)
            self.failing = True
            self._timer = self.loop.call_later(self.RETRY, self.write)
            return
        if self.failing:
            log.info("the status file is written again")
            self.failing = False

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.enabled:
            status.remove_status()


def document(listen: list[str], clients: list[dict[str, str]]) -> dict[str, Any]:
    return {"pid": os.getpid(), "listen": listen, "clients": clients}

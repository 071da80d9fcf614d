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
    """Rewritten a moment after each change, never more often (each write is O(room))."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        document: Callable[[], dict[str, Any]],
        room_size: Callable[[], int],
        enabled: bool,
    ) -> None:
        self.loop, self.document, self.room_size = loop, document, room_size
        self.enabled = enabled
        self._timer: asyncio.TimerHandle | None = None

    def changed(self) -> None:
        if self.enabled and self._timer is None:
            # Each write is O(room): a crowd of thousands waits longer between rewrites.
            delay = max(0.2, self.room_size() / 2000)
            self._timer = self.loop.call_later(delay, self.write)

    def write(self) -> None:
        self._timer = None
        if not self.enabled:
            return
        try:
            status.write_status(self.document())
        except OSError as error:
            log.warning("cannot write the status file: %s", error)
            self.enabled = False

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.enabled:
            status.remove_status()


def document(listen: list[str], clients: list[dict[str, str]]) -> dict[str, Any]:
    return {"pid": os.getpid(), "listen": listen, "clients": clients}

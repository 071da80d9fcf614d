"""``netlab serve``: the asyncio chat server (its entry module; the parts are in
``netlab.serve``).

* ``serve.config``: ``ServerConfig``, every option, built once by the CLI;
* ``protocol.server_session``: the sans-IO ``ServerSession`` (handshake, framing, deadlines);
* ``serve.connection``: the asyncio ``Protocol`` around one session, given a narrow
  ``ServerState``;
* ``serve.room`` and ``serve.outbox``: the chat as this server takes part in it, and the
  coalesced per-tick writes;
* ``serve.presence`` and ``serve.bus``: the seams a chat shared by several servers goes
  through (who is online where; what is said, tagged with its origin);
* ``serve.notices``: join and leave notices under a copy budget;
* ``serve.ratelimit``: the token bucket and the flood rule;
* ``serve.commands``: the one command table, for the chat and the console;
* ``serve.console``, ``serve.logs``: the operator console, the log (the status file for
  ``netlab sockets`` is ``netlab.status.StatusWriter``);
* ``serve.lifecycle``: ``Server``: start-up, the serve loop, graceful shutdown.
"""

from __future__ import annotations

import logging
import sys

from netlab import aio
from netlab.serve.config import ConfigError, ServerConfig
from netlab.serve.lifecycle import BANNER, ServeError, Server
from netlab.serve.logs import setup_logging

__all__ = ["BANNER", "ConfigError", "ServeError", "Server", "ServerConfig", "run", "serve"]

log = logging.getLogger("netlab.serve")


async def serve(config: ServerConfig) -> None:
    if config.redis:  # one chat with the other servers on that Redis (docs/cluster.md)
        from netlab.cluster.serve import serve as serve_in_cluster

        await serve_in_cluster(config)
        return
    server = Server(config)
    await server.start()
    await server.serve()


def run(config: ServerConfig) -> int:
    """``netlab serve``: returns the exit status."""
    try:
        setup_logging(config)
    except OSError as error:
        print(f"netlab serve: cannot write the log to {config.log_file}: {error}", file=sys.stderr)
        return 1
    try:
        aio.run(serve(config))
    except ServeError as error:
        log.error("%s", error)
        return 1
    except KeyboardInterrupt:
        pass
    return 0

"""One chat across several ``netlab serve`` processes, shared through Redis.

The server's seams (``Presence`` and the origin-tagged ``Bus``) get Redis implementations
here; without ``--redis`` nothing in this package is imported. The pieces:

* ``link``: the connection to Redis, its one subscriber reader and one publisher, and what
  an outage does (logged once, clients told once, reconnect with backoff, re-sync).
* ``redis_presence``: nickname claims, per-server heartbeats and the reaping of dead servers.
* ``redis_bus``: chat events published with their origin, delivered once everywhere else.

Keys and channels (docs/cluster.md draws them), for the cluster ``NAME``:
``netlab:NAME:nick:<key>`` (a claim), ``netlab:NAME:users:<server>`` (a server's users),
``netlab:NAME:node:<server>`` (its heartbeat, with a TTL), ``netlab:NAME:nodes``,
``netlab:NAME:bans`` and the pub/sub channel ``netlab:NAME:events``.
"""

from __future__ import annotations

import re
from types import ModuleType
from urllib.parse import urlsplit

DEFAULT_CLUSTER = "netlab"
DEFAULT_NODE_TIMEOUT = 10.0

INTERRUPTED = (
    "The chat with the other servers is interrupted: for now only people on this server"
    " see your messages."
)
RESTORED = "The chat with the other servers is whole again."

INSTALL_HINT = "pip install 'netlab[cluster]' (in a clone of netlab: pip install '.[cluster]')"

_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ClusterError(Exception):
    """A cluster option cannot be used; the message says why in one line."""


def load_redis() -> ModuleType:
    """``redis.asyncio``, or a ClusterError saying how to install it."""
    try:
        import redis.asyncio as aioredis
    except ImportError:
        raise ClusterError(
            f"--redis needs the redis package (5 or later): {INSTALL_HINT}"
        ) from None
    return aioredis


def check_redis_url(url: str) -> str:
    """``url`` when it is ``redis://HOST:PORT/DB`` (or ``rediss://``), else a ClusterError."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ClusterError(f"--redis {url!r}: {error} (expected redis://HOST:PORT/DB)") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ClusterError(f"--redis {url!r} is not redis://HOST:PORT/DB")
    if port == 0:
        raise ClusterError(f"--redis {url!r}: port 0 is not a Redis port")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ClusterError(f"--redis {url!r}: the database must be a number (redis://HOST:PORT/0)")
    return url


def check_cluster_name(name: str) -> str:
    if not _CLUSTER_NAME.fullmatch(name):
        raise ClusterError(
            f"--cluster {name!r}: use 1-64 letters, digits, '.', '_' or '-' (it names Redis keys)"
        )
    return name


MIN_NODE_TIMEOUT = 0.5


def check_options(url: str, name: str, node_timeout: float) -> None:
    """The cluster options of ``netlab serve``, and the client library they need."""
    check_redis_url(url)
    check_cluster_name(name)
    if node_timeout < MIN_NODE_TIMEOUT:
        raise ClusterError(
            f"--node-timeout must be at least {MIN_NODE_TIMEOUT:g} s, not {node_timeout:g}"
        )
    load_redis()


def redact(url: str) -> str:
    """The URL for logs, without a password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"***@{netloc}").geturl()

"""``ServerConfig``: every option of ``netlab serve``, built once from the command line.

Light to import on purpose: ``netlab simulate`` and ``netlab bench`` read its defaults and
build a child server's arguments from it (``arguments``) without loading the server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from netlab import bounds

RATE_LIMIT_MAX = 1e9
"""The highest ``--rate-limit``: a billion a second is no limit, and its burst stays finite."""


LOG_LEVELS = ("debug", "info", "warning", "error")
"""``--log-level``'s choices, least important first (the CLI and scenarios offer these)."""
LOG_FORMATS = ("text", "json")


class ConfigError(ValueError):
    """An option's value cannot be served; the message is one line naming the option."""


def burst_for(rate_limit: float) -> int:
    """The rate limit's burst: twice the rate, at least one (the one rule, CLI and code)."""
    return max(1, int(rate_limit * 2)) if bounds.positive(rate_limit) else 1


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 55555
    max_clients: int = 100
    max_per_address: int = 16
    """Connections at once from one non-loopback address (loopback is exempt: the lab runs
    there)."""
    admin_password: str | None = None
    handshake_timeout: float = 10.0
    """Seconds from accept within which a nickname must have arrived (a total deadline)."""
    max_line_bytes: int = 4096
    rate_limit: float = 10.0
    """Messages per second per client; 0 turns the limit off."""
    rate_burst: int | None = None
    """Messages at once; None: ``burst_for(rate_limit)``."""
    flood_disconnect: int = 50
    """Dropped messages within ten seconds after which a flooder is disconnected."""
    send_buffer_bytes: int = 1 << 20
    """A client whose unsent output grows past this is not reading: it is disconnected."""
    handout_grace: float = 0.3
    """How long a bare nickname waits for a newline before it is taken as a handout client's."""
    notice_burst: int = 5
    """Join (or leave) notices per second always sent one by one, however big the room."""
    notice_budget: int = 50_000
    """Copies of one-by-one notices per second: a room of N people gets budget/N notices a
    second one by one (at least ``notice_burst``); more are coalesced into one line a second."""
    log_level: str = "info"
    log_format: str = "text"
    log_file: str | None = None
    console: bool | None = None
    """The operator console on standard input; None: when standard input is a terminal."""
    status_file: bool = True
    banner: bool = True
    redis: str | None = None
    """``redis://HOST:PORT/DB``: share one chat with the other servers on it (netlab.cluster)."""
    cluster: str = "netlab"
    """The chat's name on that Redis: the servers with one name share one chat."""
    node_timeout: float = 10.0
    """Seconds within which a dead server's users are announced as left by the others."""

    def __post_init__(self) -> None:
        self._check()
        if self.rate_burst is None:
            self.rate_burst = burst_for(self.rate_limit)

    def _check(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"--{_option(f.name)} must be a finite number, not {value}")
        if self.handshake_timeout < 0.1:
            raise ConfigError(
                f"--handshake-timeout must be at least 0.1 s, not {self.handshake_timeout:g}"
            )
        if self.rate_limit < 0:
            raise ConfigError(f"--rate-limit must be 0 (off) or more, not {self.rate_limit:g}")
        if self.redis is not None:
            from netlab import cluster  # light: the redis package is only looked for

            try:
                cluster.check_options(self.redis, self.cluster, self.node_timeout)
            except cluster.ClusterError as error:
                raise ConfigError(str(error)) from None
        if self.rate_limit > RATE_LIMIT_MAX:
            raise ConfigError(
                f"--rate-limit must be at most {RATE_LIMIT_MAX:g} messages a second"
                f" (0 turns it off), not {self.rate_limit:g}"
            )

    def arguments(self) -> list[str]:
        """The ``netlab serve`` options that give a child this configuration: every field
        that differs from its default, written with all its digits."""
        defaults = ServerConfig()
        args: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _NOT_OPTIONS or value == getattr(defaults, f.name) or value is None:
                continue
            if f.name == "rate_burst" and value == burst_for(self.rate_limit):
                continue
            option = "--" + _option(f.name)
            if isinstance(value, bool):
                args.append(option if value else "--no-" + option[2:])
            else:
                args += [option, repr(value) if isinstance(value, float) else str(value)]
        return args


def _option(name: str) -> str:
    return name.replace("_", "-")


_NOT_OPTIONS = frozenset(
    {
        "flood_disconnect",
        "handout_grace",
        "notice_burst",
        "notice_budget",
        "status_file",
        "banner",
        "rate_burst",
    }
)
"""Fields with no ``netlab serve`` option (set in code and tests only)."""

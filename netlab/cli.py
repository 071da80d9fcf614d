"""The ``netlab`` command line: options in, one config object out, one call into a module.

Each command imports its module only when it runs, so ``netlab sockets`` does not pay for the
server's or the bots' imports.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from netlab import __version__

app = typer.Typer(
    name="netlab",
    help="The network-programming chat lab as one toolkit: serve, chat, simulate, sockets, bench.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"netlab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Optional[bool] = typer.Option(  # noqa: UP045 (typer needs Optional on 3.10)
        None,
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """The network-programming chat lab as one toolkit."""


# ---- netlab serve --------------------------------------------------------------------------
# Each command keeps one shape: options -> one config object -> one call into its module.


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class LogFormat(str, Enum):
    text = "text"
    json = "json"


@app.command()
def serve(
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on (::1 for IPv6; 0.0.0.0 opens it to the network)."
    ),
    port: int = typer.Option(55555, min=0, max=65535, help="TCP port (0: any free port)."),
    max_clients: int = typer.Option(
        100, min=1, help="Connections served at once; more are told the server is full."
    ),
    admin_password: Optional[str] = typer.Option(  # noqa: UP045
        None,
        envvar="NETLAB_ADMIN_PASSWORD",
        help="Password for /login (operator rights). Unset: no operators.",
    ),
    handshake_timeout: float = typer.Option(
        10.0, min=0.1, help="Seconds a new connection has to send its nickname."
    ),
    max_line_bytes: int = typer.Option(
        4096, min=64, help="Longest message in bytes; longer ones are refused, never buffered."
    ),
    rate_limit: float = typer.Option(
        10.0, min=0, help="Messages per second per client (bursts of 2x allowed); 0 turns it off."
    ),
    send_buffer_bytes: int = typer.Option(
        1 << 20,
        min=1024,
        help="Unsent output a client may hold before it counts as not reading and is dropped.",
    ),
    log_level: LogLevel = typer.Option(LogLevel.info, help="Least important log level shown."),
    log_format: LogFormat = typer.Option(LogFormat.text, help="Log lines as text or JSON."),
    log_file: Optional[Path] = typer.Option(  # noqa: UP045
        None, dir_okay=False, help="Write the log to this file instead of standard error."
    ),
    console: Optional[bool] = typer.Option(  # noqa: UP045
        None,
        "--console/--no-console",
        help="Operator console on standard input (default: when it is a terminal).",
        show_default=False,
    ),
) -> None:
    """Run the chat server (the handout's protocol, plus everything the handout promises)."""
    from netlab.server import ServerConfig, run

    config = ServerConfig(
        host=host,
        port=port,
        max_clients=max_clients,
        admin_password=admin_password or None,
        handshake_timeout=handshake_timeout,
        max_line_bytes=max_line_bytes,
        rate_limit=rate_limit,
        rate_burst=max(1, int(rate_limit * 2)),
        send_buffer_bytes=send_buffer_bytes,
        log_level=log_level.value,
        log_format=log_format.value,
        log_file=str(log_file) if log_file else None,
        console=console,
    )
    raise typer.Exit(run(config))


def main() -> None:
    app()

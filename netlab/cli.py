"""The ``netlab`` command line: options in, one config object out, one call into a module.

Each command imports its module only when it runs, so ``netlab sockets`` does not pay for the
server's or the bots' imports.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
import typer.core

from netlab import __version__
from netlab.protocol.client_session import Dialect
from netlab.serve.config import LOG_FORMATS, LOG_LEVELS


class _NoBoolHelp:
    """``--help`` shows no ``<bool>``: a flag takes no value (Typer shows one on click 8.2)."""

    def get_help_option(self, ctx):  # type: ignore[no-untyped-def]
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class _Command(_NoBoolHelp, typer.core.TyperCommand):
    pass


class _Group(_NoBoolHelp, typer.core.TyperGroup):
    pass


app = typer.Typer(
    cls=_Group,
    name="netlab",
    help="The network-programming chat lab as one toolkit: serve, chat, simulate, sockets,"
    " bench, check.",
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
        metavar="",
        help="Print the version and exit.",
    ),
) -> None:
    """The network-programming chat lab as one toolkit."""


# ---- netlab serve --------------------------------------------------------------------------
# Each command keeps one shape: options -> one config object -> one call into its module.


# Typer offers an Enum's values as the choices; the names themselves live in serve.config.
LogLevel = Enum("LogLevel", {name: name for name in LOG_LEVELS}, type=str)
LogFormat = Enum("LogFormat", {name: name for name in LOG_FORMATS}, type=str)


@app.command(cls=_Command)
def serve(
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on (::1 for IPv6; 0.0.0.0 opens it to the network)."
    ),
    port: int = typer.Option(55555, min=0, max=65535, help="TCP port (0: any free port)."),
    max_clients: int = typer.Option(
        100, min=1, help="Connections served at once; more are told the server is full."
    ),
    max_per_address: int = typer.Option(
        16, min=1, help="Connections at once from one non-loopback address (loopback exempt)."
    ),
    admin_password: Optional[str] = typer.Option(  # noqa: UP045
        None,
        envvar="NETLAB_ADMIN_PASSWORD",
        help="Password for /login (operator rights). Unset: no operators.",
    ),
    handshake_timeout: float = typer.Option(
        10.0, help="Seconds from accept within which a nickname must arrive (at least 0.1)."
    ),
    max_line_bytes: int = typer.Option(
        4096, min=64, help="Longest message in bytes; longer ones are refused, never buffered."
    ),
    rate_limit: float = typer.Option(
        10.0, help="Messages per second per client (bursts of 2x allowed); 0 turns it off."
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
    # Two flags rather than one --console/--no-console pair: the pair's second name takes a
    # column of its own in --help, which left option names cut short at 80 columns.
    console: bool = typer.Option(
        False,
        "--console",
        metavar="",  # a flag: no <bool> shown (Typer shows one on click 8.2)
        help="Operator console on standard input even when it is not a terminal"
        " (by default there is one when it is).",
        show_default=False,
    ),
    no_console: bool = typer.Option(
        False,
        "--no-console",
        metavar="",
        help="No operator console, even on a terminal.",
        show_default=False,
    ),
    redis: Optional[str] = typer.Option(  # noqa: UP045
        None,
        metavar="redis://HOST:PORT/DB",
        help="Share one chat with every server on this Redis (docs/cluster.md; needs"
        " pip install 'netlab\\[cluster]').",
    ),
    cluster: str = typer.Option("netlab", help="The chat's name on that Redis."),
    node_timeout: float = typer.Option(
        10.0, min=0.5, help="Seconds within which a dead server's users are announced as left."
    ),
) -> None:
    """Run the chat server (the handout's protocol, plus everything the handout promises)."""
    from netlab.server import ConfigError, ServerConfig, run

    if console and no_console:
        typer.echo("netlab serve: --console and --no-console: choose one", err=True)
        raise typer.Exit(2)
    try:
        config = ServerConfig(
            host=host,
            port=port,
            max_clients=max_clients,
            max_per_address=max_per_address,
            admin_password=admin_password or None,
            handshake_timeout=handshake_timeout,
            max_line_bytes=max_line_bytes,
            rate_limit=rate_limit,
            send_buffer_bytes=send_buffer_bytes,
            log_level=log_level.value,
            log_format=log_format.value,
            log_file=str(log_file) if log_file else None,
            console=True if console else False if no_console else None,
            redis=redis,
            cluster=cluster,
            node_timeout=node_timeout,
        )
    except ConfigError as error:
        typer.echo(f"netlab serve: {error}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(run(config))


def _html_option(help: str, **kwargs: Any) -> Any:
    """``--html FILE``: where a command also writes its one self-contained HTML report."""
    return typer.Option(None, "--html", dir_okay=False, help=help, show_default=False, **kwargs)


# ---- netlab chat ---------------------------------------------------------------------------


def _one_of(*names: str):  # type: ignore[no-untyped-def]
    """An option callback that accepts ``names`` only, and says so in plain words (Typer's own
    check reads "Value error, 'foo' is not one of ...")."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in names:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(names)}")
        return value

    return check


_DIALECTS = tuple(d.value for d in Dialect)


def _protocol_option(default: str | None, help: str, **kwargs: Any) -> Any:
    """``--protocol``: one of the dialects, checked in plain words; ``help`` says what each
    means to the command."""
    return typer.Option(
        default, metavar="|".join(_DIALECTS), callback=_one_of(*_DIALECTS), help=help, **kwargs
    )


@app.command(cls=_Command)
def chat(
    host: str = typer.Option("127.0.0.1", help="Server address (a name, IPv4 or IPv6)."),
    port: int = typer.Option(55555, min=1, max=65535, help="Server TCP port."),
    nick: Optional[str] = typer.Option(  # noqa: UP045
        None,
        help="Your nickname (1-32 letters, digits, _ or -). Asked for when not given;"
        " in piped mode the first input line is taken.",
    ),
    protocol: str = _protocol_option(
        Dialect.netlab.value,
        "netlab: line protocol with server commands; handout: talk to the handout's"
        " server as its client.py does; lines: a plain line relay (ncat --chat).",
    ),
    debug: bool = typer.Option(
        False,
        "--debug",
        metavar="",
        help="Log connection events and errors with detail on standard error.",
    ),
) -> None:
    """Chat in the terminal (or, piped, send standard input's lines and print what arrives).

    Lines you send are paced under the server's rate limit, so a paste arrives whole.
    """
    from netlab.client import ChatConfig, run

    config = ChatConfig(host=host, port=port, nick=nick, protocol=protocol, debug=debug)
    raise typer.Exit(run(config))


# ---- netlab simulate -----------------------------------------------------------------------


@app.command(cls=_Command)
def simulate(
    path: Optional[Path] = typer.Argument(  # noqa: UP045
        None,
        metavar="SCENARIO",
        help="A scenario file (.yaml/.yml may be left off: scenarios/demo), a directory to run"
        " every scenario in it, or a built-in scenario's name (demo; see --list).",
        show_default=False,
    ),
    target: Optional[str] = typer.Option(  # noqa: UP045
        None,
        help="HOST:PORT of a server already running (default: the scenario's, else an embedded"
        " netlab serve).",
        show_default=False,
    ),
    protocol: Optional[str] = _protocol_option(  # noqa: UP045
        None,
        "How the bots speak: netlab, handout (the handout's client) or lines (a plain line"
        " chat such as ncat --chat). Default: the scenario's, else netlab.",
        show_default=False,
    ),
    speed: float = typer.Option(
        1.0, metavar="FACTOR", help="Scale every time in the scenario: 2 runs twice as fast."
    ),
    seed: Optional[int] = typer.Option(  # noqa: UP045
        None,
        help="Seed for the bots' random choices (default: the scenario's).",
        show_default=False,
    ),
    report: Optional[Path] = typer.Option(  # noqa: UP045
        None, dir_okay=False, help="Write the report as JSON to this file.", show_default=False
    ),
    transcript: Optional[Path] = typer.Option(  # noqa: UP045
        None,
        dir_okay=False,
        help="Write every line every bot sent and received, timestamped, to this file.",
        show_default=False,
    ),
    html: Optional[Path] = _html_option(  # noqa: UP045
        "Write one self-contained HTML report (a section per scenario of a directory).",
        metavar="FILE",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="Print only the verdict."),
    list_: bool = typer.Option(
        False,
        "--list",
        metavar="",
        help="List the built-in scenarios (name, bots, duration, what it shows).",
    ),
) -> None:
    """Run scripted chat bots from a YAML scenario; check delivery and latency.

    Exit status: 0 all expectations held, 1 one failed, 2 invalid scenario or arguments,
    3 the target could not be reached, 130 interrupted (Ctrl-C).
    """
    from netlab.simulate import SimulateConfig, simulate

    config = SimulateConfig(
        path=path,
        target=target,
        protocol=protocol,
        speed=speed,
        seed=seed,
        report=report,
        transcript=transcript,
        quiet=quiet,
        list=list_,
        html=html,
    )
    raise typer.Exit(simulate(config))


# ---- netlab sockets ------------------------------------------------------------------------


@app.command(
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def sockets(ctx: typer.Context) -> None:
    """Netstat for the chat port: who holds which socket, in what state, with which nickname.

    Options: --port N, --state S, --all, --pid N, --kind, --format, --watch, --interval
    (netlab sockets --help explains each).
    """
    # Parsed by sockwatch itself, so that it can start without this module (see its parser).
    from netlab.sockwatch import main

    raise typer.Exit(main(ctx.args))


# ---- netlab bench --------------------------------------------------------------------------


@app.command(cls=_Command)
def bench(
    target: Optional[str] = typer.Option(  # noqa: UP045
        None,
        metavar="HOST:PORT",
        help="Server to measure (HOST:PORT,HOST:PORT: the servers of one cluster, the clients"
        " spread over them); unset: start a `netlab serve` for the run (rate limit off).",
    ),
    servers: int = typer.Option(
        1,
        min=1,
        max=16,
        help="Without --target: start a cluster of this many servers on a redis-server of its"
        " own, the clients spread over them (docs/cluster.md).",
    ),
    protocol: str = _protocol_option(
        Dialect.netlab.value,
        "netlab: NICK handshake with a line; handout: bare nickname, as the handout's"
        " client; lines: any line relay with no handshake (ncat --chat).",
    ),
    clients: int = typer.Option(200, min=2, help="Connections to join, senders included."),
    senders: Optional[int] = typer.Option(  # noqa: UP045
        None, min=1, help="How many of the clients send (default: 20, or all but one of fewer)."
    ),
    messages: int = typer.Option(200, min=0, help="Messages each sender sends."),
    rate: float = typer.Option(
        0.0, min=0, help="Messages per second per sender; 0: as fast as possible."
    ),
    size: int = typer.Option(32, help="Payload bytes per message (29 to 3000)."),
    join_timeout: float = typer.Option(
        10.0,
        metavar="SECONDS",
        help="Give up joining when no client has got in for this long (exit 1).",
    ),
    compare: Optional[str] = typer.Option(  # noqa: UP045
        None,
        metavar="SERVERS",
        help="Side by side: start each of netlab,ncat,handout (a comma list) fresh on a free"
        " port, round after round, and print one table (ratios to the first).",
    ),
    rounds: int = typer.Option(5, min=1, help="With --compare: rounds per server."),
    html: Optional[Path] = _html_option(  # noqa: UP045
        "Also draw the result (or the comparison) as one HTML file.", metavar="FILE"
    ),
    output_format: str = typer.Option(
        "table",
        "--format",
        metavar="table|json",
        callback=_one_of("table", "json"),
        help="A table for people or JSON for scripts.",
    ),
) -> None:
    """Measure fan-out: join clients, send, count every copy, report rate, latency and cost.

    Exit status: 0 all joined, every copy arrived; 1 not, or an error; 2 bad arguments; 130 Ctrl-C.
    """
    from netlab.bench import BenchConfig, run

    config = BenchConfig(
        target=target,
        protocol=protocol,
        clients=clients,
        senders=senders if senders is not None else min(20, clients - 1),
        messages=messages,
        rate=rate,
        size=size,
        format=output_format,
        join_timeout=join_timeout,
        compare=compare,
        rounds=rounds,
        html=str(html) if html else None,
        servers=servers,
    )
    raise typer.Exit(run(config))


# ---- netlab check --------------------------------------------------------------------------


@app.command(cls=_Command, context_settings={"allow_interspersed_args": False})
def check(
    command: Optional[list[str]] = typer.Argument(  # noqa: UP045
        None,
        metavar="-- CMD ARGS...",
        help="The program to check, started by netlab with {host}, {port} (and {file}) put in.",
        show_default=False,
    ),
    target: Optional[str] = typer.Option(  # noqa: UP045
        None, metavar="HOST:PORT", help="A server already running (process cases are skipped)."
    ),
    protocol: str = typer.Option(
        "handout", help="handout (the lab's), netlab, lines, or auto (told by the first bytes)."
    ),
    client: bool = typer.Option(
        False, "--client", metavar="", help="Check a client: netlab plays the server and runs CMD."
    ),
    each: Optional[str] = typer.Option(  # noqa: UP045
        None, metavar="GLOB", help="Run CMD once per matching file ({file}): a row per file."
    ),
    cases: Optional[list[str]] = typer.Option(  # noqa: UP045
        None, "--cases", metavar="PATTERN", help="Only cases whose id matches (glob; repeatable)."
    ),
    list_cases: bool = typer.Option(False, "--list", metavar="", help="List every case and exit."),
    timeout: float = typer.Option(10.0, help="Seconds each case may take."),
    output_format: str = typer.Option("table", "--format", help="table, json or junit."),
    kick_command: Optional[str] = typer.Option(  # noqa: UP045
        None,
        metavar="TEMPLATE",
        help="How an operator kicks on that server, e.g. '/login secret;/kick {nick}'.",
    ),
    limit_probe: int = typer.Option(64, help="Connect at most this many to find the limit."),
    html: Optional[Path] = _html_option("Also write the report as one HTML file."),  # noqa: UP045
) -> None:
    """Grade a chat server (or client) on named cases: the lab's classic bugs, explained.

    Exit status: 0 no case failed, 1 one failed, 2 bad arguments, 3 not reached or started.

    docs/check.md explains every case.
    """
    from netlab.check import CheckConfig
    from netlab.check import check as run_check

    config = CheckConfig(
        target=target,
        protocol=protocol,
        client=client,
        each=each,
        cases=tuple(cases or ()),
        list_cases=list_cases,
        timeout=timeout,
        format=output_format,
        kick_command=kick_command,
        limit_probe=limit_probe,
        command=tuple(command or ()),
        html=str(html) if html else None,
    )
    raise typer.Exit(run_check(config))


def main() -> None:
    """The Typer app; the ``netlab`` command starts in ``netlab.__main__``."""
    app()

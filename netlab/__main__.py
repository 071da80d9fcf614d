"""The ``netlab`` command, and ``python -m netlab``.

``netlab sockets`` is dispatched before the Typer app is built: it races ``ss`` and
``netstat``, and importing Typer (with pydantic behind it) costs more than reading 10,000
sockets (docs/performance.md).

Every command ends quietly when the reader of its output goes away (``netlab sockets | head
-1``): as a C program killed by SIGPIPE would, with no traceback, but with status 0, since
what was asked for was delivered to whoever still wanted it.
"""

import os
import sys


def main() -> None:
    stdout = _identity(1)
    try:
        code = _command(sys.argv[1:])
        sys.stdout.flush()  # here, where a closed pipe can still be caught
    except BrokenPipeError:
        _stdout_closed()
    except SystemExit as leaving:
        if _pipe_closed(stdout):
            _stdout_closed()
        raise leaving from None
    sys.exit(code)


def _command(args: list[str]) -> int | None:
    if args[:1] == ["sockets"]:
        from netlab.sockwatch import main as sockets

        return sockets(args[1:])
    from netlab.cli import main as cli

    cli()
    return None


def _pipe_closed(stdout: tuple[int, int] | None) -> bool:
    """Whether an exit came from a closed stdout: click (under Typer) and rich (its help,
    simulate's output) meet one by exiting 1, as for an error, click with its
    PacifyFlushWrapper put on sys.stdout, rich with /dev/null put on descriptor 1."""
    if type(sys.stdout).__name__ == "PacifyFlushWrapper":
        return True
    now = _identity(1)
    return now != stdout and now == _identity(os.devnull)


def _identity(file: int | str) -> tuple[int, int] | None:
    try:
        info = os.stat(file)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def _stdout_closed() -> None:
    # Whatever Python still holds for stdout must not fail again at exit: point it at devnull.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.__stdout__.fileno())
    os.close(devnull)
    sys.exit(0)


if __name__ == "__main__":
    main()

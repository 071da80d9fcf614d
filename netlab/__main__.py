"""The ``netlab`` command, and ``python -m netlab``.

``netlab sockets`` is dispatched before the Typer app is built: it races ``ss`` and
``netstat``, and importing Typer (with pydantic behind it) costs more than reading 10,000
sockets (docs/performance.md).
"""

import sys


def main() -> None:
    if sys.argv[1:2] == ["sockets"]:
        from netlab.sockwatch import main as sockets

        sys.exit(sockets(sys.argv[2:]))
    from netlab.cli import main as cli

    cli()


if __name__ == "__main__":
    main()

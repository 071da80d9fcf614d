"""Hold many TCP sockets open on loopback, for timing ``netlab sockets`` against ``ss -tanp``.

    python bench/sockets_load.py --pairs 5000 --hold 600

One process opens a load listener and ``--pairs`` connected pairs to it (2 x pairs sockets); a
small "chat" listener with ``--chat-clients`` connections gives the port a benchmark filters on.
By default a forked child holds the chat sockets, as a chat server is its own process;
``--chat-in-load`` puts them in the process with all the others (the worst case for finding
owners). It prints ``ready LOAD_PORT CHAT_PORT SOCKETS`` on stdout, then holds everything until
stdin closes, SIGINT/SIGTERM, or ``--hold`` seconds pass (bounded: it never outlives a run).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import socket
import sys
import time

from netlab import aio


def connected_pairs(listener: socket.socket, count: int) -> list[socket.socket]:
    host, port = listener.getsockname()[:2]
    held = []
    for _ in range(count):
        client = socket.create_connection((host, port))
        server_end, _ = listener.accept()  # accept as we go, so the backlog never fills
        held += [client, server_end]
    return held


def chat_sockets(host: str, clients: int) -> list[socket.socket]:
    chat = socket.create_server((host, 0))
    return [chat, *connected_pairs(chat, clients)]


def hold_chat_in_child(host: str, clients: int) -> int:
    """Fork a child that holds the chat sockets until we exit; return the chat port."""
    port_read, port_write = os.pipe()
    alive_read, alive_write = os.pipe()  # its EOF tells the child we are gone
    if os.fork() == 0:
        os.close(port_read)
        os.close(alive_write)
        held = chat_sockets(host, clients)
        os.write(port_write, b"%d\n" % held[0].getsockname()[1])
        with contextlib.suppress(KeyboardInterrupt):
            os.read(alive_read, 1)
        for sock in held:
            sock.close()
        os._exit(0)
    os.close(port_write)
    os.close(alive_read)
    with os.fdopen(port_read) as pipe:
        return int(pipe.readline())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5000, help="connected pairs (2 sockets each)")
    parser.add_argument("--chat-clients", type=int, default=2, help="connections to the chat port")
    parser.add_argument(
        "--chat-in-load", action="store_true", help="hold the chat sockets in the load process"
    )
    parser.add_argument("--hold", type=float, default=600.0, help="seconds to hold at most")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to use")
    args = parser.parse_args()

    wanted = 2 * (args.pairs + args.chat_clients) + 64
    limit = aio.raise_file_limit(wanted)
    if limit is not None and limit < wanted:
        sys.exit(f"need {wanted} open files, the limit is {limit} (hard limit: ulimit -Hn)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sockets: list[socket.socket] = []
    try:
        if args.chat_in_load:
            sockets += chat_sockets(args.host, args.chat_clients)
            chat_port = sockets[0].getsockname()[1]
        else:
            chat_port = hold_chat_in_child(args.host, args.chat_clients)
        load = socket.create_server((args.host, 0), backlog=1024)
        sockets += [load, *connected_pairs(load, args.pairs)]
        total = 2 * (args.pairs + args.chat_clients) + 2
        print("ready", load.getsockname()[1], chat_port, total, flush=True)
        deadline = time.monotonic() + args.hold
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([sys.stdin], [], [], left)
            if readable and not sys.stdin.read(1):
                break  # stdin closed: whoever started us is done
    except KeyboardInterrupt:
        pass
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

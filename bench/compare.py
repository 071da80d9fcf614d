"""Side by side: ``netlab serve`` vs ``ncat --chat`` vs the handout's server, and the 10,000
client scale run (docs/performance.md). The comparison is ``netlab bench --compare``; this
script runs it with the servers the docs compare, and the scale run after it when asked.

    python bench/compare.py                 # 200 clients, 20 senders x 200 messages, 5 rounds
    python bench/compare.py --scale 10000   # plus one round of the scale run
    python bench/compare.py --rounds 3 --servers netlab,ncat --messages 2000

Everything stays on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from netlab import bench

HANDOUT = Path(__file__).resolve().parent.parent.parent / "shared" / "handout"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="netlab,ncat,handout")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--format", default="table", choices=("table", "json"))
    parser.add_argument("--scale", type=int, default=0, help="clients of the scale run (0: none)")
    args = parser.parse_args()
    os.environ.setdefault("NETLAB_HANDOUT", str(HANDOUT))
    common = {"size": args.size, "format": args.format}
    status = bench.run(
        bench.BenchConfig(
            compare=args.servers,
            rounds=args.rounds,
            clients=args.clients,
            senders=args.senders,
            messages=args.messages,
            **common,
        )
    )
    if args.scale:
        print(f"\nscale run: {args.scale} clients on one netlab serve, one message to all\n")
        scale = bench.BenchConfig(clients=args.scale, senders=1, messages=1, **common)
        status = max(status, bench.run(scale))
    return status


if __name__ == "__main__":
    sys.exit(main())

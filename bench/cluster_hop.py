"""What the hop through Redis costs: the same load on one ``netlab serve`` and on a cluster of
two, rounds interleaved (issue 14's figures).

    python bench/cluster_hop.py [--rounds 5] [--rate 20] [--messages 100] [--servers 2]
    python bench/cluster_hop.py --rate 0 --messages 200      # as fast as taken: the rate

Each round runs ``netlab bench --rate R --messages M`` (200 clients, 20 senders) on a fresh
server, and the same with ``--servers N`` (a fresh ``redis-server`` and N servers, the clients
spread over them in turn, so that (N-1)/N of each sender's copies cross Redis: half with
two), in an order that alternates from round to
round (``--rate 0``: unpaced). It prints every round, then the medians, the p99 added by the
hop and the cluster's rate against one server's: paired, the median of the per-round
differences (ratios), so that a drift of the machine's load cancels out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from netlab import tables
from netlab.stats import median


def one_run(servers: int, rate: float, messages: int) -> dict:
    command = [sys.executable, "-m", "netlab", "bench", "--format", "json"]
    command += ["--messages", str(messages)]
    if rate > 0:
        command += ["--rate", f"{rate:g}"]
    if servers > 1:
        command += ["--servers", str(servers)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[2:])} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20.0, help="msg/s per sender; 0: unpaced")
    parser.add_argument("--messages", type=int, default=100, help="per sender")
    parser.add_argument("--servers", type=int, default=2, help="servers of the cluster")
    args = parser.parse_args()
    if args.servers < 2:
        parser.error("--servers: a cluster has at least 2 servers")
    counts = [1, args.servers]
    runs: dict[int, list[dict]] = {count: [] for count in counts}
    for number in range(args.rounds):
        for count in counts if number % 2 == 0 else counts[::-1]:
            result = one_run(count, args.rate, args.messages)
            runs[count].append(result)
            print(
                f"round {number + 1}, {count} server(s): p50 {result['latency_ms_p50']} ms,"
                f" p99 {result['latency_ms_p99']} ms, lost {result['lost']}",
                file=sys.stderr,
                flush=True,
            )
    pairs = list(zip(runs[1], runs[args.servers], strict=True))
    added = [cluster["latency_ms_p99"] - one["latency_ms_p99"] for one, cluster in pairs]
    ratios = [cluster["deliveries_per_s"] / one["deliveries_per_s"] for one, cluster in pairs]
    rows = [
        {
            "servers": count,
            "rate": median([r["deliveries_per_s"] for r in results]),
            "p50": median([r["latency_ms_p50"] for r in results]),
            "p99": median([r["latency_ms_p99"] for r in results]),
            "p99_range": f"{min(r['latency_ms_p99'] for r in results):.3g}"
            f"-{max(r['latency_ms_p99'] for r in results):.3g}",
            "lost": sum(r["lost"] for r in results),
        }
        for count, results in runs.items()
    ]
    headers = {
        "servers": "Servers",
        "rate": "Deliveries/s",
        "p50": "p50 ms",
        "p99": "p99 ms",
        "p99_range": "p99 range",
        "lost": "Lost",
    }
    pace = f"at {args.rate:g}/s" if args.rate > 0 else "as fast as taken"
    print(f"200 clients, 20 senders x {args.messages} messages {pace}, {args.rounds} rounds")
    print(tables.render(rows, headers))
    print(
        f"p99 added by the hop through Redis, paired: median {median(added):.2f} ms"
        f" ({min(added):.2f} to {max(added):.2f})"
    )
    print(
        f"deliveries/s of {args.servers} servers against one, paired: median"
        f" {median(ratios):.2f}x ({min(ratios):.2f} to {max(ratios):.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

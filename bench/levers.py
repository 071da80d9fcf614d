"""Interleaved rounds of ``netlab serve`` variants (and ncat), for deciding a lever.

    python bench/levers.py ncat netlab PYTHONPATH=/tmp/other-checkout --rounds 5

Each variant is ``ncat``, ``netlab``, or ``netlab`` with environment settings for the server
child (``NAME=VALUE[,NAME=VALUE]``): ``PYTHONPATH=/tmp/other-checkout`` runs another version
of the code (or a knob under test that the server reads from its environment). Round after
round every variant runs once, on a fresh server, in an order that rotates from round to
round, so that the other load of the machine falls on all of them alike. It prints every
round and then, per variant, the medians of server CPU per delivered copy (psutil, over the
send phase: netlab.loadgen.run), its paired ratio to the first variant (the median of the
per-round ratios, so that a slow drift of the machine's load cancels out), deliveries/s, p50
and p99, and the copies lost. docs/performance.md, "Where the CPU per copy goes".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
from collections.abc import Iterator
from dataclasses import replace

from netlab.loadgen.compare import one_round
from netlab.loadgen.config import BenchConfig, BenchResult


@contextlib.contextmanager
def environment(settings: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    if text in ("ncat", "netlab"):
        return text, {}
    settings = dict(item.split("=", 1) for item in text.split(","))
    return "netlab", settings


def median(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.4g} ({min(values):.4g}-{max(values):.4g})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="ncat, netlab, or NAME=VALUE[,NAME=VALUE]")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    config = BenchConfig(clients=args.clients, senders=args.senders, messages=args.messages)
    runs: dict[str, list[BenchResult]] = {v: [] for v in args.variants}
    # Per round, so that each variant is compared with the first within the same round.
    paired: dict[str, list[float | None]] = {v: [] for v in args.variants}
    for number in range(args.rounds):
        shift = number % len(args.variants)
        for variant in args.variants[shift:] + args.variants[:shift]:
            kind, settings = parse_variant(variant)
            with environment(settings):
                outcome = one_round(replace(config), kind)
            if isinstance(outcome, str):
                print(f"round {number + 1} {variant}: failed: {outcome}", file=sys.stderr)
                paired[variant].append(None)
                continue
            runs[variant].append(outcome)
            paired[variant].append(outcome.server_cpu_us_per_copy)
            print(
                f"round {number + 1} {variant}: cpu {outcome.server_cpu_us_per_copy} µs/copy,"
                f" {outcome.deliveries_per_s / 1e6:.2f} M/s, p99 {outcome.latency_ms_p99} ms,"
                f" lost {outcome.lost}",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"{args.clients} clients, {args.senders} x {args.messages} messages, {args.rounds} rounds"
    )
    print("variant | server CPU µs/copy | CPU vs 1st, paired | M/s | p50 ms | p99 ms | lost")
    first = paired[args.variants[0]]
    for variant, results in runs.items():
        ratios = [
            mine / base for mine, base in zip(paired[variant], first, strict=True) if mine and base
        ]
        cpu = [r.server_cpu_us_per_copy for r in results if r.server_cpu_us_per_copy]
        rate = [r.deliveries_per_s / 1e6 for r in results]
        p50 = [r.latency_ms_p50 for r in results if r.latency_ms_p50 is not None]
        p99 = [r.latency_ms_p99 for r in results if r.latency_ms_p99 is not None]
        lost = sum(r.lost for r in results)
        print(
            f"{variant} | {median(cpu)} | {median(ratios)} | {median(rate)} | {median(p50)}"
            f" | {median(p99)} | {lost}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

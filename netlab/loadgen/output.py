"""A bench result as people read it (a table and notes) or as scripts do (JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from netlab.loadgen.config import BenchResult

ROWS = (
    ("target", "target"),
    ("server", "server"),
    ("protocol", "protocol"),
    ("clients joined", "joined"),
    ("join time (s)", "join_s"),
    ("senders x messages", None),
    ("payload bytes", "size"),
    ("rate per sender (msg/s)", "rate"),
    ("messages sent", "sent"),
    ("copies expected", "expected"),
    ("copies delivered", "delivered"),
    ("copies lost", "lost"),
    ("copies echoed to sender", "echoed"),
    ("run time (s)", "elapsed_s"),
    ("deliveries per second", "deliveries_per_s"),
    ("latency p50 (ms)", "latency_ms_p50"),
    ("latency p95 (ms)", "latency_ms_p95"),
    ("latency p99 (ms)", "latency_ms_p99"),
    ("latency max (ms)", "latency_ms_max"),
    ("latency samples", "latency_samples"),
    ("server CPU (%)", "server_cpu_pct"),
    ("server CPU per copy (µs)", "server_cpu_us_per_copy"),
    ("server peak RSS (MB)", "server_rss_mb"),
    ("server KB per idle client", "server_kb_per_idle_client"),
    ("bench CPU (%)", "bench_cpu_pct"),
    ("bench CPU per copy (µs)", "bench_cpu_us_per_copy"),
)


def result_rows(result: BenchResult) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for label, key in ROWS:
        if key is None:
            value: Any = f"{result.senders} x {result.messages}"
        elif key == "joined":
            value = f"{result.joined} / {result.clients}"
        elif key == "rate":
            value = result.rate or "as fast as possible"
        else:
            value = getattr(result, key)
        rows.append((label, value))
    return rows


def document(result: BenchResult) -> dict[str, Any]:
    """The run as plain data: ``--format json`` prints it, ``--html`` draws it."""
    return {**asdict(result), "complete": result.complete}


def write_html(path: str, report: dict[str, Any]) -> bool:
    """Draw ``report`` (a run's document, or a comparison's) into ``path``; False (and said
    why) when it cannot be written."""
    from netlab import html

    return html.save("bench", path, html.bench_report(report))


def render(result: BenchResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(document(result), indent=2)
    from netlab import tables

    rows = [{"metric": label, "value": value} for label, value in result_rows(result)]
    text = tables.render(rows, {"metric": "metric", "value": "value"}, tables.TABLE)
    notes = "".join(f"\nnote: {note}" for note in result.notes)
    return text + notes

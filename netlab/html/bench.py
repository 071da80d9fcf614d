from typing import Any


def bench_report(document: dict[str, Any]) -> str:
    raise NotImplementedError

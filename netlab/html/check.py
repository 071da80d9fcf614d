from typing import Any


def check_report(document: dict[str, Any]) -> str:
    raise NotImplementedError

"""The server's log: text or JSON lines, to standard error or a file."""

from __future__ import annotations

import json
import logging
import sys

from netlab.serve.config import ServerConfig


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes: under the console's
    prompt_toolkit that is its patched stream, which prints above the input line."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(config: ServerConfig) -> None:
    """Raises OSError when the log file cannot be written."""
    handler: logging.Handler = (
        logging.FileHandler(config.log_file, encoding="utf-8")
        if config.log_file
        else CurrentStderr(sys.stderr)
    )
    if config.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
    root = logging.getLogger("netlab")
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    root.propagate = False

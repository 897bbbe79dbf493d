"""Structured logs: one JSON object per line on stderr (``FLEETLINK_LOG_LEVEL`` sets the level)."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(component: str) -> logging.Logger:
    """JSON lines on stderr for ``component``; returns its logger."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("FLEETLINK_LOG_LEVEL", "INFO").upper())
    # httpx logs every request at INFO: noise in a process that polls an API
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return logging.getLogger(f"fleetlink.{component}")

"""Process logging: JSON lines (default) or plain text, never carrying secrets."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from imagegateway_server.observability.tracing import current_trace_id


class JsonFormatter(logging.Formatter):
    """One JSON object per line with time, level, logger, message, the request's trace id (when the
    line is written while serving a request) and any ``extra`` fields."""

    _RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)))

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        # Handlers here format in the emitting task, so the context is the request's own.
        trace_id = current_trace_id.get()
        if trace_id:
            entry["trace_id"] = trace_id
        for key, value in vars(record).items():
            if key not in self._RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The upstream client logs per request at DEBUG (URLs, headers); keep it quiet.
    logging.getLogger("aiohttp").setLevel(logging.WARNING)

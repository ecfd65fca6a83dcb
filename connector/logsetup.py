"""The connector's logging: text or one JSON object a line, to stderr or a rotated file.

    python -m connector ... [--log-format text|json] [--log-file PATH]
                            [--log-max-mb 100] [--log-backups 5]

JSON lines carry `ts` (ISO 8601, UTC, microseconds), `level`, `logger`, `msg`, the
`connector` name, and the structured fields a record was logged with (`event`, and for
an order event `bot`, `order_id`, `key`, `client_id`, `venue_id`, `status`, ...), so that
a log shipper can index them and one query follows an order from the bot's request to
its last fill. Only the entry point configures handlers (STYLE.md); modules log through
`logging.getLogger(__name__)`, and nothing logs a secret or a signed URL.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from datetime import UTC, datetime

import orjson

# attributes every LogRecord has: anything else on a record was passed as `extra=`
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message",
                                                                             "asctime"}  # fmt: skip
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line (orjson: a record costs a few microseconds)."""

    def __init__(self, connector: str):
        super().__init__()
        self.connector = connector

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="microseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "connector": self.connector,
        }
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                doc[k] = v
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure(connector: str, level: str = "INFO", fmt: str = "text", file: str = "",
              max_mb: float = 100.0, backups: int = 5) -> None:  # fmt: skip
    """Sets up the root logger once, for the connector process.

    Raises:
        ValueError: an unknown level or format, or a log file that cannot be opened.
    """
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        raise ValueError(f"--log-level: unknown level {level!r} (DEBUG, INFO, WARNING, ERROR)")
    if fmt not in ("text", "json"):
        raise ValueError(f"--log-format must be text or json, got {fmt!r}")
    if file:
        try:
            handler: logging.Handler = logging.handlers.RotatingFileHandler(
                file, maxBytes=int(max_mb * 1024 * 1024), backupCount=backups
            )
        except OSError as e:
            raise ValueError(f"--log-file {file}: {e.strerror}") from None
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(connector) if fmt == "json" else
                         logging.Formatter(TEXT_FORMAT))  # fmt: skip
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(lvl)

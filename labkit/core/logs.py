"""Per-component structured logs under the lab home."""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from pathlib import Path


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": record.name.removeprefix("labkit."),
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def component_logger(folder: Path, component: str) -> logging.Logger:
    """A logger writing JSON lines to ``<folder>/<component>.log`` (rotated at 5 MB)."""
    logger = logging.getLogger(f"labkit.{component}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    target = str(folder / f"{component}.log")
    if not any(getattr(h, "baseFilename", None) == target for h in logger.handlers):
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(target, maxBytes=5_000_000, backupCount=2)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    return logger

"""Structured logs: one JSON object per line. Fields come from the message and from `extra`;
nothing the gateway logs carries a key or message text (the callers see to that)."""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

# Standard attributes, and uvicorn's `color_message` (the message again, with ANSI escapes).
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "color_message",
}
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""  # the ISO time of self._second, up to its milliseconds

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name[0] != "_":
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODE(entry)

    def _time(self, created: float) -> str:
        """ISO 8601 UTC with milliseconds; the date and time formatted once a second."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._second_text}.{int((created - second) * 1000):03d}+00:00"


class TextFormatter(logging.Formatter):
    """`time level logger message key=value ...`: the same fields as the JSON lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = [
            f"{name}={_text(value)}"
            for name, value in vars(record).items()
            if name not in _STANDARD and name[0] != "_"
        ]
        return f"{line} {' '.join(extra)}" if extra else line


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if not text or " " in text or '"' in text else text


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """The logging set-up as a dictConfig, so that uvicorn applies it in every worker process."""
    formatter: dict[str, Any] = {
        "()": f"{__name__}.JsonFormatter" if fmt == "json" else f"{__name__}.TextFormatter"
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": formatter},
        "handlers": {"stream": {"class": "logging.StreamHandler", "formatter": "line"}},
        "root": {"handlers": ["stream"], "level": level},
        "loggers": {"azure": {"level": "WARNING"}},  # its INFO is every HTTP request
    }


def configure_logging(level: str, fmt: str) -> None:
    logging.config.dictConfig(logging_config(level, fmt))

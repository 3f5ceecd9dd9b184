"""Daemon logging: text or JSON lines on one stream, a level per agent, no secrets.

Agents log through ``hvmon.agent.<name>``; :func:`set_agent_level` gives each
its own level. Both formats pass every message through :func:`redact`, so a
URL's password (``amqp://user:secret@host``) never reaches the log.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, TextIO

#: the handler :func:`configure_logging` installs carries this attribute
_MARK = "_hvmon_daemon_handler"

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")
_SECRET_PAIR = re.compile(r"(?P<head>\b(?:password|passwd|secret|token)\s*[=:]\s*)"
                          r"(?P<q>['\"]?)[^\s'\",;]+(?P=q)", re.IGNORECASE)

#: LogRecord attributes that are not "extra" fields
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


def redact(text: str) -> str:
    """``text`` with URL passwords and ``password=...`` values replaced by ``***``."""
    text = _URL_PASSWORD.sub(r"\g<head>***@", text)
    return _SECRET_PAIR.sub(r"\g<head>\g<q>***\g<q>", text)


def agent_logger(name: str) -> logging.Logger:
    """The logger of agent ``name``: ``hvmon.agent.<name>``."""
    return logging.getLogger(f"hvmon.agent.{name}")


class TextFormatter(logging.Formatter):
    """``2024-05-01T12:00:00.123Z INFO hvmon.daemon: message`` (one line per record)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = _timestamp(record.created)
        message = redact(record.getMessage()).replace("\n", "\\n")  # one record, one line
        line = f"{stamp} {record.levelname} {record.name}: {message}"
        if record.exc_info and record.levelno <= logging.DEBUG:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message`` and extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value if isinstance(value, int | float | bool | None) \
                    else redact(str(value))
        if record.exc_info:
            data["traceback"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False)


def _timestamp(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def configure_logging(log_format: str, level: str, stream: TextIO) -> logging.Handler:
    """Send every log record to ``stream`` in ``log_format``; replaces a previous call's."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def set_agent_level(name: str, level: str | None) -> None:
    """Give agent ``name`` its own level (None: inherit the daemon's)."""
    agent_logger(name).setLevel(level.upper() if level else logging.NOTSET)

"""Structured logging: JSON lines in production, readable lines in a terminal, with request context."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach fields (delivery, repo, pr, job) to every log record emitted inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Attaches the fields of the enclosing `log_context` blocks to each record (`record.context`), under the
    record's own (`extra={"context": {...}}`: one line's fields without a block around it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.__dict__.get("context")
        record.context = {**_context.get(), **own} if own else _context.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (values JSON cannot hold are written as their `str`)."""

    _encode = msgspec.json.Encoder(enc_hook=str).encode

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "context", {}),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        try:
            return self._encode(entry).decode()
        except (UnicodeEncodeError, TypeError):  # a lone surrogate (from a payload), keys JSON cannot hold
            return json.dumps(entry, default=str)


class ConsoleFormatter(logging.Formatter):
    """`HH:MM:SS level logger: message key=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{k}={v}" for k, v in getattr(record, "context", {}).items())
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname.lower():7} {record.name}: {record.getMessage()}"
        if context:
            line += f"  [{context}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Neither formatter shows threads, processes or the caller's file and line: skip gathering them for every
    # record, as the logging HOWTO's "Optimization" section says (intake writes one line per delivery).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    # Third-party HTTP clients log request lines (URLs with tokens in query strings are possible).
    for noisy in ("httpx", "httpx2", "httpcore", "hishel"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

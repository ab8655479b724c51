"""Structured logs: one JSON object per line on stderr (or plain text)."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import random
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else was passed in ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


# The id of the request being served in this context ("" outside requests); every log record
# written while it is set carries it as ``request_id``.
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("gate_request_id", default="")

# What a caller-supplied ``x-request-id`` may look like; anything else is replaced, so that a
# caller cannot put control characters, huge values or secrets-shaped noise into the logs.
_REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

# Request ids correlate log lines; they need uniqueness, not secrecy. uuid4() reads
# os.urandom, a system call that gives up the GIL: on the event loop, getting it back
# behind a busy review thread can take up to a switch interval (5 ms) per request.
_ids = random.Random(os.urandom(32))  # noqa: S311


def request_id(supplied: str | bytes | None) -> str:
    """The caller's ``x-request-id`` when it is a sane token, else a new random id."""
    if isinstance(supplied, bytes):
        supplied = supplied.decode("ascii", "replace")
    if supplied and _REQUEST_ID_SHAPE.fullmatch(supplied):
        return supplied
    return f"{_ids.getrandbits(128):032x}"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to records written while a request is being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = REQUEST_ID.get()
        if current and not hasattr(record, "request_id"):
            record.request_id = current
        return True


class _FieldsFilter(logging.Filter):
    def __init__(self, fields: Mapping[str, Any]) -> None:
        super().__init__()
        self._fields = dict(fields)

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in self._fields.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """Formats records as JSON with ``time``, ``level``, ``logger``, ``message`` and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "info", fmt: str = "json", *, fields: Mapping[str, Any] | None = None) -> None:
    """Route every logger (gate's, grpc's, uvicorn's) to stderr in the chosen format.

    ``fields`` are added to every record (a worker process's ``worker`` index).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if fields:
        handler.addFilter(_FieldsFilter(fields))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Their INFO lines (uvicorn's per-listener start banners, alembic's plug-in
    # set-up) repeat what gate logs itself; keep their warnings and errors.
    if root.level < logging.WARNING:
        for name in ("uvicorn", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)

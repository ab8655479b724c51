"""Turning SQLAlchemy and driver exceptions into gate's errors.

Messages name the failure in a few words; they never carry SQL text, bound
parameters or a traceback (those can hold evidence and request data, and
reach API callers). The original exception is chained for the logs.
"""

from __future__ import annotations

import re

from sqlalchemy import exc

from gate.errors import GateError, InvalidArgument, StoreUnavailable

_SQL_TEXT = re.compile(r"\b(?:SELECT|INSERT|UPDATE|DELETE|FROM|WHERE|VALUES|CREATE|ALTER|DROP)\b")
_MAX_REASON = 160

# SQLSTATE classes: https://www.postgresql.org/docs/current/errcodes-appendix.html
_PG_UNIQUE_VIOLATION = "23505"
_PG_FOREIGN_KEY_VIOLATION = "23503"


def store_error(error: BaseException) -> GateError:
    """Return the error to raise (``from error``) for a backend failure.

    StoreUnavailable (retry, or apply the failure policy), except for a value the database cannot
    hold: psycopg refuses a NUL in any text value, a parameter of a lookup included, before the
    server sees it. That is the request's fault on every retry, so it is InvalidArgument; SQLite
    takes the value, and what gate stores is checked for NUL earlier, so this is the net under
    a field no check reached.
    """
    cause = error.orig if isinstance(error, exc.StatementError) and error.orig is not None else error
    if _NUL_REFUSED in str(cause):
        return InvalidArgument(
            "request", "got a NUL character (\\u0000) in a text value, expected text without NUL"
        )
    return StoreUnavailable(f"evidence store unavailable: {reason(error)}")


# What psycopg says when a str holding a NUL is sent as text.
_NUL_REFUSED = "cannot contain NUL (0x00) bytes"


def reason(error: BaseException) -> str:
    """Return a short, SQL-free description of a backend failure."""
    if isinstance(error, exc.TimeoutError):
        return "timed out waiting for a free database connection"
    if isinstance(error, exc.ResourceClosedError):
        return "the store is closed"
    cause: BaseException = error
    if isinstance(error, exc.StatementError) and error.orig is not None:
        cause = error.orig
    primary = getattr(getattr(cause, "diag", None), "message_primary", None)
    text = primary if isinstance(primary, str) and primary else _first_line(cause)
    if not text or _SQL_TEXT.search(text):
        text = type(cause).__name__
    if len(text) > _MAX_REASON:
        text = text[: _MAX_REASON - 3] + "..."
    return text


def _first_line(error: BaseException) -> str:
    if isinstance(error, exc.SQLAlchemyError):
        # str() of a SQLAlchemy error appends the statement and parameters.
        text = str(error.args[0]) if error.args else ""
    else:
        text = str(error)
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def is_unique_violation(error: exc.IntegrityError) -> bool:
    """True if the integrity error is a duplicate primary or unique key."""
    orig = error.orig
    name = getattr(orig, "sqlite_errorname", None)
    if name is not None:
        return name in ("SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE")
    return getattr(orig, "sqlstate", None) == _PG_UNIQUE_VIOLATION


def is_foreign_key_violation(error: exc.IntegrityError) -> bool:
    """True if the integrity error is a reference to a missing row."""
    orig = error.orig
    name = getattr(orig, "sqlite_errorname", None)
    if name is not None:
        return bool(name == "SQLITE_CONSTRAINT_FOREIGNKEY")
    return getattr(orig, "sqlstate", None) == _PG_FOREIGN_KEY_VIOLATION

"""Page sizes and opaque keyset page tokens.

A token is url-safe base64 (unpadded) of a small JSON object: the listing it
belongs to, a digest of the filters it was issued under and the sort key of the
last row returned. A token is refused with other filters (Google's AIP-158 asks
the same): it would resume another listing at a row chosen by the first, and the
pages would silently skip or repeat. The next page starts
strictly after that key, so rows are never skipped or repeated by rows that
are inserted meanwhile (unlike OFFSET), and reading page N costs the same as
reading page 1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from gate.errors import InvalidArgument
from gate.store._port import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

KeyPart = Literal["str", "int", "time"]
KeyValue = str | int | datetime


def page_limit(page_size: int) -> int:
    """Return the number of rows a page holds for a requested ``page_size``.

    Raises:
        InvalidArgument: ``page_size`` is negative or above MAX_PAGE_SIZE.
    """
    if page_size == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"expected 0 (default) to {MAX_PAGE_SIZE}, got {page_size}")
    return page_size


def filter_scope(*filters: object) -> str:
    """A short digest of a listing's filters, for :func:`encode_token` and :func:`decode_token`."""
    values = [value.isoformat() if isinstance(value, datetime) else value for value in filters]
    raw = json.dumps(values, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def encode_token(listing: str, key: Sequence[KeyValue], scope: str = "") -> str:
    """Return the token that resumes ``listing`` (under the filters ``scope`` digests) after ``key``."""
    values = [value.isoformat() if isinstance(value, datetime) else value for value in key]
    body: dict[str, object] = {"l": listing, "k": values}
    if scope:
        body["f"] = scope
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def decode_token(listing: str, token: str, parts: Sequence[KeyPart], scope: str = "") -> tuple[KeyValue, ...]:
    """Return the sort key carried by ``token``, typed as ``parts`` says.

    Raises:
        InvalidArgument: the token is not one this listing issued, or was issued under
            other filters than ``scope`` digests.
    """
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(body, dict) or body.get("l") != listing:
            raise ValueError("not a token of this listing")
        # Tokens of gates from before scopes carry none: accepted, as they were then.
        if body.get("f", scope) != scope:
            raise _OtherFilters
        values = body.get("k")
        if not isinstance(values, list) or len(values) != len(parts):
            raise ValueError("wrong key length")
        return tuple(_typed(value, part) for value, part in zip(values, parts, strict=True))
    except _OtherFilters:
        raise InvalidArgument(
            "page_token",
            f"expected a token issued for the same filters as this {listing} request, got one issued "
            "for other filters (start again without a token to list with these)",
        ) from None
    except (ValueError, UnicodeError, binascii.Error, TypeError) as exc:
        shown = token if len(token) <= 40 else token[:37] + "..."
        raise InvalidArgument(
            "page_token",
            f"expected a token returned by the previous page of this {listing} listing, got {shown!r}",
        ) from exc


class _OtherFilters(Exception):
    """The token belongs to this listing, under other filters."""


def _typed(value: object, part: KeyPart) -> KeyValue:
    if part == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, str):
        if part == "str":
            return value
        moment = datetime.fromisoformat(value)
        if moment.utcoffset() is not None:
            return moment
    raise ValueError(f"bad {part} key part")

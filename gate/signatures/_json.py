"""Reading JSON that came with signature material (payloads, envelopes, bundles)."""

from __future__ import annotations

from typing import Any

from gate._strict_json import StrictJsonError, loads
from gate.errors import InvalidArgument


def load_json(data: bytes | str, what: str, not_json: str = "not JSON") -> Any:
    """``json.loads`` whose every failure is :class:`InvalidArgument` naming ``what``.

    ``not_json`` is the problem reported for text that is not JSON at all.

    Raises:
        InvalidArgument: not JSON, not UTF-8, nested deeper than the parser can follow, an
            object naming a key twice, or NaN/Infinity/a number beyond a double.
    """
    try:
        # A signed document must mean one thing to every reader. With a key written twice,
        # Python's json keeps the last value and other readers may keep the first, so what gate
        # checked and what a verifier elsewhere reads from the same signed bytes could differ;
        # JSON has no NaN or Infinity, which other readers refuse. Encodings and lone surrogates
        # keep json.loads' tolerance, as signature material has always been read.
        return loads(data, any_encoding=True, allow_lone_surrogates=True)
    except StrictJsonError as exc:
        # These are worth their own words: an attack on the reader or an ambiguous document,
        # not a garbled file.
        if exc.kind in ("depth", "duplicate_key", "non_finite"):
            raise InvalidArgument(what, f"got {exc.reason}") from None
        raise InvalidArgument(what, not_json) from None

"""Reading JSON that came with signature material (payloads, envelopes, bundles)."""

from __future__ import annotations

import json
from typing import Any

from gate.errors import InvalidArgument


def load_json(data: bytes | str, what: str, not_json: str = "not JSON") -> Any:
    """``json.loads`` whose every failure is :class:`InvalidArgument` naming ``what``.

    ``not_json`` is the problem reported for text that is not JSON at all.

    Raises:
        InvalidArgument: not JSON, not UTF-8, or nested deeper than the parser can follow.
    """
    try:
        return json.loads(data)
    except RecursionError:
        # The parser recurses once per level: "[" * 100000 exhausts the stack of whoever
        # reads it, long before any signature has been checked.
        raise InvalidArgument(
            what, "got JSON nested too deeply to parse, expected a document of ordinary depth"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(what, not_json) from None

"""Kyverno's wildcard matching: ``*`` is any run of characters, ``?`` exactly one."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def has_wildcard(text: str) -> bool:
    """Whether ``text`` contains a wildcard character."""
    return "*" in text or "?" in text


def match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches the wildcard ``pattern`` (whole string, case-sensitive)."""
    if not has_wildcard(pattern):
        return pattern == text
    return _compile(pattern).fullmatch(text) is not None

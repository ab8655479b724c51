"""Kyverno's wildcard matching: ``*`` is any run of characters, ``?`` exactly one.

One implementation for the whole engine (patterns, match names, the
``pattern_match`` function, podSecurity exclusions).
"""

from __future__ import annotations

import functools


def has_wildcard(text: str) -> bool:
    """Whether ``text`` contains a wildcard character."""
    return "*" in text or "?" in text


@functools.lru_cache(maxsize=4096)
def _star_segments(pattern: str) -> tuple[str, ...] | None:
    """The literal parts between ``*`` of a pattern without ``?`` (None when it has one)."""
    return None if "?" in pattern else tuple(pattern.split("*"))


def match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches the wildcard ``pattern`` (whole string, case-sensitive)."""
    if not has_wildcard(pattern):
        return pattern == text
    segments = _star_segments(pattern)
    if segments is not None:
        # Only stars: the first part is a prefix, the last a suffix, and the middle parts
        # occur in order between them; taking each at its leftmost place is never worse.
        # str.find keeps this linear and in C (images with digests are ~100 characters).
        first, last = segments[0], segments[-1]
        if len(text) < len(first) + len(last) or not text.startswith(first) or not text.endswith(last):
            return False
        position, end = len(first), len(text) - len(last)
        for part in segments[1:-1]:
            found = text.find(part, position, end)
            if found < 0:
                return False
            position = found + len(part)
        return True
    # Two pointers with one saved star: O(len(pattern) * len(text)) at worst, never
    # exponential, so a hostile pattern such as "*a*a*a*a*b" cannot stall evaluation
    # (a translation to a backtracking regular expression could).
    p = t = 0
    star, mark = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star, mark = p, t
            p += 1
        elif p < len(pattern) and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif star >= 0:
            p = star + 1
            mark += 1
            t = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)

"""Kyverno's wildcard matching: ``*`` is any run of characters, ``?`` exactly one.

One implementation for the whole engine (patterns, match names, the
``pattern_match`` function, podSecurity exclusions).
"""

from __future__ import annotations


def has_wildcard(text: str) -> bool:
    """Whether ``text`` contains a wildcard character."""
    return "*" in text or "?" in text


def match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches the wildcard ``pattern`` (whole string, case-sensitive)."""
    if not has_wildcard(pattern):
        return pattern == text
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

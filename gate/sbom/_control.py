"""Parsing of deb822 control paragraphs (dpkg status) and apk's one-letter database records."""

from __future__ import annotations

from collections.abc import Iterator


def deb822_paragraphs(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(first line number, fields)`` for each paragraph; field names are lowercased.

    Continuation lines (starting with a space or tab) extend the previous field;
    lines without a colon outside a continuation are ignored, as dpkg does with
    garbage it can recover from.
    """
    fields: dict[str, str] = {}
    start = 0
    last = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if fields:
                yield start, fields
            fields, last = {}, ""
            continue
        if line[0] in " \t":
            if last:
                fields[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if not fields:
            start = number
        last = key.strip().lower()
        fields[last] = value.strip()
    if fields:
        yield start, fields


def apk_records(text: str) -> Iterator[tuple[int, dict[str, list[str]]]]:
    """Yield ``(first line number, fields)`` for each package of an apk ``installed`` database.

    Keys are the single letters apk writes (``P`` name, ``V`` version ...); a key
    can repeat (``F``/``R`` file lists), so every value is a list.
    """
    fields: dict[str, list[str]] = {}
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if fields:
                yield start, fields
            fields = {}
            continue
        key, sep, value = line.partition(":")
        if not sep or len(key) != 1:
            continue
        if not fields:
            start = number
        fields.setdefault(key, []).append(value)
    if fields:
        yield start, fields

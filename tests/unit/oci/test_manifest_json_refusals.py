"""Manifest JSON refused through the shared strict reader: the reasons stay short and say what was found."""

from __future__ import annotations

import pytest

from gate.oci import MalformedContent, parse_manifest


def test_a_repeated_key_of_thousands_of_characters_is_named_in_a_bounded_message() -> None:
    key = b"k" * 20_000
    raw = b'{"schemaVersion":2,"' + key + b'":1,"' + key + b'":2}'
    with pytest.raises(MalformedContent, match=r"^m: duplicate key 'kkkk") as caught:
        parse_manifest(raw, where="m")
    assert len(caught.value.message) < 300


def test_a_manifest_nested_past_the_recursion_limit_says_it_is_nested_too_deeply() -> None:
    with pytest.raises(MalformedContent, match=r"^m: invalid JSON: JSON nested too deeply to parse"):
        parse_manifest(b"[" * 100_000, where="m")

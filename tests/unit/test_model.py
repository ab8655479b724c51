"""Domain values: identifiers and severity counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gate.errors import InvalidArgument
from gate.model import Severity, SeverityCounts, check_digest, check_id

HEX = "0123456789abcdef"


@pytest.mark.parametrize(
    "digest",
    ["sha256:" + "a" * 64, "sha512:" + "0" * 128, "git:" + "f" * 40, "git:" + "1" * 64],
)
def test_accepted_digests(digest: str) -> None:
    assert check_digest(digest, "artifact.digest") == digest


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "md5:" + "a" * 32,
        "git:" + "a" * 39,
        "sha256:" + "a" * 64 + "\n",
    ],
)
def test_rejected_digests_name_the_field(digest: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_digest(digest, "artifact.digest")
    assert caught.value.field == "artifact.digest"
    assert caught.value.message.startswith("artifact.digest: ")


def test_long_bad_values_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_digest("x" * 10_000, "d")
    assert len(caught.value.message) < 200


def test_ids_are_lowercase_uuids() -> None:
    assert check_id("0f8e2b9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "id")
    with pytest.raises(InvalidArgument, match="id: required"):
        check_id("", "id")
    with pytest.raises(InvalidArgument, match="expected a UUID"):
        check_id("0F8E2B9A-1C2D-4E5F-8A9B-0C1D2E3F4A5B", "id")


@given(st.lists(st.sampled_from(list(Severity))))
def test_severity_counts_add_up(severities: list[Severity]) -> None:
    counts = SeverityCounts.of(severities)
    assert counts.total == len(severities)
    assert counts.critical == severities.count(Severity.CRITICAL)
    assert counts.unknown == severities.count(Severity.UNKNOWN)


def test_severity_order_is_severity() -> None:
    assert sorted(Severity, reverse=True)[0] is Severity.CRITICAL
    assert min(Severity) is Severity.UNKNOWN


def test_decoded_json_writes_its_canonical_json_once_and_copies_start_afresh() -> None:
    import copy

    from gate.model import DecodedJson

    request = DecodedJson({"b": 1, "a": {"x": [1, 2]}})
    first = request.canonical_json()
    assert first == b'{"a":{"x":[1,2]},"b":1}'
    assert request.canonical_json() is first
    changed = copy.deepcopy(request)
    changed["a"]["x"].append(3)
    assert changed.canonical_json() == b'{"a":{"x":[1,2,3]},"b":1}'
    assert request.canonical_json() == first

"""API server answers read as one JSON object, under a size limit, with the reason when they are not."""

from __future__ import annotations

import pytest

from gate._kube import answer_object


def test_an_object_within_the_limit_is_returned() -> None:
    assert answer_object(b'{"kind":"Secret","data":{}}', 64) == {"kind": "Secret", "data": {}}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"kind":"Secret","data":{"x":"' + b"a" * 64 + b'"}}', "larger than 64 bytes"),
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b'["a", "list"]', "not a JSON object"),
        (b"", "not JSON"),
    ],
)
def test_a_bad_answer_says_what_is_wrong_with_it(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{reason}$"):
        answer_object(data, 64)

"""Hostile scanner output and Kubernetes answers end in a clear GateError, in bounded time."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gate._kube import answer_object
from gate.errors import GateError, InfrastructureError
from scanners._errors import InvalidReport
from scanners._process import check_json, redact_head, redact_text
from scanners._snyk import SnykProvider
from tests.kube_support import token_reviewer_answering

DEEP = b"[" * 100_000
HUGE_INT = b"9" * 5_000
TOKEN = "snyk-token-0123456789abcdef"


def _seconds(call: Any) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


# -- redaction ---------------------------------------------------------------------------------


def test_redacting_a_long_run_of_secret_keywords_takes_linear_time() -> None:
    assert _seconds(lambda: redact_text("token" * 40_000)) < 1.0


def test_redacting_a_long_run_still_masks_a_pair_whose_key_contains_a_keyword() -> None:
    masked = redact_text("x" * 50_000 + "token=hunter2 ok")
    assert "hunter2" not in masked
    assert masked.endswith("token=[REDACTED] ok")


def test_a_value_that_is_itself_a_secret_pair_is_still_masked() -> None:
    assert redact_text("foo=token=hunter2") == "foo=token=[REDACTED]"


def test_redact_head_of_a_huge_text_returns_quickly_and_at_most_the_limit() -> None:
    text = "token" * 200_000
    started = time.monotonic()
    head = redact_head(text, 500)
    assert time.monotonic() - started < 1.0
    assert len(head) <= 500


def test_redact_head_equals_redacting_everything_for_a_short_text() -> None:
    text = "password=hunter2 and sk_live_4eC39HqLyjWDarjtT1zdp7dc"
    assert redact_head(text, 500, ("hunter2",)) == redact_text(text, ("hunter2",))[:500]


@pytest.mark.parametrize(
    "secret",
    [
        "ab" * 40_000 + "9",  # a token-like run whose digit lies past the window
        TOKEN,  # a known value
    ],
)
def test_redact_head_never_shows_part_of_a_secret_split_by_the_cut(secret: str) -> None:
    for filler in range(60_000, 70_000, 997):
        text = "x " * (filler // 2) + secret + " tail"
        head = redact_head(text, 200_000, (TOKEN,))
        assert secret[:12] not in head


def test_redact_head_masks_a_quoted_value_that_runs_past_the_cut() -> None:
    text = 'error password="' + "correct horse " * 10_000 + '" end'
    assert "horse" not in redact_head(text, 200_000)


# -- scanner JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "problem"), [(DEEP, "nested"), (HUGE_INT, "digits")])
def test_check_json_turns_unreadable_json_into_invalid_report(data: bytes, problem: str) -> None:
    with pytest.raises(InvalidReport, match=problem):
        check_json("snyk", data, "on stdout")


def _snyk() -> SnykProvider:
    provider = object.__new__(SnykProvider)
    provider._token = TOKEN
    return provider


@pytest.mark.parametrize("report", [DEEP, HUGE_INT, b"[" + HUGE_INT + b"]"])
def test_snyk_error_detail_of_unreadable_json_is_text_not_a_crash(report: bytes) -> None:
    detail = _snyk()._error_detail(report)
    assert isinstance(detail, str)
    assert len(detail) <= 500


def test_snyk_error_detail_of_a_huge_error_is_quick_and_masks_the_token() -> None:
    report = json.dumps({"ok": False, "error": "token" * 40_000 + f" {TOKEN}"}).encode()
    started = time.monotonic()
    detail = _snyk()._error_detail(report)
    assert time.monotonic() - started < 1.0
    assert len(detail) <= 500
    assert TOKEN not in detail


# -- Kubernetes --------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [DEEP, b'{"a":' + HUGE_INT + b"}"])
def test_answer_object_reports_unreadable_json_as_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"^not JSON"):
        answer_object(data, 1 << 20)


def _review(answer: bytes | dict[str, Any]) -> Any:
    data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
    return token_reviewer_answering(data).review("tok", ["gate"])


def _authenticated(user: Any, audiences: Any = ("gate",)) -> dict[str, Any]:
    return {"status": {"authenticated": True, "user": user, "audiences": list(audiences)}}


def test_a_well_formed_token_review_is_read() -> None:
    result = _review(_authenticated({"username": "system:serviceaccount:ci:runner", "groups": ["a"]}))
    assert result.authenticated
    assert result.username == "system:serviceaccount:ci:runner"
    assert result.audiences == ("gate",)


@pytest.mark.parametrize("data", [DEEP, b'{"status": {"authenticated": ' + HUGE_INT + b"}}"])
def test_an_unreadable_token_review_is_an_infrastructure_error(data: bytes) -> None:
    with pytest.raises(InfrastructureError, match="not a TokenReview"):
        _review(data)


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        (_authenticated({"username": {"a": 1}}), "username"),
        (_authenticated({"username": ""}), "username"),
        (_authenticated({}), "username"),
        (_authenticated({"username": "u", "uid": 5}), "uid"),
        (_authenticated({"username": "u", "groups": "admins"}), "groups"),
        (_authenticated({"username": "u", "groups": [1]}), "groups"),
        ({"status": {"authenticated": True, "user": {"username": "u"}, "audiences": "gate"}}, "audiences"),
        (_authenticated({"username": "u"}, [["gate"]]), "audiences"),
        ({"status": {"authenticated": True, "user": "bob"}}, "user"),
    ],
)
def test_an_authenticated_answer_with_ill_typed_identity_fields_is_refused(
    answer: dict[str, Any], field: str
) -> None:
    with pytest.raises(GateError, match=field) as caught:
        _review(answer)
    assert "expected" in caught.value.message
    assert "got" in caught.value.message

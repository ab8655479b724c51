"""TokenReview answers whose identity fields could not be shown as they are: refused, never a login."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gate.auth import Authenticator, Credentials
from gate.errors import InfrastructureError
from tests.kube_support import token_reviewer_answering

AUDIENCE = "gate"


def _answer(user: dict[str, Any]) -> bytes:
    return json.dumps({"status": {"authenticated": True, "user": user, "audiences": [AUDIENCE]}}).encode()


SA = "system:serviceaccount:ci:runner"


@pytest.mark.parametrize(
    ("user", "field", "code"),
    [
        ({"username": SA + "\x00admin"}, "status.user.username", "U+0000"),
        ({"username": "\x00"}, "status.user.username", "U+0000"),
        ({"username": SA + "\nlevel=info msg=granted"}, "status.user.username", "U+000A"),
        ({"username": SA + "\x1b[2K"}, "status.user.username", "U+001B"),
        ({"username": SA + "\x7f"}, "status.user.username", "U+007F"),
        ({"username": SA + "\x85"}, "status.user.username", "U+0085"),
        ({"username": SA, "uid": "1234\x00"}, "status.user.uid", "U+0000"),
        (
            {"username": SA, "groups": ["system:authenticated", "ops\x00"]},
            r"status.user.groups\[1\]",
            "U+0000",
        ),
        ({"username": SA, "groups": ["\tsystem:masters"]}, r"status.user.groups\[0\]", "U+0009"),
    ],
    ids=["nul", "only-nul", "newline", "escape", "del", "c1-nel", "uid-nul", "group-nul", "group-tab"],
)
def test_an_identity_field_with_a_control_character_is_refused_naming_the_field(
    user: dict[str, Any], field: str, code: str
) -> None:
    with pytest.raises(InfrastructureError, match=field) as caught:
        token_reviewer_answering(_answer(user)).review("tok", [AUDIENCE])
    message = caught.value.message
    assert "expected a string without control characters" in message
    assert code in message
    # The offending value is exactly what must not reach a log line.
    assert not any(ch in message for ch in "\x00\n\x1b\x7f\x85\t")


def test_a_username_with_an_escaped_lone_surrogate_is_refused() -> None:
    answer = b'{"status":{"authenticated":true,"user":{"username":"sa-\\ud800"},"audiences":["gate"]}}'
    with pytest.raises(InfrastructureError, match=r"status\.user\.username: .*U\+D800"):
        token_reviewer_answering(answer).review("tok", [AUDIENCE])


def test_a_token_whose_username_holds_nul_authenticates_nobody() -> None:
    authenticator = Authenticator(
        reviewer=token_reviewer_answering(_answer({"username": SA + "\x00"})), audiences=(AUDIENCE,)
    )
    with pytest.raises(InfrastructureError, match=r"status\.user\.username"):
        authenticator.authenticate(Credentials(token="runner-jwt"))
    # Refused again on the next request: no identity was remembered for the token.
    with pytest.raises(InfrastructureError, match=r"status\.user\.username"):
        authenticator.authenticate(Credentials(token="runner-jwt"))


def test_an_unreadable_answer_says_why_it_is_not_json() -> None:
    with pytest.raises(InfrastructureError, match=r"not a TokenReview .*nested too deeply"):
        token_reviewer_answering(b"[" * 100_000).review("tok", [AUDIENCE])

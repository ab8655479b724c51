"""Static bearer tokens: the tokens file and the authenticator's order of credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.auth import Authenticator, Credentials, Identity, hash_token, load_tokens
from gate.errors import ConfigError, Unauthenticated


def test_a_tokens_file_maps_token_hashes_to_identities(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    entry = "{identity: ci-payments, roles: [pipeline], projects: [payments]}"
    path.write_text(f"tokens:\n  {hash_token('s3cret')}: {entry}\n")
    assert load_tokens(path) == {
        hash_token("s3cret"): Identity.of("token:ci-payments", ["pipeline"], ["payments"])
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "tokens:\n  my-clear-token-value: {identity: a, roles: [admin]}\n",
            "tokens.my-clear...: expected the SHA-256",
        ),
        (f"tokens:\n  {'a' * 64}: {{identity: a, roles: [root]}}\n", "roles.0: Input should be 'pipeline'"),
        (f"tokens:\n  {'a' * 64}: {{identity: a, roles: []}}\n", "roles: Tuple should have at least 1 item"),
        ("tokens: [1\n", "invalid YAML"),
    ],
)
def test_a_malformed_tokens_file_names_the_entry_and_never_echoes_a_clear_token(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_tokens(path)
    assert expected in caught.value.message
    assert "my-clear-token-value" not in caught.value.message


def test_a_wrong_bearer_token_is_refused_even_with_a_mapped_certificate() -> None:
    auth = Authenticator(
        tokens={hash_token("good"): Identity.of("token:a", ["auditor"])},
        certificates={"ci.example.com": Identity.of("cert:ci.example.com", ["pipeline"], ["p"])},
    )
    assert auth.authenticate(Credentials(token="good")).name == "token:a"
    assert auth.authenticate(Credentials(certificate_names=("ci.example.com",))).name == "cert:ci.example.com"
    with pytest.raises(Unauthenticated, match="bearer token not accepted"):
        auth.authenticate(Credentials(token="bad", certificate_names=("ci.example.com",)))
    with pytest.raises(Unauthenticated, match="credentials required"):
        auth.authenticate(Credentials())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic dXNlcjpwdw==", "expected 'Bearer <token>'"),
        ("Bearer ", "expected 'Bearer <token>'"),
        ("Bearer " + "x" * 20000, "longer than"),
    ],
)
def test_a_malformed_authorization_header_is_unauthenticated(header: str, expected: str) -> None:
    with pytest.raises(Unauthenticated, match=expected):
        Credentials.from_grpc([("authorization", header)], {})


def test_peer_names_come_from_sans_before_the_common_name() -> None:
    context = {
        "x509_common_name": [b"runner"],
        "x509_subject_alternative_name": [b"spiffe://c/ns/ci/sa/r", b"runner"],
    }
    assert Credentials.from_grpc([], context).certificate_names == ("spiffe://c/ns/ci/sa/r", "runner")

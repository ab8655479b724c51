"""Static bearer tokens: the tokens file and the authenticator's order of credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.auth import Authenticator, Credentials, Identity, ReloadingTokens, hash_token, load_tokens
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


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _tokens_file(path: Path, *tokens: str) -> None:
    entries = "".join(
        f"  {hash_token(t)}: {{identity: {t}, roles: [pipeline], projects: [p]}}\n" for t in tokens
    )
    # Written aside and renamed, as a kubelet swaps a Secret volume: never seen half-written.
    path.with_suffix(".new").write_text(f"tokens:\n{entries}")
    path.with_suffix(".new").replace(path)


def test_a_changed_tokens_file_is_followed_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    _tokens_file(path, "old-token")
    clock = _Clock()
    authenticator = Authenticator(tokens=ReloadingTokens(path, interval=2, clock=clock))
    assert authenticator.identify(Credentials(token="old-token")) is not None

    _tokens_file(path, "new-token")
    clock.now += 2.5
    assert authenticator.identify(Credentials(token="new-token")) is not None
    with pytest.raises(Unauthenticated):
        authenticator.identify(Credentials(token="old-token"))


def test_a_broken_rewrite_keeps_the_tokens_in_force_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.yaml"
    _tokens_file(path, "kept-token")
    clock = _Clock()
    tokens = ReloadingTokens(path, interval=2, clock=clock)
    path.write_text("tokens: [1\n")
    clock.now += 3
    with caplog.at_level("ERROR", logger="gate.auth"):
        assert tokens.get(hash_token("kept-token")) is not None
    assert "does not load; the previous tokens stay" in caplog.text
    assert "kept-token" not in caplog.text


def test_a_tokens_file_is_not_read_again_within_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    _tokens_file(path, "first")
    clock = _Clock()
    tokens = ReloadingTokens(path, interval=2, clock=clock)
    _tokens_file(path, "second")
    clock.now += 1
    assert hash_token("second") not in tokens
    clock.now += 1.5
    assert hash_token("second") in tokens


def test_a_tokens_file_is_read_as_strictly_as_the_configuration(tmp_path: Path) -> None:
    import os
    import threading

    fifo = tmp_path / "tokens.fifo"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            load_tokens(fifo)
        except BaseException as error:  # judged below
            outcome.append(error)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(20)
    assert outcome, "load_tokens still waiting on a FIFO after 20 s"
    assert isinstance(outcome[0], ConfigError)
    assert "got a FIFO, expected a regular file" in outcome[0].message

    twice = tmp_path / "twice.yaml"
    entry = "{identity: a, roles: [admin]}"
    twice.write_text(f"tokens:\n  {hash_token('x')}: {entry}\n  {hash_token('x')}: {entry}\n")
    with pytest.raises(ConfigError, match="appears twice in one mapping"):
        load_tokens(twice)

    deep = tmp_path / "deep.yaml"
    deep.write_text("tokens: " + "[" * 200 + "]" * 200 + "\n")
    with pytest.raises(ConfigError, match="nesting deeper than 64 levels"):
        load_tokens(deep)

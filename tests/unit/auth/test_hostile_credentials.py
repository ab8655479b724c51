"""Hostile authorization headers and tokens files: refused with Unauthenticated/ConfigError, never a crash."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gate.auth import Authenticator, Credentials, Identity, hash_token, load_tokens
from gate.errors import ConfigError, Unauthenticated

AUTH = Authenticator(tokens={hash_token("known"): Identity.of("token:k", ["auditor"])})


@settings(max_examples=300, deadline=None)
@given(header=st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_any_authorization_header_gives_an_identity_or_unauthenticated(header: str | bytes) -> None:
    outcome: Identity | Unauthenticated
    try:
        outcome = AUTH.authenticate(Credentials.from_grpc([("authorization", header)], {}))
    except Unauthenticated as error:
        outcome = error
    if isinstance(outcome, Identity):
        assert outcome.name == "token:k"
    else:
        # Refusals are fixed sentences: the presented token never appears in them.
        text = header.decode("latin-1") if isinstance(header, bytes) else header
        secret = text.partition(" ")[2].strip()
        assert len(secret) < 8 or secret not in outcome.message


@settings(max_examples=200, deadline=None)
@given(
    document=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=70),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=70), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_any_yaml_tokens_file_loads_or_is_a_config_error(document: object) -> None:
    import yaml

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "tokens.yaml"
        path.write_text(yaml.safe_dump({"tokens": document}))
        loaded: object
        try:
            loaded = load_tokens(path)
        except ConfigError as error:
            loaded = error
    if isinstance(loaded, ConfigError):
        assert loaded.source == str(path)
    else:
        assert isinstance(loaded, dict)
        assert all(len(digest) == 64 for digest in loaded)

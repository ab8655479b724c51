"""WWW-Authenticate challenges parse as registries send them; tokens live until shortly before expiry."""

from __future__ import annotations

from gate.oci._auth import Challenge, TokenCache, parse_challenge


def test_bearer_challenge_with_quoted_params() -> None:
    header = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"'
    assert parse_challenge(header) == Challenge(
        "bearer",
        {
            "realm": "https://auth.docker.io/token",
            "service": "registry.docker.io",
            "scope": "repository:library/nginx:pull",
        },
    )


def test_basic_challenge_and_unquoted_values() -> None:
    assert parse_challenge('Basic realm="Registry Realm"') == Challenge("basic", {"realm": "Registry Realm"})
    assert parse_challenge("Bearer realm=https://t/x, service=svc") == Challenge(
        "bearer", {"realm": "https://t/x", "service": "svc"}
    )


def test_escaped_quotes_and_commas_inside_values() -> None:
    found = parse_challenge(r'Bearer realm="https://t/a,b",error="say \"hi\""')
    assert found is not None
    assert found.params == {"realm": "https://t/a,b", "error": 'say "hi"'}


def test_garbage_is_not_a_challenge() -> None:
    assert parse_challenge("") is None
    assert parse_challenge("   ") is None
    assert parse_challenge('"quoted" realm=x') is None


def test_tokens_expire_with_a_margin() -> None:
    now = [100.0]
    cache = TokenCache(clock=lambda: now[0])
    key = ("realm", "svc", "repository:a:pull", "")
    cache.put(key, "t1", 60)
    assert cache.get(key) == "t1"
    now[0] += 49
    assert cache.get(key) == "t1"
    now[0] += 1
    assert cache.get(key) is None
    cache.put(key, "short", 4)
    now[0] += 1.9
    assert cache.get(key) == "short"
    now[0] += 0.2
    assert cache.get(key) is None
    cache.put(key, "dropped", 600)
    cache.drop(key)
    assert cache.get(key) is None

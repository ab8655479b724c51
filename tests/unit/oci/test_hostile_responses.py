"""Registry answers that once escaped as raw Python errors are refused with a clear GateError.

The registry is an ``httpx.MockTransport``, so a test can send what no honest HTTP server
would: header bytes outside ASCII, bodies nested past the recursion limit, numbers longer
than Python converts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from gate.oci import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    ImageRef,
    MalformedContent,
    RegistryClient,
    RegistryError,
    _auth,
    digest_of,
    encode_manifest,
    media,
    parse_descriptor,
    parse_manifest,
)

REF = ImageRef.parse("reg.test/app:1")
CONFIG = Descriptor(media.OCI_CONFIG, digest_of(b"{}"), 2)
MANIFEST = encode_manifest(CONFIG, [])
MANIFEST_DIGEST = digest_of(MANIFEST)
BLOB = b"blob bytes"
BLOB_DESCRIPTOR = Descriptor(media.OCI_LAYER_TAR_GZIP, digest_of(BLOB), len(BLOB))
Handler = Callable[[httpx.Request], httpx.Response]


class _Body(httpx.SyncByteStream):
    """A body sent as it is: httpx adds no Content-Length of its own to a stream."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        if self._data:
            yield self._data


def _answer(
    status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> httpx.Response:
    return httpx.Response(status, headers=headers or [], stream=_Body(body))


def _client(handler: Handler, clock: Callable[[], float] = time.monotonic) -> RegistryClient:
    return RegistryClient(plain_http_hosts=["reg.test"], transport=httpx.MockTransport(handler), clock=clock)


def _token_registry(token_body: bytes, fetched: list[int] | None = None) -> Handler:
    """A registry behind a Bearer token service at /token answering ``token_body``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            if fetched is not None:
                fetched.append(1)
            return _answer(200, token_body)
        if "authorization" not in request.headers:
            challenge = b'Bearer realm="http://reg.test/token",service="reg"'
            return _answer(401, b"", [(b"www-authenticate", challenge)])
        return _answer(200, b'{"tags":["a"]}')

    return handle


# -- Content-Length ----------------------------------------------------------------------------


def test_a_content_length_in_unicode_digits_is_a_clear_registry_error() -> None:
    # httpx reads header bytes as latin-1: b"\xb2" is "²", which str.isdigit() accepts and int() refuses.
    client = _client(lambda _: _answer(200, b"{}", [(b"content-length", b"\xb2")]))
    with client, pytest.raises(RegistryError, match=r"Content-Length: expected a decimal number.*got '²'"):
        client.list_tags(REF)


def test_a_content_length_of_thousands_of_digits_is_a_clear_registry_error() -> None:
    client = _client(lambda _: _answer(200, b"{}", [(b"content-length", b"1" * 5000)]))
    with client, pytest.raises(RegistryError, match=r"Content-Length: expected a decimal number of at most"):
        client.list_tags(REF)


def test_a_manifest_head_with_a_unicode_content_length_is_a_clear_registry_error() -> None:
    headers = [
        (b"content-length", b"\xb2"),
        (b"content-type", media.OCI_MANIFEST.encode()),
        (b"docker-content-digest", MANIFEST_DIGEST.encode()),
    ]
    client = _client(lambda _: _answer(200, b"", headers))
    with client, pytest.raises(RegistryError, match=r"manifest reg\.test/app:1: .*Content-Length"):
        client.resolve(REF)


def test_a_blob_with_a_unicode_content_length_is_a_clear_registry_error() -> None:
    client = _client(lambda _: _answer(200, BLOB, [(b"content-length", b"\xb2")]))
    with client, pytest.raises(RegistryError, match=r"blob sha256:.*Content-Length.*got '²'"):
        client.read_blob(REF, BLOB_DESCRIPTOR, 1 << 20)


def test_a_plain_content_length_still_sizes_the_answer() -> None:
    headers = [
        (b"content-length", str(len(MANIFEST)).encode()),
        (b"content-type", media.OCI_MANIFEST.encode()),
        (b"docker-content-digest", MANIFEST_DIGEST.encode()),
    ]
    with _client(lambda _: _answer(200, b"", headers)) as client:
        assert client.resolve(REF) == Descriptor(media.OCI_MANIFEST, MANIFEST_DIGEST, len(MANIFEST))
    with _client(lambda _: _answer(200, BLOB, [(b"content-length", str(len(BLOB)).encode())])) as client:
        assert client.read_blob(REF, BLOB_DESCRIPTOR, 1 << 20) == BLOB


# -- the token service ---------------------------------------------------------------------------


def test_a_token_lifetime_too_large_for_a_float_is_capped_and_the_token_renewed() -> None:
    now = [1000.0]
    fetched: list[int] = []
    body = b'{"token":"t","expires_in":1' + b"0" * 400 + b"}"
    with _client(_token_registry(body, fetched), clock=lambda: now[0]) as client:
        assert client.list_tags(REF) == ["a"]
        assert client.list_tags(REF) == ["a"]
        assert len(fetched) == 1
        now[0] += _auth.MAX_TOKEN_LIFETIME
        assert client.list_tags(REF) == ["a"]
        assert len(fetched) == 2


def test_an_infinite_token_lifetime_is_not_kept_for_ever() -> None:
    now = [1000.0]
    fetched: list[int] = []
    with _client(
        _token_registry(b'{"token":"t","expires_in":1e400}', fetched), clock=lambda: now[0]
    ) as client:
        assert client.list_tags(REF) == ["a"]
        now[0] += _auth.MAX_TOKEN_LIFETIME
        assert client.list_tags(REF) == ["a"]
        assert len(fetched) == 2


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [(300, 300.0), (0.5, 0.5), (None, 60.0), (0, 60.0), (-5, 60.0), (True, 60.0), ("300", 60.0)],
)
def test_ordinary_token_lifetimes_are_kept_as_given(expires_in: object, lifetime: float) -> None:
    assert _auth.token_lifetime(expires_in) == lifetime


def test_absurd_token_lifetimes_are_capped_or_ignored() -> None:
    assert _auth.token_lifetime(10**400) == _auth.MAX_TOKEN_LIFETIME
    assert _auth.token_lifetime(float("inf")) == _auth.MAX_TOKEN_LIFETIME
    assert _auth.token_lifetime(float("nan")) == 60.0


def test_a_deeply_nested_token_answer_is_invalid_json_from_the_token_service() -> None:
    with (
        _client(_token_registry(b"[" * 100_000)) as client,
        pytest.raises(RegistryError, match=r"token service reg\.test answered invalid JSON"),
    ):
        client.list_tags(REF)


@pytest.mark.parametrize("token", ["t\u00e9", "t\U0001f4a5", "a b", "a\r\nX-Injected: 1", "=abc"])
def test_a_bearer_token_outside_rfc6750_syntax_is_refused_naming_the_token_service(token: str) -> None:
    body = json.dumps({"token": token}).encode()
    with (
        _client(_token_registry(body)) as client,
        pytest.raises(
            RegistryError, match=r"token service reg\.test answered a token that is not an RFC 6750 b64token"
        ),
    ):
        client.list_tags(REF)


def test_a_jwt_bearer_token_is_still_sent() -> None:
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_~+/=="
    seen: list[str] = []
    registry = _token_registry(json.dumps({"token": token}).encode())

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return registry(request)

    with _client(handle) as client:
        assert client.list_tags(REF) == ["a"]
    assert seen[-1] == f"Bearer {token}"


# -- error bodies ------------------------------------------------------------------------------


def test_a_deeply_nested_error_body_still_reports_the_status() -> None:
    with (
        _client(lambda _: _answer(500, b"[" * 60_000)) as client,
        pytest.raises(RegistryError, match=r"registry answered HTTP 500"),
    ):
        client.list_tags(REF)


# -- JSON documents ----------------------------------------------------------------------------


def test_an_integer_too_long_to_convert_in_a_manifest_is_malformed() -> None:
    with pytest.raises(MalformedContent, match=r"m: invalid JSON: an integer of 5000 digits"):
        parse_manifest(b'{"schemaVersion":' + b"2" * 5000 + b"}", where="m")


def test_an_integer_too_long_to_convert_in_a_tag_list_is_malformed() -> None:
    body = b'{"tags":[' + b"1" * 5000 + b"]}"
    with (
        _client(lambda _: _answer(200, body)) as client,
        pytest.raises(
            MalformedContent, match=r"tags of reg\.test/app: invalid JSON: an integer of 5000 digits"
        ),
    ):
        client.list_tags(REF)


def test_an_integer_too_long_to_convert_in_a_referrers_answer_is_malformed() -> None:
    body = b'{"schemaVersion":2,"manifests":[],"x":-' + b"9" * 4400 + b"}"
    subject = REF.with_digest(MANIFEST_DIGEST)
    with (
        _client(lambda _: _answer(200, body)) as client,
        pytest.raises(MalformedContent, match=r"referrers of .*: invalid JSON: an integer of 4400 digits"),
    ):
        client.referrers(subject)


def test_a_long_but_convertible_integer_is_still_read() -> None:
    raw = json.dumps({"schemaVersion": 2, "config": CONFIG.to_json(), "layers": [], "x": 10**100}).encode()
    assert isinstance(parse_manifest(raw, where="m"), ImageManifest)


@pytest.mark.parametrize("data", ["\u00e9", "e30=\u00e9", "\U0001f4a5"])
def test_a_non_ascii_descriptor_data_field_is_malformed(data: str) -> None:
    value = {"mediaType": "a/b", "digest": digest_of(b"{}"), "size": 2, "data": data}
    with pytest.raises(MalformedContent, match=r"d\.data: expected standard base64"):
        parse_descriptor(value, where="d")


@pytest.mark.parametrize("escape", ["\\ud800", "\\uDFFF", "x\\udbff", "\\udc00\\ud800"])
def test_a_lone_surrogate_escape_in_a_manifest_is_malformed(escape: str) -> None:
    raw = (
        b'{"schemaVersion":2,"config":'
        + json.dumps(CONFIG.to_json()).encode()
        + b',"layers":[],"annotations":{"k":"'
        + escape.encode()
        + b'"}}'
    )
    with pytest.raises(MalformedContent, match=r"m: invalid JSON: a lone UTF-16 surrogate"):
        parse_manifest(raw, where="m")


def test_a_lone_surrogate_in_a_key_or_a_list_is_malformed() -> None:
    for raw in (b'{"\\ud800":1}', b'{"tags":["a",["\\udfff"]]}'):
        with pytest.raises(MalformedContent, match="lone UTF-16 surrogate"):
            parse_manifest(raw, where="m")


def test_a_surrogate_pair_escape_and_an_escaped_backslash_are_still_accepted() -> None:
    raw = (
        b'{"schemaVersion":2,"manifests":[],"annotations":{"pair":"\\ud83d\\udca5",'
        b'"text":"\\\\ud800","upper":"\\uD83D\\uDCA5"}}'
    )
    found = parse_manifest(raw, where="m")
    assert isinstance(found, ImageIndex)
    assert found.annotations == {"pair": "\U0001f4a5", "text": "\\ud800", "upper": "\U0001f4a5"}

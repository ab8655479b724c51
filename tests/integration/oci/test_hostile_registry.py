"""A registry that fails, hangs, floods or lies gets a precise error and never returns its data."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from gate.errors import DeadlineExceeded, EvidenceError, InfrastructureError
from gate.oci import (
    ContentNotFound,
    Descriptor,
    DigestMismatch,
    ImageIndex,
    ImageRef,
    MalformedContent,
    Platform,
    RegistryAuthError,
    RegistryClient,
    RegistryError,
    RegistryRejected,
    RegistryTimeout,
    SizeLimitExceeded,
    SizeMismatch,
    digest_of,
    encode_index,
    encode_manifest,
    media,
)
from tests.integration.oci.fake_registry import Exchange, FakeRegistry, drip, fake_registry, flood

CONFIG = Descriptor(media.OCI_CONFIG, digest_of(b"{}"), 2)
LAYER_DATA = b"the real layer bytes"
LAYER = Descriptor(media.OCI_LAYER_TAR_GZIP, digest_of(LAYER_DATA), len(LAYER_DATA))
MANIFEST = encode_manifest(CONFIG, [LAYER])
MANIFEST_DIGEST = digest_of(MANIFEST)


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with fake_registry() as registry:
        yield registry


def _client(fake: FakeRegistry, **options: float) -> RegistryClient:
    return RegistryClient(plain_http_hosts=[fake.host], **options)  # type: ignore[arg-type]


def _ref(fake: FakeRegistry, tag: str = "1.0") -> ImageRef:
    return ImageRef.parse(f"{fake.host}/app:{tag}")


def _manifest_headers(body: bytes, kind: str = media.OCI_MANIFEST) -> dict[str, str]:
    return {"Content-Type": kind, "Docker-Content-Digest": digest_of(body)}


def test_server_errors_are_infrastructure_errors_with_the_status(fake: FakeRegistry) -> None:
    body = b'{"errors":[{"code":"UNAVAILABLE","message":"storage backend down"}]}'
    fake.static("GET", "/v2/app/manifests/1.0", 500, body)
    fake.static("GET", "/v2/app/manifests/busy", 429, b"slow down")
    with _client(fake) as client:
        with pytest.raises(RegistryError, match=r"HTTP 500 \(UNAVAILABLE: storage backend down\)") as caught:
            client.manifest(_ref(fake))
        assert isinstance(caught.value, InfrastructureError)
        with pytest.raises(RegistryError, match="HTTP 429"):
            client.manifest(_ref(fake, "busy"))


def test_a_hanging_registry_times_out(fake: FakeRegistry) -> None:
    fake.route("GET", "/v2/app/manifests/1.0", Exchange.hang)
    with _client(fake, timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(RegistryTimeout, match=r"did not answer within 0\.5 s") as caught:
            client.manifest(_ref(fake))
        assert time.monotonic() - started < 3
        assert isinstance(caught.value, DeadlineExceeded)


def test_a_body_that_drips_forever_hits_the_operation_deadline(fake: FakeRegistry) -> None:
    fake.route(
        "GET",
        f"/v2/app/blobs/{LAYER.digest}",
        lambda ex: ex.stream(200, drip(interval=0.02), {"Content-Type": "application/octet-stream"}),
    )
    slow = Descriptor(media.OCI_LAYER_TAR_GZIP, LAYER.digest, 10_000)
    with _client(fake, timeout=0.5, blob_timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(RegistryTimeout, match=r"not finished within 0\.5 s"):
            client.read_blob(_ref(fake), slow, max_bytes=10_000)
        assert time.monotonic() - started < 3


def test_a_blob_longer_than_its_descriptor_is_refused(fake: FakeRegistry) -> None:
    fake.route("GET", f"/v2/app/blobs/{LAYER.digest}", lambda ex: ex.stream(200, flood()))
    with _client(fake) as client:
        with pytest.raises(SizeMismatch, match=f"descriptor says {LAYER.size} bytes, got at least"):
            client.read_blob(_ref(fake), LAYER, max_bytes=1 << 20)
        with client.open_blob(_ref(fake), LAYER, max_bytes=1 << 20) as stream, pytest.raises(SizeMismatch):
            stream.read(5)


def test_a_content_length_that_disagrees_with_the_descriptor_is_refused_before_reading(
    fake: FakeRegistry,
) -> None:
    fake.static("GET", f"/v2/app/blobs/{LAYER.digest}", 200, LAYER_DATA + b"!")
    with _client(fake) as client, pytest.raises(SizeMismatch, match=f"got {LAYER.size + 1}"):
        client.open_blob(_ref(fake), LAYER, max_bytes=1 << 20)


def test_a_blob_above_the_cap_is_not_even_requested(fake: FakeRegistry) -> None:
    huge = Descriptor(media.OCI_LAYER_TAR_GZIP, LAYER.digest, 10 * 1024**3)
    with _client(fake) as client, pytest.raises(SizeLimitExceeded, match="limit of 1048576 bytes"):
        client.open_blob(_ref(fake), huge, max_bytes=1 << 20)
    assert fake.requests == []


def test_a_blob_whose_digest_does_not_match_is_refused(fake: FakeRegistry) -> None:
    forged = b"the fake layer bytes"
    assert len(forged) == LAYER.size
    fake.static("GET", f"/v2/app/blobs/{LAYER.digest}", 200, forged)
    with _client(fake) as client:
        with pytest.raises(DigestMismatch, match=f"expected {LAYER.digest}, got {digest_of(forged)}"):
            client.read_blob(_ref(fake), LAYER, max_bytes=100)
        received: list[bytes] = []

        def read_all_pieces() -> None:
            with client.open_blob(_ref(fake), LAYER, max_bytes=100) as stream:
                while chunk := stream.read(7):
                    received.append(chunk)

        with pytest.raises(DigestMismatch):
            read_all_pieces()
        assert b"".join(received) != forged  # the piece that completes the blob is withheld


def test_a_truncated_blob_is_an_infrastructure_error(fake: FakeRegistry) -> None:
    fake.route(
        "GET",
        f"/v2/app/blobs/{LAYER.digest}",
        lambda ex: ex.answer(200, LAYER_DATA[:5], content_length=LAYER.size, close=True),
    )
    with _client(fake) as client, pytest.raises(RegistryError, match="the body broke off"):
        client.read_blob(_ref(fake), LAYER, max_bytes=100)


def test_a_manifest_streamed_past_the_cap_is_cut_off(fake: FakeRegistry) -> None:
    fake.route(
        "GET",
        "/v2/app/manifests/1.0",
        lambda ex: ex.stream(200, flood(), {"Content-Type": media.OCI_MANIFEST}),
    )
    fake.static("GET", "/v2/app/manifests/big", 200, b"{}", {"Content-Length": "0"})
    fake.route(
        "GET",
        "/v2/app/manifests/declared",
        lambda ex: ex.answer(
            200, b"{}", {"Content-Type": media.OCI_MANIFEST}, content_length=50 * 1024 * 1024
        ),
    )
    with _client(fake) as client:
        with pytest.raises(SizeLimitExceeded, match="larger than the limit of 4194304 bytes"):
            client.manifest(_ref(fake))
        with pytest.raises(SizeLimitExceeded, match=r"\(got 52428800\)"):
            client.manifest(_ref(fake, "declared"))


def test_an_index_entry_that_lies_about_the_child_size_is_refused(fake: FakeRegistry) -> None:
    liar = Descriptor(
        media.OCI_MANIFEST, MANIFEST_DIGEST, len(MANIFEST) - 7, platform=Platform("linux", "amd64")
    )
    index = encode_index([liar])
    fake.static("GET", "/v2/app/manifests/1.0", 200, index, _manifest_headers(index, media.OCI_INDEX))
    fake.static("GET", f"/v2/app/manifests/{MANIFEST_DIGEST}", 200, MANIFEST, _manifest_headers(MANIFEST))
    with _client(fake) as client:
        assert isinstance(client.manifest(_ref(fake)), ImageIndex)
        with pytest.raises(
            SizeMismatch, match=f"descriptor says {len(MANIFEST) - 7} bytes, got {len(MANIFEST)}"
        ):
            client.image_manifest(_ref(fake))


def test_a_manifest_that_does_not_match_the_digest_asked_for_is_refused(fake: FakeRegistry) -> None:
    other = encode_manifest(CONFIG, [])
    fake.static("GET", f"/v2/app/manifests/{MANIFEST_DIGEST}", 200, other, _manifest_headers(other))
    fake.static(
        "GET",
        "/v2/app/manifests/1.0",
        200,
        MANIFEST,
        {**_manifest_headers(MANIFEST), "Docker-Content-Digest": digest_of(other)},
    )
    fake.static("HEAD", f"/v2/app/manifests/{MANIFEST_DIGEST}", 200, other, _manifest_headers(other))
    with _client(fake) as client:
        with pytest.raises(DigestMismatch, match=f"expected {MANIFEST_DIGEST}"):
            client.manifest(_ref(fake).with_digest(MANIFEST_DIGEST))
        with pytest.raises(DigestMismatch, match=f"expected {digest_of(other)}"):
            client.manifest(_ref(fake))
        with pytest.raises(DigestMismatch, match=f"expected {MANIFEST_DIGEST}, got {digest_of(other)}"):
            client.resolve(_ref(fake).with_digest(MANIFEST_DIGEST))


def test_invalid_json_manifest_is_malformed(fake: FakeRegistry) -> None:
    fake.static(
        "GET",
        "/v2/app/manifests/1.0",
        200,
        b'{"schemaVersion": 2, "layers": [',
        {"Content-Type": media.OCI_MANIFEST},
    )
    fake.static("GET", "/v2/app/manifests/header", 200, MANIFEST, {"Docker-Content-Digest": "sha256:short"})
    fake.static("GET", "/v2/app/manifests/wrongtype", 200, MANIFEST, {"Content-Type": media.DOCKER_MANIFEST})
    with _client(fake) as client:
        with pytest.raises(MalformedContent, match=r"manifest .*/app:1\.0: invalid JSON") as caught:
            client.manifest(_ref(fake))
        assert isinstance(caught.value, EvidenceError)
        with pytest.raises(MalformedContent, match="Docker-Content-Digest"):
            client.manifest(_ref(fake, "header"))
        with pytest.raises(MalformedContent, match="served as"):
            client.manifest(_ref(fake, "wrongtype"))


def test_compressed_bodies_are_refused(fake: FakeRegistry) -> None:
    fake.static("GET", "/v2/app/manifests/1.0", 200, b"\x1f\x8b...", {"Content-Encoding": "gzip"})
    with _client(fake) as client, pytest.raises(RegistryError, match="Content-Encoding gzip"):
        client.manifest(_ref(fake))


def test_resolve_without_digest_header_falls_back_to_get(fake: FakeRegistry) -> None:
    fake.static("HEAD", "/v2/app/manifests/1.0", 200, b"", {"Content-Type": media.OCI_MANIFEST})
    fake.static("GET", "/v2/app/manifests/1.0", 200, MANIFEST, {"Content-Type": media.OCI_MANIFEST})
    with _client(fake) as client:
        assert client.resolve(_ref(fake)) == Descriptor(media.OCI_MANIFEST, MANIFEST_DIGEST, len(MANIFEST))
    assert [r[0] for r in fake.requests] == ["HEAD", "GET"]


def test_client_errors_and_odd_challenges(fake: FakeRegistry) -> None:
    fake.static("GET", "/v2/app/manifests/bad", 400, b'{"errors":[{"code":"TAG_INVALID","message":"no"}]}')
    fake.static("GET", "/v2/app/manifests/noauth", 401, b"")
    fake.static(
        "GET", "/v2/app/manifests/forbidden", 403, b'{"errors":[{"code":"DENIED","message":"go away"}]}'
    )
    fake.static("GET", "/v2/app/manifests/digest", 401, b"", {"WWW-Authenticate": 'Digest realm="x"'})
    with _client(fake) as client:
        with pytest.raises(RegistryRejected, match=r"HTTP 400\) \(TAG_INVALID: no\)"):
            client.manifest(_ref(fake, "bad"))
        with pytest.raises(RegistryAuthError, match="without a Basic or Bearer challenge"):
            client.manifest(_ref(fake, "noauth"))
        with pytest.raises(RegistryAuthError, match=r"HTTP 403\) \(DENIED: go away\)"):
            client.manifest(_ref(fake, "forbidden"))
        with pytest.raises(RegistryAuthError, match="without a Basic or Bearer challenge"):
            client.manifest(_ref(fake, "digest"))
        with pytest.raises(ContentNotFound, match="NAME_UNKNOWN: not here"):
            client.manifest(_ref(fake, "unrouted"))


def test_token_service_failures_are_reported(fake: FakeRegistry) -> None:
    realm = f"http://{fake.host}/token"
    challenge = {"WWW-Authenticate": f'Bearer realm="{realm}",service="svc",scope="repository:app:pull"'}
    fake.static("GET", "/v2/app/manifests/1.0", 401, b"", challenge)
    fake.static("GET", "/token", 200, b"not json")
    with (
        _client(fake) as client,
        pytest.raises(RegistryError, match=r"token service .* answered invalid JSON"),
    ):
        client.manifest(_ref(fake))
    fake.static("GET", "/token", 200, b'{"expires_in": 60}')
    with _client(fake) as client, pytest.raises(RegistryError, match="answered without a token"):
        client.manifest(_ref(fake))
    fake.static("GET", "/token", 503, b"")
    with _client(fake) as client, pytest.raises(RegistryError, match="answered HTTP 503"):
        client.manifest(_ref(fake))
    fake.route("GET", "/token", Exchange.hang)
    with _client(fake, timeout=0.5) as client, pytest.raises(RegistryTimeout):
        client.manifest(_ref(fake))


def test_resolve_falls_back_to_get_when_head_is_not_allowed(fake: FakeRegistry) -> None:
    fake.static("HEAD", "/v2/app/manifests/1.0", 405, b"")
    fake.static("GET", "/v2/app/manifests/1.0", 200, MANIFEST, _manifest_headers(MANIFEST))
    with _client(fake) as client:
        assert client.resolve(_ref(fake)).digest == MANIFEST_DIGEST


def test_credentials_are_not_sent_to_an_upload_location_on_another_host(fake: FakeRegistry) -> None:
    from gate.oci import Credentials, RegistryAuth

    def guarded(status: int, headers: dict[str, str] | None = None) -> Callable[[Exchange], None]:
        def handle(exchange: Exchange) -> None:
            if "authorization" not in exchange.headers:
                exchange.answer(401, b"", {"WWW-Authenticate": 'Basic realm="fake"'})
            else:
                exchange.answer(status, b"", headers)

        return handle

    with fake_registry() as elsewhere:
        seen: list[dict[str, str]] = []

        def upload(exchange: Exchange) -> None:
            seen.append(exchange.headers)
            exchange.answer(201, b"", {"Docker-Content-Digest": LAYER.digest})

        elsewhere.route("PUT", "/upload/1", upload)
        fake.route("HEAD", f"/v2/app/blobs/{LAYER.digest}", guarded(404))
        fake.route(
            "POST", "/v2/app/blobs/uploads/", guarded(202, {"Location": f"http://{elsewhere.host}/upload/1"})
        )
        creds = Credentials({fake.host: RegistryAuth("user", "secret")})
        with RegistryClient(creds, plain_http_hosts=[fake.host, elsewhere.host]) as client:
            assert client.push_blob(_ref(fake), LAYER_DATA, LAYER.media_type) == LAYER
        assert len(seen) == 1
        assert "authorization" not in seen[0]
        assert any("digest=sha256" in path for method, path in elsewhere.requests if method == "PUT")

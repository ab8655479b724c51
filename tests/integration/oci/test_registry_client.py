"""The registry client against the real docker-registry: push, resolve, fetch, auth, cosign discovery."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gate.oci import (
    ContentNotFound,
    Credentials,
    Descriptor,
    ImageIndex,
    ImageManifest,
    ImageRef,
    OciLayout,
    Platform,
    RegistryAuth,
    RegistryAuthError,
    RegistryClient,
    RegistryError,
    RegistryRejected,
    SizeLimitExceeded,
    cosign_tag,
    digest_of,
    discover_cosign,
    encode_index,
    encode_manifest,
    media,
    referrers_tag,
)
from tests.registry_support import PASSWORD, USERNAME, RegistryServer

LAYOUT_REF = ImageRef.parse("layout.local/app:1.0")


def _build_image(path: Path, seed: str = "") -> tuple[OciLayout, ImageManifest]:
    layout = OciLayout.create(path)
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    manifest = layout.write_image(config, [b"first layer " + seed.encode() * 100, b"second layer"], tag="1.0")
    return layout, manifest


def _push(
    server: RegistryServer, path: Path, repository: str, seed: str = ""
) -> tuple[ImageRef, ImageManifest]:
    layout, manifest = _build_image(path, seed)
    ref = server.ref(repository, "1.0")
    with server.client() as client:
        pushed = client.copy(layout, LAYOUT_REF, ref)
    assert pushed.digest == manifest.digest
    return ref, manifest


def test_pushed_image_resolves_and_reads_back(plain_registry: RegistryServer, tmp_path: Path) -> None:
    ref, manifest = _push(plain_registry, tmp_path / "img", "team/app")
    with plain_registry.client() as client:
        top = client.resolve(ref)
        assert top == Descriptor(media.OCI_MANIFEST, manifest.digest, len(manifest.raw))
        assert client.resolve(ref.with_digest(manifest.digest)) == top
        fetched = client.manifest(ref)
        assert fetched == manifest
        assert client.image_manifest(ref) == manifest
        assert client.read_blob(ref, manifest.layers[1], max_bytes=1000) == b"second layer"
        with client.open_blob(ref, manifest.layers[0], max_bytes=10_000) as stream:
            first = stream.read(5)
            rest = stream.read()
        assert first + rest == b"first layer "
        assert client.list_tags(ref) == ["1.0"]


def test_push_is_idempotent_and_blobs_are_not_uploaded_twice(
    plain_registry: RegistryServer, tmp_path: Path
) -> None:
    ref, manifest = _push(plain_registry, tmp_path / "a", "team/twice")
    with plain_registry.client() as client:
        assert client.has_blob(ref, manifest.config.digest)
        again = client.push_blob(ref, b"second layer", media.OCI_LAYER_TAR_GZIP)
        assert again == manifest.layers[1]
        assert (
            client.push_manifest(ref.with_tag("again"), manifest.raw, manifest.media_type) == manifest.digest
        )
        assert sorted(client.list_tags(ref)) == ["1.0", "again"]


def test_missing_tag_blob_and_repository_are_not_found(
    plain_registry: RegistryServer, tmp_path: Path
) -> None:
    ref, manifest = _push(plain_registry, tmp_path / "a", "team/missing")
    with plain_registry.client() as client:
        with pytest.raises(ContentNotFound, match="team/missing:nope' not found"):
            client.resolve(ref.with_tag("nope"))
        with pytest.raises(ContentNotFound, match="MANIFEST_UNKNOWN"):
            client.manifest(ref.with_tag("nope"))
        absent = Descriptor(media.OCI_LAYER_TAR_GZIP, digest_of(b"absent"), 6)
        with pytest.raises(ContentNotFound, match="BLOB_UNKNOWN"):
            client.read_blob(ref, absent, max_bytes=100)
        with pytest.raises(ContentNotFound, match="NAME_UNKNOWN"):
            client.list_tags(plain_registry.ref("no/such/repo"))
        with pytest.raises(SizeLimitExceeded, match="limit of 10 bytes"):
            client.read_blob(ref, manifest.layers[0], max_bytes=10)


def test_multi_arch_oci_index_selects_the_platform(plain_registry: RegistryServer, tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "multi")
    amd = layout.write_image(b'{"architecture":"amd64","os":"linux"}', [b"amd64 layer"])
    arm = layout.write_image(b'{"architecture":"arm64","os":"linux","variant":"v8"}', [b"arm64 layer"])
    index = layout.write_index(
        [
            replace(amd.descriptor, platform=Platform("linux", "amd64")),
            replace(arm.descriptor, platform=Platform("linux", "arm64", "v8")),
        ],
        tag="1.0",
    )
    ref = plain_registry.ref("team/multi", "1.0")
    with plain_registry.client() as client:
        client.copy(layout, LAYOUT_REF, ref)
        assert client.resolve(ref) == Descriptor(media.OCI_INDEX, index.digest, len(index.raw))
        fetched = client.manifest(ref)
        assert isinstance(fetched, ImageIndex)
        assert fetched.raw == index.raw
        assert client.image_manifest(ref, platform="linux/amd64") == amd
        assert client.image_manifest(ref, platform="linux/arm64") == arm
        assert client.read_blob(ref, arm.layers[0], max_bytes=100) == b"arm64 layer"
        with pytest.raises(ContentNotFound, match="linux/s390x"):
            client.image_manifest(ref, platform="linux/s390x")


def test_docker_schema2_manifest_list_round_trips(plain_registry: RegistryServer, tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "docker")
    amd = layout.write_image(b'{"architecture":"amd64"}', [b"d-amd"], media_type=media.DOCKER_MANIFEST)
    arm = layout.write_image(b'{"architecture":"arm"}', [b"d-arm"], media_type=media.DOCKER_MANIFEST)
    listing = layout.write_index(
        [
            replace(amd.descriptor, platform=Platform("linux", "amd64")),
            replace(arm.descriptor, platform=Platform("linux", "arm", "v7")),
        ],
        media_type=media.DOCKER_MANIFEST_LIST,
        tag="1.0",
    )
    ref = plain_registry.ref("team/docker", "1.0")
    with plain_registry.client() as client:
        client.copy(layout, LAYOUT_REF, ref)
        top = client.resolve(ref)
        assert (top.media_type, top.digest) == (media.DOCKER_MANIFEST_LIST, listing.digest)
        chosen = client.image_manifest(ref, platform="linux/arm/v7")
        assert chosen.media_type == media.DOCKER_MANIFEST
        assert chosen == arm
        assert client.read_blob(ref, chosen.config, max_bytes=100) == b'{"architecture":"arm"}'


def _push_signature(client: RegistryClient, ref: ImageRef, image_digest: str) -> ImageManifest:
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": ref.name},
                "image": {"docker-manifest-digest": image_digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()
    layer = client.push_blob(ref, payload, media.COSIGN_SIMPLESIGNING)
    layer = replace(layer, annotations={"dev.cosignproject.cosign/signature": "MEUCIQ=="})
    config = client.push_blob(ref, b"{}", media.OCI_CONFIG)
    raw = encode_manifest(config, [layer])
    sig_ref = ref.with_tag(cosign_tag(image_digest, "sig"))
    client.push_manifest(sig_ref, raw, media.OCI_MANIFEST)
    found = client.manifest(sig_ref)
    assert isinstance(found, ImageManifest)
    return found


def test_cosign_signature_tag_round_trips(plain_registry: RegistryServer, tmp_path: Path) -> None:
    ref, manifest = _push(plain_registry, tmp_path / "a", "team/signed")
    with plain_registry.client() as client:
        _push_signature(client, ref, manifest.digest)
        sig_ref = ref.with_tag(cosign_tag(manifest.digest, "sig"))
        assert sig_ref.tag == f"sha256-{manifest.digest.split(':')[1]}.sig"
        assert sig_ref.tag in client.list_tags(ref)
        signature = client.manifest(sig_ref)
        assert isinstance(signature, ImageManifest)
        layer = signature.layers[0]
        assert layer.media_type == media.COSIGN_SIMPLESIGNING
        assert layer.annotations["dev.cosignproject.cosign/signature"] == "MEUCIQ=="
        payload = json.loads(client.read_blob(sig_ref, layer, max_bytes=4096))
        assert payload["critical"]["image"]["docker-manifest-digest"] == manifest.digest
        with pytest.raises(ContentNotFound):
            client.resolve(ref.with_tag(cosign_tag(manifest.digest, "att")))


def _push_bundle_referrer(
    client: RegistryClient, ref: ImageRef, subject: ImageManifest, body: bytes
) -> Descriptor:
    """A cosign 3 style referrer: bundle layer, empty config, artifactType, subject."""
    empty = client.push_blob(ref, media.OCI_EMPTY_DATA, media.OCI_EMPTY)
    bundle = client.push_blob(ref, body, media.SIGSTORE_BUNDLE_V03)
    raw = encode_manifest(
        empty,
        [bundle],
        subject=subject.descriptor,
        artifact_type=media.SIGSTORE_BUNDLE_V03,
        annotations={"dev.sigstore.bundle.content": "dsse-envelope"},
    )
    digest = client.push_manifest(
        ImageRef(ref.registry, ref.repository, digest=digest_of(raw)), raw, media.OCI_MANIFEST
    )
    return Descriptor(media.OCI_MANIFEST, digest, len(raw), artifact_type=media.SIGSTORE_BUNDLE_V03)


def test_referrers_fall_back_to_the_tag_index(plain_registry: RegistryServer, tmp_path: Path) -> None:
    ref, manifest = _push(plain_registry, tmp_path / "a", "team/referred")
    pinned = ref.with_digest(manifest.digest)
    with plain_registry.client() as client:
        assert client.referrers(pinned) == []  # docker-registry 2.8 has no referrers API, and no tag yet
        bundle = _push_bundle_referrer(client, ref, manifest, b'{"mediaType":"bundle one"}')
        other = _push_bundle_referrer(client, ref, manifest, b'{"mediaType":"bundle two"}')
        sbom_blob = client.push_blob(ref, b"{}", "application/vnd.cyclonedx+json")
        sbom_raw = encode_manifest(sbom_blob, [], subject=manifest.descriptor)
        sbom_digest = client.push_manifest(
            ImageRef(ref.registry, ref.repository, digest=digest_of(sbom_raw)), sbom_raw, media.OCI_MANIFEST
        )
        sbom = Descriptor(media.OCI_MANIFEST, sbom_digest, len(sbom_raw))
        # As cosign 3 writes the fallback index on some registries: member types say "empty".
        mistyped = replace(other, artifact_type=media.OCI_EMPTY)
        fallback = encode_index([bundle, mistyped, sbom])
        client.push_manifest(ref.with_tag(referrers_tag(manifest.digest)), fallback, media.OCI_INDEX)

        everything = client.referrers(pinned)
        assert [d.digest for d in everything] == [bundle.digest, other.digest, sbom_digest]
        bundles = client.referrers(ref, artifact_type=media.SIGSTORE_BUNDLE_V03)
        assert [d.digest for d in bundles] == [bundle.digest, other.digest]
        assert all(d.artifact_type == media.SIGSTORE_BUNDLE_V03 for d in bundles)
        assert bundles[1].annotations == {"dev.sigstore.bundle.content": "dsse-envelope"}
        sboms = client.referrers(pinned, artifact_type="application/vnd.cyclonedx+json")
        assert [d.digest for d in sboms] == [sbom_digest]
        member = client.manifest(pinned.with_digest(bundles[0].digest))
        assert isinstance(member, ImageManifest)
        assert member.subject == manifest.descriptor
        assert client.read_blob(ref, member.layers[0], max_bytes=1000) == b'{"mediaType":"bundle one"}'


def test_tls_registry_is_trusted_through_the_given_ca(tls_registry: RegistryServer, tmp_path: Path) -> None:
    ref, manifest = _push(tls_registry, tmp_path / "a", "secure/app")
    with tls_registry.client() as client:
        assert client.resolve(ref).digest == manifest.digest
    with (
        RegistryClient(timeout=5) as untrusting,
        pytest.raises(RegistryError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        untrusting.resolve(ref)
    # Go's TLS server answers plain HTTP with 400 "Client sent an HTTP request to an HTTPS server".
    with (
        RegistryClient(timeout=5, plain_http_hosts=[tls_registry.host]) as plain,
        pytest.raises(RegistryRejected, match="HTTP 400"),
    ):
        plain.resolve(ref)


def test_basic_auth_registry_takes_the_htpasswd_user(basic_registry: RegistryServer, tmp_path: Path) -> None:
    ref, manifest = _push(basic_registry, tmp_path / "a", "private/app")
    with basic_registry.client() as client:
        assert client.image_manifest(ref) == manifest
    with (
        basic_registry.client(credentials=Credentials.anonymous()) as anonymous,
        pytest.raises(RegistryAuthError, match="asks for a password and gate has none"),
    ):
        anonymous.resolve(ref)
    wrong = Credentials({basic_registry.host: RegistryAuth(username=USERNAME, password="wrong")})
    with (
        basic_registry.client(credentials=wrong) as client,
        pytest.raises(RegistryAuthError, match="HTTP 401"),
    ):
        client.resolve(ref)


def test_basic_auth_from_a_docker_config_file(basic_registry: RegistryServer, tmp_path: Path) -> None:
    ref, manifest = _push(basic_registry, tmp_path / "a", "private/config")
    config = tmp_path / "config.json"
    import base64

    token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    config.write_text(json.dumps({"auths": {f"https://{basic_registry.host}/v2/": {"auth": token}}}))
    with basic_registry.client(credentials=Credentials.from_docker_config(config)) as client:
        assert client.resolve(ref).digest == manifest.digest


def test_token_auth_caches_one_token_per_scope(token_registry: RegistryServer, tmp_path: Path) -> None:
    ref, manifest = _push(token_registry, tmp_path / "a", "tokens/app")
    server = token_registry.token_server
    assert server is not None
    with token_registry.client() as client:
        before = len(server.issued)
        for _ in range(3):
            assert client.resolve(ref).digest == manifest.digest
            assert client.read_blob(ref, manifest.layers[1], max_bytes=100) == b"second layer"
        issued = server.issued[before:]
        assert len(issued) == 1
        assert issued[0]["scopes"] == ["repository:tokens/app:pull"]
        assert issued[0]["user"] == USERNAME
        assert issued[0]["service"] == "gate-test-registry"
        with pytest.raises(ContentNotFound):
            client.resolve(ref.in_repository("tokens/absent"))
        assert server.issued[-1]["scopes"] == ["repository:tokens/absent:pull"]


def test_token_auth_with_an_identity_token(token_registry: RegistryServer, tmp_path: Path) -> None:
    ref, manifest = _push(token_registry, tmp_path / "a", "tokens/identity")
    server = token_registry.token_server
    assert server is not None
    creds = Credentials(
        {token_registry.host: RegistryAuth(username="<token>", identity_token=server.identity_token)}
    )
    with token_registry.client(credentials=creds) as client:
        assert client.resolve(ref).digest == manifest.digest
    bad = Credentials({token_registry.host: RegistryAuth(username="<token>", identity_token="revoked")})
    with (
        token_registry.client(credentials=bad) as client,
        pytest.raises(RegistryAuthError, match="refused the credentials"),
    ):
        client.resolve(ref)


def test_token_auth_refuses_anonymous_and_wrong_passwords(
    token_registry: RegistryServer, tmp_path: Path
) -> None:
    ref, _ = _push(token_registry, tmp_path / "a", "tokens/denied")
    with (
        token_registry.client(credentials=Credentials.anonymous()) as client,
        pytest.raises(RegistryAuthError, match="HTTP 401"),
    ):
        client.resolve(ref)
    wrong = Credentials({token_registry.host: RegistryAuth(username=USERNAME, password="nope")})
    with (
        token_registry.client(credentials=wrong) as client,
        pytest.raises(
            RegistryAuthError, match=r"token service 127\.0\.0\.1 refused the credentials \(HTTP 401\)"
        ),
    ):
        client.resolve(ref)


def test_token_realm_on_plain_http_needs_to_be_allowed(
    token_registry: RegistryServer, tmp_path: Path
) -> None:
    ref, _ = _push(token_registry, tmp_path / "a", "tokens/realm")
    with (
        token_registry.client(plain_http_hosts=[token_registry.host]) as client,
        pytest.raises(RegistryAuthError, match="is not HTTPS"),
    ):
        client.resolve(ref)


def test_unreachable_registry_is_an_infrastructure_error(plain_registry: RegistryServer) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ref = ImageRef.parse(f"127.0.0.1:{port}/nobody/home:1")
    with (
        RegistryClient(plain_http_hosts=[f"127.0.0.1:{port}"], timeout=2) as client,
        pytest.raises(RegistryError, match="ConnectError"),
    ):
        client.resolve(ref)


def test_ca_bundle_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    from gate.oci import InvalidReference

    with pytest.raises(InvalidReference, match="cannot load CA bundle"):
        RegistryClient(tls_verify=tmp_path / "absent.pem")


def test_discover_cosign_finds_legacy_tags_and_bundle_referrers(
    plain_registry: RegistryServer, tmp_path: Path
) -> None:
    ref, manifest = _push(plain_registry, tmp_path / "a", "team/discover")
    with plain_registry.client() as client:
        assert discover_cosign(client, ref).empty
        signature = _push_signature(client, ref, manifest.digest)
        bundle = _push_bundle_referrer(client, ref, manifest, b'{"mediaType":"bundle"}')
        client.push_manifest(
            ref.with_tag(referrers_tag(manifest.digest)), encode_index([bundle]), media.OCI_INDEX
        )
        found = discover_cosign(client, ref)
        assert found.image == ref.with_digest(manifest.digest)
        assert found.signatures == signature
        assert found.attestations is None
        assert [d.digest for d in found.bundles] == [bundle.digest]
        # Signatures kept in another repository (cosign's COSIGN_REPOSITORY).
        sigs = ref.in_repository("team/discover-sigs")
        _push_signature(client, sigs, manifest.digest)
        elsewhere = discover_cosign(client, ref, repository="team/discover-sigs", bundles=False)
        assert elsewhere.signatures is not None
        assert elsewhere.bundles == ()


def test_client_from_gate_registry_settings(basic_registry: RegistryServer, tmp_path: Path) -> None:
    from gate.config import RegistrySettings

    ref, manifest = _push(basic_registry, tmp_path / "a", "private/settings")
    config = tmp_path / "docker.json"
    config.write_text(
        json.dumps({"auths": {basic_registry.host: {"username": USERNAME, "password": PASSWORD}}})
    )
    settings = RegistrySettings(docker_config=config, ca_file=basic_registry.ca_file, timeout=5)
    with RegistryClient.from_settings(settings) as client:
        assert client.timeout == 5
        assert client.image_manifest(ref) == manifest


def test_one_client_serves_concurrent_readers(token_registry: RegistryServer, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ref, _ = _push(token_registry, tmp_path / "a", "tokens/concurrent")
    server = token_registry.token_server
    assert server is not None

    def read(client: RegistryClient) -> bytes:
        found = client.image_manifest(ref)
        return client.read_blob(ref, found.layers[1], max_bytes=100)

    with token_registry.client() as client:
        before = len(server.issued)
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: read(client), range(32)))
        assert results == [b"second layer"] * 32
        assert 1 <= len(server.issued) - before <= 8

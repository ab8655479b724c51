"""The OCI 1.1 referrers API, against a fake registry that has it (docker-registry 2.8 has not)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gate.oci import (
    Descriptor,
    ImageRef,
    MalformedContent,
    RegistryClient,
    RegistryError,
    digest_of,
    encode_index,
    encode_manifest,
    media,
    referrers_tag,
)
from tests.integration.oci.fake_registry import Exchange, FakeRegistry, fake_registry

SUBJECT = encode_manifest(Descriptor(media.OCI_CONFIG, digest_of(b"{}"), 2), [])
SUBJECT_DIGEST = digest_of(SUBJECT)
BUNDLE = Descriptor(
    media.OCI_MANIFEST,
    digest_of(b"bundle manifest"),
    15,
    artifact_type=media.SIGSTORE_BUNDLE_V03,
    annotations={"dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1"},
)
SBOM = Descriptor(media.OCI_MANIFEST, digest_of(b"sbom manifest"), 13, artifact_type="application/spdx+json")
SECOND = Descriptor(
    media.OCI_MANIFEST, digest_of(b"second bundle"), 13, artifact_type=media.SIGSTORE_BUNDLE_V03
)


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with fake_registry() as registry:
        yield registry


def _ref(fake: FakeRegistry) -> ImageRef:
    return ImageRef.parse(f"{fake.host}/app@{SUBJECT_DIGEST}")


def test_referrers_api_pages_are_followed_and_filtered(fake: FakeRegistry) -> None:
    path = f"/v2/app/referrers/{SUBJECT_DIGEST}"

    def answer(exchange: Exchange) -> None:
        headers = {"Content-Type": media.OCI_INDEX}
        if exchange.query.get("page") == ["2"]:
            exchange.answer(200, encode_index([SECOND]), headers)
        else:
            exchange.answer(
                200, encode_index([BUNDLE, SBOM]), {**headers, "Link": f'<{path}?page=2>; rel="next"'}
            )

    fake.route("GET", path, answer)
    with RegistryClient(plain_http_hosts=[fake.host]) as client:
        assert client.referrers(_ref(fake)) == [BUNDLE, SBOM, SECOND]
        assert client.referrers(_ref(fake), artifact_type=media.SIGSTORE_BUNDLE_V03) == [BUNDLE, SECOND]
    first = [query for method, query in fake.requests if method == "GET"]
    assert f"{path}?artifactType=application%2Fvnd.dev.sigstore.bundle.v0.3%2Bjson" in first
    assert not any(referrers_tag(SUBJECT_DIGEST) in query for query in first)


def test_referrers_of_a_tag_resolve_it_first(fake: FakeRegistry) -> None:
    fake.static(
        "HEAD",
        "/v2/app/manifests/1.0",
        200,
        SUBJECT,
        {"Content-Type": media.OCI_MANIFEST, "Docker-Content-Digest": SUBJECT_DIGEST},
    )
    fake.static(
        "GET",
        f"/v2/app/referrers/{SUBJECT_DIGEST}",
        200,
        encode_index([SBOM]),
        {"Content-Type": media.OCI_INDEX},
    )
    with RegistryClient(plain_http_hosts=[fake.host]) as client:
        assert client.referrers(ImageRef.parse(f"{fake.host}/app:1.0")) == [SBOM]


def test_referrers_api_404_uses_the_fallback_tag(fake: FakeRegistry) -> None:
    fallback = encode_index([SBOM])
    fake.static(
        "GET",
        f"/v2/app/manifests/{referrers_tag(SUBJECT_DIGEST)}",
        200,
        fallback,
        {"Content-Type": media.OCI_INDEX, "Docker-Content-Digest": digest_of(fallback)},
    )
    with RegistryClient(plain_http_hosts=[fake.host]) as client:
        assert client.referrers(_ref(fake)) == [SBOM]


def test_referrers_api_answering_a_manifest_or_failing_is_an_error(fake: FakeRegistry) -> None:
    fake.static(
        "GET", f"/v2/app/referrers/{SUBJECT_DIGEST}", 200, SUBJECT, {"Content-Type": media.OCI_MANIFEST}
    )
    with (
        RegistryClient(plain_http_hosts=[fake.host]) as client,
        pytest.raises(MalformedContent, match="not an index"),
    ):
        client.referrers(_ref(fake))
    fake.static("GET", f"/v2/app/referrers/{SUBJECT_DIGEST}", 502, b"")
    with (
        RegistryClient(plain_http_hosts=[fake.host]) as client,
        pytest.raises(RegistryError, match="HTTP 502"),
    ):
        client.referrers(_ref(fake))


def test_a_next_page_on_another_host_is_refused(fake: FakeRegistry) -> None:
    fake.static(
        "GET",
        f"/v2/app/referrers/{SUBJECT_DIGEST}",
        200,
        encode_index([SBOM]),
        {
            "Content-Type": media.OCI_INDEX,
            "Link": '<http://elsewhere.example/v2/app/referrers/x>; rel="next"',
        },
    )
    with (
        RegistryClient(plain_http_hosts=[fake.host]) as client,
        pytest.raises(RegistryError, match="another host"),
    ):
        client.referrers(_ref(fake))

"""cosign's legacy tags and bundle referrers are found in an OCI layout, as in a registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.oci import (
    ImageManifest,
    ImageRef,
    MalformedContent,
    OciLayout,
    cosign_ref,
    cosign_tag,
    discover_cosign,
    media,
    referrers_tag,
)

REF = ImageRef.parse("registry.local/app:1.0")


def _signed_layout(path: Path) -> tuple[OciLayout, ImageManifest]:
    layout = OciLayout.create(path)
    image = layout.write_image(b'{"os":"linux"}', [b"layer"], tag="1.0")
    signature = layout.write_image(
        b"{}", [(b'{"critical":{}}', media.COSIGN_SIMPLESIGNING)], tag=cosign_tag(image.digest, "sig")
    )
    assert signature.digest != image.digest
    return layout, image


def test_cosign_ref_names_the_tag_and_optional_repository() -> None:
    digest = "sha256:" + "1" * 64
    assert str(cosign_ref(REF, digest, "sig")) == f"registry.local/app:sha256-{'1' * 64}.sig"
    other = cosign_ref(REF.with_digest(digest), digest, "att", repository="sigs/app")
    assert str(other) == f"registry.local/sigs/app:sha256-{'1' * 64}.att"


def test_legacy_signature_is_found_and_missing_tags_are_none(tmp_path: Path) -> None:
    layout, image = _signed_layout(tmp_path)
    found = discover_cosign(layout, REF)
    assert found.image == REF.with_digest(image.digest)
    assert found.signatures is not None
    assert found.signatures.layers[0].media_type == media.COSIGN_SIMPLESIGNING
    assert found.attestations is None
    assert found.sbom is None
    assert found.bundles == ()
    assert not found.empty


def test_bundle_referrers_are_found_by_subject_and_fallback_tag(tmp_path: Path) -> None:
    layout, image = _signed_layout(tmp_path)
    empty = layout.write_blob(media.OCI_EMPTY_DATA, media.OCI_EMPTY)
    direct = layout.write_image(
        empty.data or media.OCI_EMPTY_DATA,
        [(b'{"bundle":1}', media.SIGSTORE_BUNDLE_V03)],
        config_media_type=media.OCI_EMPTY,
        subject=image.descriptor,
        artifact_type=media.SIGSTORE_BUNDLE_V03,
        annotations={"dev.sigstore.bundle.content": "dsse-envelope"},
        tag="bundle-direct",
    )
    listed = layout.write_image(
        media.OCI_EMPTY_DATA,
        [(b'{"bundle":2}', media.SIGSTORE_BUNDLE_V03)],
        config_media_type=media.OCI_EMPTY,
        subject=image.descriptor,
        artifact_type=media.SIGSTORE_BUNDLE_V03,
    )
    layout.write_index([listed.descriptor], tag=referrers_tag(image.digest))
    unrelated = layout.write_image(b"{}", [b"x"], subject=direct.descriptor, tag="unrelated")
    assert unrelated.subject is not None

    everything = layout.referrers(REF)
    assert {d.digest for d in everything} == {direct.digest, listed.digest}
    found = discover_cosign(layout, REF)
    assert {d.digest for d in found.bundles} == {direct.digest, listed.digest}
    by_digest = {d.digest: d for d in found.bundles}
    assert by_digest[direct.digest].annotations == {"dev.sigstore.bundle.content": "dsse-envelope"}
    assert layout.referrers(REF, artifact_type="application/other") == []
    assert [d.digest for d in layout.referrers(REF.with_digest(direct.digest))] == [unrelated.digest]
    assert layout.referrers(REF.with_digest(direct.digest))[0].artifact_type == media.OCI_CONFIG


def test_a_cosign_tag_holding_an_index_is_malformed(tmp_path: Path) -> None:
    layout, image = _signed_layout(tmp_path)
    att = layout.write_image(b"{}", [b"att"])
    layout.write_index([att.descriptor], tag=cosign_tag(image.digest, "att"))
    with pytest.raises(MalformedContent, match="att tag holds an index"):
        discover_cosign(layout, REF)

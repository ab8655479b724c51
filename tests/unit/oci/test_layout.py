"""OCI image layouts are written by gate and read back, with every blob checked on the way out."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gate.oci import (
    ContentNotFound,
    Descriptor,
    DigestMismatch,
    ImageIndex,
    ImageManifest,
    ImageRef,
    ImageSource,
    MalformedContent,
    OciLayout,
    Platform,
    SizeLimitExceeded,
    SizeMismatch,
    digest_of,
    media,
)

REF = ImageRef.parse("registry.local/app:1.0")


def _image(layout: OciLayout, name: str = "1.0", seed: bytes = b"") -> ImageManifest:
    return layout.write_image(
        b'{"architecture":"amd64","os":"linux"}' + seed, [b"layer-one" + seed, b"layer-two"], tag=name
    )


def test_created_layout_has_the_spec_files(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "img")
    assert json.loads((tmp_path / "img" / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert layout.index().manifests == ()
    assert isinstance(layout, ImageSource)


def test_written_image_resolves_by_tag_and_full_name_and_digest(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    manifest = _image(layout)
    by_tag = layout.resolve(REF)
    assert by_tag.digest == manifest.digest
    assert by_tag.annotations[media.ANNOTATION_REF_NAME] == "1.0"
    layout.tag(manifest.descriptor, str(REF))
    assert layout.resolve(ImageRef.parse("other.registry/x:" + "1.0")).digest == manifest.digest
    assert layout.resolve(REF.with_digest(manifest.digest)).digest == manifest.digest
    assert set(layout.names()) == {"1.0", str(REF)}
    fetched = layout.manifest(REF)
    assert fetched == manifest
    assert layout.image_manifest(REF) == manifest


def test_blobs_read_back_verified(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    manifest = _image(layout)
    assert layout.read_blob(REF, manifest.layers[0], max_bytes=100) == b"layer-one"
    with layout.open_blob(REF, manifest.layers[1], max_bytes=100) as stream:
        assert stream.read(5) == b"layer"
        assert stream.read() == b"-two"
        assert stream.verified


def test_unknown_tag_and_missing_blob_are_not_found(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    manifest = _image(layout)
    with pytest.raises(ContentNotFound, match=r"'2.0 in OCI layout"):
        layout.resolve(REF.with_tag("2.0"))
    (tmp_path / "blobs" / "sha256" / manifest.layers[0].digest.split(":")[1]).unlink()
    with pytest.raises(ContentNotFound, match="blob"):
        layout.read_blob(REF, manifest.layers[0], max_bytes=100)
    with pytest.raises(ContentNotFound, match="manifest"):
        layout.manifest(REF.with_digest(digest_of(b"absent")))


def test_tampered_blob_is_refused(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    manifest = _image(layout)
    path = tmp_path / "blobs" / "sha256" / manifest.layers[0].digest.split(":")[1]
    path.write_bytes(b"layer-0ne")
    with pytest.raises(DigestMismatch, match=f"blob {manifest.layers[0].digest}: digest mismatch"):
        layout.read_blob(REF, manifest.layers[0], max_bytes=100)
    path.write_bytes(b"layer-one-and-more")
    with pytest.raises(SizeMismatch, match="descriptor says 9 bytes, got at least"):
        layout.read_blob(REF, manifest.layers[0], max_bytes=100)
    path.write_bytes(b"layer")
    with pytest.raises(SizeMismatch, match="descriptor says 9 bytes, got 5"):
        layout.read_blob(REF, manifest.layers[0], max_bytes=100)


def test_tampered_manifest_is_refused(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    manifest = _image(layout)
    path = tmp_path / "blobs" / "sha256" / manifest.digest.split(":")[1]
    path.write_bytes(
        manifest.raw.replace(b"layer", b"LAYER", 1) if b"layer" in manifest.raw else manifest.raw + b" "
    )
    with pytest.raises(DigestMismatch):
        layout.manifest(REF)


def test_caps_are_enforced_before_reading(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    manifest = _image(layout)
    with pytest.raises(SizeLimitExceeded, match="larger than the limit of 4 bytes \\(got 9\\)"):
        layout.open_blob(REF, manifest.layers[0], max_bytes=4)
    lying = replace(manifest.layers[0], size=2)
    with pytest.raises(SizeMismatch, match="descriptor says 2 bytes"):
        layout.read_blob(REF, lying, max_bytes=4)


def test_multi_platform_index_walks_to_the_platform(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    amd = _image(layout, "amd", b"amd")
    arm = _image(layout, "arm", b"arm")
    index = layout.write_index(
        [
            replace(amd.descriptor, platform=Platform("linux", "amd64")),
            replace(arm.descriptor, platform=Platform("linux", "arm64", "v8")),
        ],
        tag="multi",
    )
    ref = REF.with_tag("multi")
    assert isinstance(layout.manifest(ref), ImageIndex)
    assert layout.resolve(ref).digest == index.digest
    assert layout.image_manifest(ref) == amd
    assert layout.image_manifest(ref, platform="linux/arm64") == arm
    with pytest.raises(ContentNotFound, match="linux/ppc64le"):
        layout.image_manifest(ref, platform="linux/ppc64le")


def test_index_entry_lying_about_a_child_size_is_refused(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    amd = _image(layout, "amd", b"amd")
    liar = replace(amd.descriptor, size=amd.descriptor.size + 10, platform=Platform("linux", "amd64"))
    layout.write_index([liar], tag="multi")
    with pytest.raises(SizeMismatch, match="descriptor says"):
        layout.image_manifest(REF.with_tag("multi"))


def test_docker_schema2_images_and_lists_are_written(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    docker = layout.write_image(b"{}", [b"l"], media_type=media.DOCKER_MANIFEST)
    assert docker.config.media_type == media.DOCKER_CONFIG
    assert docker.layers[0].media_type == media.DOCKER_LAYER_TAR_GZIP
    listing = layout.write_index(
        [replace(docker.descriptor, platform=Platform("linux", "amd64"))],
        media_type=media.DOCKER_MANIFEST_LIST,
        tag="d",
    )
    assert layout.manifest(REF.with_tag("d")).media_type == media.DOCKER_MANIFEST_LIST
    assert layout.image_manifest(REF.with_tag("d")) == docker
    assert listing.manifests[0].media_type == media.DOCKER_MANIFEST


def test_retagging_replaces_the_entry(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    first = _image(layout, "t", b"1")
    second = _image(layout, "t", b"2")
    assert first.digest != second.digest
    assert layout.resolve(REF.with_tag("t")).digest == second.digest
    assert len(layout.index().manifests) == 1


def test_index_of_missing_manifest_is_refused(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    with pytest.raises(ContentNotFound):
        layout.write_index([Descriptor(media.OCI_MANIFEST, digest_of(b"nothing"), 7)])
    with pytest.raises(ContentNotFound):
        layout.tag(Descriptor(media.OCI_MANIFEST, digest_of(b"nothing"), 7), "x")


def test_directory_that_is_not_a_layout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContentNotFound):
        OciLayout(tmp_path / "absent")
    with pytest.raises(MalformedContent, match="no oci-layout file"):
        OciLayout(tmp_path)
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    with pytest.raises(MalformedContent, match=r"imageLayoutVersion must be '1\.0\.0', got '2\.0\.0'"):
        OciLayout(tmp_path)
    with pytest.raises(MalformedContent, match="already an OCI image layout"):
        OciLayout.create(tmp_path)


def test_corrupt_index_json_is_refused(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    (tmp_path / "index.json").write_text("{")
    with pytest.raises(MalformedContent, match=r"index\.json: invalid JSON"):
        layout.resolve(REF)


def test_ambiguous_name_is_refused(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path)
    one = _image(layout, "a", b"1")
    two = _image(layout, "b", b"2")
    entries = [
        replace(one.descriptor, annotations={media.ANNOTATION_REF_NAME: "same"}),
        replace(two.descriptor, annotations={media.ANNOTATION_REF_NAME: "same"}),
    ]
    from gate.oci import encode_index

    (tmp_path / "index.json").write_bytes(encode_index(entries))
    with pytest.raises(MalformedContent, match="given to several manifests"):
        layout.resolve(REF.with_tag("same"))

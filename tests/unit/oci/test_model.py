"""Manifests and indexes parse strictly from their exact bytes and encode back to those bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gate.oci import (
    Descriptor,
    DigestMismatch,
    ImageIndex,
    ImageManifest,
    MalformedContent,
    Platform,
    UnsupportedContent,
    digest_of,
    encode_index,
    encode_manifest,
    media,
    parse_manifest,
)
from gate.oci._errors import ContentNotFound, SizeMismatch
from gate.oci._model import check_against

CONFIG = Descriptor(media.OCI_CONFIG, digest_of(b"{}"), 2)
LAYER = Descriptor(media.OCI_LAYER_TAR_GZIP, digest_of(b"layer"), 5, annotations={"k": "v"})


def _manifest_obj(**overrides: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "config": CONFIG.to_json(),
        "layers": [LAYER.to_json()],
    }
    obj.update(overrides)
    return obj


def _raw(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def test_oci_manifest_parses_with_its_digest_and_raw_bytes() -> None:
    raw = encode_manifest(CONFIG, [LAYER], annotations={"a": "b"})
    found = parse_manifest(raw, where="m")
    assert isinstance(found, ImageManifest)
    assert found.digest == digest_of(raw)
    assert found.raw == raw
    assert found.config == CONFIG
    assert found.layers == (LAYER,)
    assert found.annotations == {"a": "b"}
    assert found.descriptor == Descriptor(media.OCI_MANIFEST, digest_of(raw), len(raw))


def test_subject_and_artifact_type_are_read() -> None:
    subject = Descriptor(media.OCI_MANIFEST, digest_of(b"x"), 1)
    raw = encode_manifest(CONFIG, [LAYER], subject=subject, artifact_type=media.SIGSTORE_BUNDLE_V03)
    found = parse_manifest(raw, where="m")
    assert found.subject == subject
    assert found.artifact_type == media.SIGSTORE_BUNDLE_V03
    assert found.descriptor.artifact_type == media.SIGSTORE_BUNDLE_V03


def test_docker_manifest_list_with_platforms_parses_and_selects() -> None:
    amd = Descriptor(media.DOCKER_MANIFEST, digest_of(b"a"), 1, platform=Platform("linux", "amd64"))
    arm = Descriptor(media.DOCKER_MANIFEST, digest_of(b"b"), 1, platform=Platform("linux", "arm64", "v8"))
    raw = encode_index([amd, arm], media_type=media.DOCKER_MANIFEST_LIST)
    found = parse_manifest(raw, where="i", content_type=media.DOCKER_MANIFEST_LIST + "; charset=utf-8")
    assert isinstance(found, ImageIndex)
    assert found.media_type == media.DOCKER_MANIFEST_LIST
    assert found.select("linux/amd64") == amd
    assert found.select("linux/arm64") == arm
    assert found.select(Platform.parse("linux/arm64/v8")) == arm
    with pytest.raises(ContentNotFound, match=r"linux/s390x in index .*present: linux/amd64, linux/arm64/v8"):
        found.select("linux/s390x")


def test_arm64_without_variant_matches_the_default_v8() -> None:
    assert Platform.parse("linux/arm64/v8").matches(Platform("linux", "arm64"))
    assert not Platform.parse("linux/arm/v6").matches(Platform("linux", "arm"))
    assert Platform.parse("linux/arm").matches(Platform("linux", "arm", "v6"))


def test_media_type_may_be_absent_and_is_then_inferred() -> None:
    obj = _manifest_obj()
    del obj["mediaType"]
    assert parse_manifest(_raw(obj), where="m").media_type == media.OCI_MANIFEST
    index = {"schemaVersion": 2, "manifests": []}
    assert isinstance(parse_manifest(_raw(index), where="i"), ImageIndex)


def test_expected_digest_is_checked() -> None:
    raw = encode_manifest(CONFIG, [LAYER])
    with pytest.raises(DigestMismatch, match="expected sha256:0000"):
        parse_manifest(raw, where="m", digest="sha256:" + "0" * 64)
    sha512 = digest_of(raw, "sha512")
    assert parse_manifest(raw, where="m", digest=sha512).digest == sha512


@pytest.mark.parametrize(
    ("raw", "error", "fragment"),
    [
        (b"{not json", MalformedContent, "m: invalid JSON"),
        (b"[]", MalformedContent, "expected a JSON object, got list"),
        (b"\xff\xfe", MalformedContent, "not UTF-8"),
        (b'{"schemaVersion":2,"schemaVersion":2}', MalformedContent, "duplicate key 'schemaVersion'"),
        (_raw(_manifest_obj(schemaVersion=3)), MalformedContent, "schemaVersion: expected 2, got 3"),
        (_raw(_manifest_obj(schemaVersion=True)), MalformedContent, "schemaVersion"),
        (_raw({"schemaVersion": 1, "name": "x"}), UnsupportedContent, "schema 1"),
        (_raw(_manifest_obj(mediaType="application/x-other")), UnsupportedContent, "application/x-other"),
        (_raw(_manifest_obj(mediaType="no slash")), MalformedContent, "not a media type"),
        (_raw(_manifest_obj(layers={})), MalformedContent, "m.layers: expected a list, got dict"),
        (_raw(_manifest_obj(config=None)), MalformedContent, "m.config: expected a descriptor object"),
        (
            _raw(_manifest_obj(layers=[{**LAYER.to_json(), "size": -1}])),
            MalformedContent,
            "m.layers[0].size: expected a non-negative integer",
        ),
        (
            _raw(_manifest_obj(layers=[{**LAYER.to_json(), "size": "5"}])),
            MalformedContent,
            "m.layers[0].size",
        ),
        (
            _raw(_manifest_obj(layers=[{**LAYER.to_json(), "digest": "sha256:zz"}])),
            MalformedContent,
            "m.layers[0].digest",
        ),
        (
            _raw(_manifest_obj(layers=[{**LAYER.to_json(), "annotations": {"k": 1}}])),
            MalformedContent,
            "annotations: expected an object of strings",
        ),
        (
            _raw({"schemaVersion": 2, "manifests": [{**CONFIG.to_json(), "platform": {"os": "linux"}}]}),
            MalformedContent,
            "manifests[0].platform.architecture",
        ),
    ],
)
def test_malformed_manifests_are_refused_with_the_field(
    raw: bytes, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        parse_manifest(raw, where="m")
    assert fragment in str(caught.value)


def test_embedded_data_must_match_its_digest() -> None:
    good = {**CONFIG.to_json(), "data": "e30="}  # base64 of {}
    found = parse_manifest(_raw(_manifest_obj(config=good)), where="m")
    assert isinstance(found, ImageManifest)
    assert found.config.data == b"{}"
    bad = {**CONFIG.to_json(), "data": "W10="}  # base64 of []
    with pytest.raises(DigestMismatch, match=r"m.config.data"):
        parse_manifest(_raw(_manifest_obj(config=bad)), where="m")


def test_served_content_type_must_agree_with_the_media_type() -> None:
    raw = encode_manifest(CONFIG, [LAYER])
    with pytest.raises(MalformedContent, match=r"served as .*docker.* but its mediaType is .*oci"):
        parse_manifest(raw, where="m", content_type=media.DOCKER_MANIFEST)
    assert parse_manifest(raw, where="m", content_type="application/json").media_type == media.OCI_MANIFEST


def test_check_against_refuses_a_descriptor_that_lies_about_the_size() -> None:
    raw = encode_manifest(CONFIG, [LAYER])
    found = parse_manifest(raw, where="m")
    check_against(found, found.descriptor, where="m")
    with pytest.raises(SizeMismatch, match=f"descriptor says {len(raw) - 1} bytes, got {len(raw)}"):
        check_against(found, Descriptor(media.OCI_MANIFEST, found.digest, len(raw) - 1), where="m")
    with pytest.raises(MalformedContent, match=r"descriptor says .*index"):
        check_against(found, Descriptor(media.OCI_INDEX, found.digest, len(raw)), where="m")


def test_encoding_round_trips_every_descriptor_field() -> None:
    full = Descriptor(
        media.OCI_MANIFEST,
        digest_of(b"{}"),
        2,
        annotations={"a": "1"},
        platform=Platform("windows", "amd64", None, "10.0.17763", ("win32k",)),
        artifact_type="application/x-art",
        urls=("https://example/blob",),
        data=b"{}",
    )
    raw = encode_index([full], annotations={"x": "y"}, artifact_type="application/x-idx")
    found = parse_manifest(raw, where="i")
    assert isinstance(found, ImageIndex)
    assert found.manifests == (full,)
    assert encode_index(found.manifests, annotations={"x": "y"}, artifact_type="application/x-idx") == raw


def test_encoders_refuse_the_wrong_family() -> None:
    with pytest.raises(UnsupportedContent):
        encode_manifest(CONFIG, [], media_type=media.OCI_INDEX)
    with pytest.raises(UnsupportedContent):
        encode_index([], media_type=media.OCI_MANIFEST)

"""SBOMs of images: docker-archive tars (classic and OCI-style) and OCI image layouts."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import zstandard
from cyclonedx.schema import OutputFormat

from gate.errors import InvalidArgument
from gate.model import TargetKind
from gate.oci import OciLayout
from gate.sbom import GeneratedSbom, Limits, generate
from gate.sbom._image import (
    ImageLocation,
    generate_image,
    open_docker_archive,
    open_oci_layout,
    parse_location,
)
from gate.sbom._layers import UnsafeArchive
from tests.unit.sbom.conftest import ASSETS, FIXED_TIME
from tests.unit.sbom.layers import (
    directory,
    docker_archive,
    file,
    image_config,
    tar,
    tgz,
    tree_layer,
)
from tests.unit.sbom.schema import library_errors, rs_errors

REQUESTS_METADATA = "Metadata-Version: 2.1\nName: requests\nVersion: 2.32.3\nLicense-Expression: Apache-2.0\n"
SITE = "usr/lib/python3/dist-packages"


def app_layers() -> list[bytes]:
    """Debian base, then an app layer, then a layer deleting part of it: what each SBOM below must show."""
    base = tree_layer(ASSETS / "rootfs-debian")
    app = tar(
        directory("srv"),
        file("srv/poetry.lock", (ASSETS / "poetry" / "poetry.lock").read_bytes()),
        file("srv/old/requirements.txt", "flask==3.0.0\n"),
        file(f"{SITE}/requests-2.32.3.dist-info/METADATA", REQUESTS_METADATA),
        file("usr/share/doc/tzdata/copyright", "replaced, not machine-readable"),
    )
    cleanup = tar(file("srv/.wh.old"), file("opt/.wh..wh..opq"))
    return [base, app, cleanup]


def expected_tree(tmp_path: Path) -> Path:
    """The same content written out by hand, for comparison with a plain directory SBOM."""
    root = tmp_path / "expected"
    shutil.copytree(ASSETS / "rootfs-debian", root)
    (root / "srv").mkdir()
    shutil.copy(ASSETS / "poetry" / "poetry.lock", root / "srv" / "poetry.lock")
    meta = root / SITE / "requests-2.32.3.dist-info"
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text(REQUESTS_METADATA)
    (root / "usr/share/doc/tzdata/copyright").write_text("replaced, not machine-readable")
    return root


def component_view(sbom: GeneratedSbom) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.ref, c.component.purl, c.component.licenses) for c in sbom.components]


def check_valid(sbom: GeneratedSbom) -> dict[str, object]:
    document = sbom.to_cyclonedx_json()
    assert rs_errors(document) == []
    assert library_errors(document, OutputFormat.JSON) == ""
    assert library_errors(sbom.to_cyclonedx_xml(), OutputFormat.XML) == ""
    parsed: dict[str, object] = json.loads(document)
    return parsed


def test_classic_docker_archive_is_catalogued_like_its_merged_tree(tmp_path: Path) -> None:
    archive = tmp_path / "app.tar"
    image_id = docker_archive(archive, app_layers(), ["registry.example/team/app:1.4.2"])
    with open_docker_archive(archive, limits=Limits()) as image:
        assert (image.name, image.tag, image.digest, image.config_digest) == (
            "registry.example/team/app",
            "1.4.2",
            image_id,
            image_id,
        )
        sbom = generate_image(image, timestamp=FIXED_TIME)
    plain = generate(expected_tree(tmp_path), subject=sbom.subject, timestamp=FIXED_TIME)
    assert component_view(sbom) == component_view(plain)
    names = {c.component.name for c in sbom.components}
    assert {"bash", "libc6", "requests", "debian"} <= names
    assert "flask" not in names  # deleted by a whiteout in the top layer
    assert sbom.target_kind is TargetKind.IMAGE
    assert [w.message for w in sbom.warnings] == [
        "a classic docker-archive has no image manifest: the image ID (config digest) names it"
    ]
    document = check_valid(sbom)
    metadata = document["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["component"]["type"] == "container"
    assert metadata["component"]["version"] == image_id
    properties = {p["name"]: p["value"] for p in metadata["component"]["properties"]}
    assert properties["gate:target-kind"] == "image"
    assert properties["gate:tag"] == "1.4.2"


def test_oci_style_docker_archive_is_named_by_its_manifest_digest(tmp_path: Path) -> None:
    archive = tmp_path / "app.tar"
    manifest_digest = docker_archive(archive, app_layers(), ["registry.example/team/app:2"], oci=True)
    with open_docker_archive(archive, limits=Limits()) as image:
        assert image.digest == manifest_digest
        assert image.digest != image.config_digest
        sbom = generate_image(image, timestamp=FIXED_TIME)
    assert sbom.subject.digest == manifest_digest
    assert sbom.warnings == ()
    check_valid(sbom)


def test_oci_layout_image_with_gzip_and_zstd_layers(tmp_path: Path) -> None:
    layers = app_layers()
    blobs = [gzip.compress(layers[0]), zstandard.ZstdCompressor().compress(layers[1]), layers[2]]
    layout = OciLayout.create(tmp_path / "layout")
    types = [
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.v1.tar",
    ]
    manifest = layout.write_image(
        image_config(layers), list(zip(blobs, types, strict=True)), tag="registry.example/team/app:3.0"
    )
    location = parse_location(f"oci:{tmp_path / 'layout'}:registry.example/team/app:3.0")
    assert location == ImageLocation("oci", str(tmp_path / "layout"), "registry.example/team/app:3.0")
    image = open_oci_layout(Path(location.path), location.name, platform="linux/amd64", limits=Limits())
    assert (image.name, image.tag, image.digest) == ("registry.example/team/app", "3.0", manifest.digest)
    sbom = generate_image(image, timestamp=FIXED_TIME)
    plain = generate(expected_tree(tmp_path), subject=sbom.subject, timestamp=FIXED_TIME)
    assert component_view(sbom) == component_view(plain)
    check_valid(sbom)


def test_oci_layout_with_one_image_needs_no_name_and_several_need_one(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "layout")
    one = [tgz(file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.3\n"))]
    first = layout.write_image(image_config([gzip.decompress(one[0])]), one, tag="1.0")
    image = open_oci_layout(tmp_path / "layout", "", platform="linux/amd64", limits=Limits())
    assert (image.name, image.tag, image.digest) == ("layout", "1.0", first.digest)
    two = [tgz(file("etc/os-release", "ID=alpine\nVERSION_ID=3.21.0\n"))]
    layout.write_image(image_config([gzip.decompress(two[0])]), two, tag="2.0")
    with pytest.raises(InvalidArgument, match=r"holds 2 images \(1.0, 2.0\); name one as oci:<dir>:<name>"):
        open_oci_layout(tmp_path / "layout", "", platform="linux/amd64", limits=Limits())


def test_layer_that_differs_from_its_diff_id_is_rejected(tmp_path: Path) -> None:
    layers = app_layers()
    config = image_config(layers, ["sha256:" + "1" * 64, *image_config_ids(layers[1:])])
    archive = tmp_path / "app.tar"
    docker_archive(archive, layers, [], config=config)
    with (
        open_docker_archive(archive, limits=Limits()) as image,
        pytest.raises(UnsafeArchive, match=r"layer 1 \(.*\): content digest sha256:\w+ differs"),
    ):
        generate_image(image)


def image_config_ids(layers: list[bytes]) -> list[str]:
    return json.loads(image_config(layers))["rootfs"]["diff_ids"]


def test_hostile_image_is_rejected_and_its_temporary_directory_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    layers = [tar(file("etc/os-release", "ID=debian\n")), tar(file("../../escaped", "x"))]
    archive = tmp_path / "evil.tar"
    docker_archive(archive, layers, ["evil:1"])
    with (
        open_docker_archive(archive, limits=Limits()) as image,
        pytest.raises(UnsafeArchive, match=r"layer 2 \(.*\): member '../../escaped': '..' in the path"),
    ):
        generate_image(image)
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "escaped").exists()


def test_decompression_bomb_in_an_image_stops_at_the_cap(tmp_path: Path) -> None:
    bomb = tgz(file("zeros", b"\0" * (4 * 1024 * 1024)))
    layout = OciLayout.create(tmp_path / "layout")
    layout.write_image(image_config([gzip.decompress(bomb)]), [bomb], tag="bomb")
    image = open_oci_layout(tmp_path / "layout", "bomb", platform="linux/amd64", limits=Limits())
    with pytest.raises(UnsafeArchive, match="decompression bomb"):
        generate_image(image, limits=Limits(max_unpacked_bytes=1024 * 1024))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not a tar at all" * 100, "not a readable tar archive"),
        (tar(file("other.txt", "x")), "'manifest.json' is listed but not in the archive"),
        (tar(file("manifest.json", "{}")), "manifest.json is not a non-empty list of images"),
        (
            tar(file("manifest.json", json.dumps([{"Config": "c.json", "Layers": []}] * 2))),
            "holds 2 images",
        ),
        (
            tar(
                file("manifest.json", json.dumps([{"Config": "c.json", "Layers": [], "RepoTags": True}] * 2))
            ),
            r"holds 2 images \(<untagged>; <untagged>\)",
        ),
    ],
)
def test_malformed_docker_archive_is_rejected(tmp_path: Path, content: bytes, problem: str) -> None:
    archive = tmp_path / "bad.tar"
    archive.write_bytes(content)
    with pytest.raises(InvalidArgument, match=problem), open_docker_archive(archive, limits=Limits()):
        pass


def test_repo_tags_that_are_not_a_list_of_names_are_ignored_as_missing_ones(tmp_path: Path) -> None:
    layer = tar(file("etc/x", "x"))
    config = image_config([layer])
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = hashlib.sha256(layer).hexdigest() + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": True, "Layers": [layer_name]}]
    archive = tmp_path / "image.tar"
    archive.write_bytes(
        tar(file(config_name, config), file(layer_name, layer), file("manifest.json", json.dumps(manifest)))
    )
    with open_docker_archive(archive, limits=Limits()) as image:
        assert (image.name, image.tag) == ("image", "")  # named after the file, as an untagged save


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("docker-archive:/x/app.tar", ImageLocation("docker-archive", "/x/app.tar")),
        ("oci:/nowhere/layout", ImageLocation("oci", "/nowhere/layout")),
        ("oci:/nowhere/layout:1.0", ImageLocation("oci", "/nowhere/layout", "1.0")),
        ("registry.example/app:1.0", ImageLocation("registry", "registry.example/app:1.0")),
        (
            "docker://registry.example/app@sha256:" + "a" * 64,
            ImageLocation("registry", "registry.example/app@sha256:" + "a" * 64),
        ),
    ],
)
def test_image_locations_are_named_as_scans_name_them(location: str, expected: ImageLocation) -> None:
    assert parse_location(location) == expected


def test_oci_location_with_a_colon_in_an_existing_directory_name(tmp_path: Path) -> None:
    odd = tmp_path / "a:b"
    odd.mkdir()
    assert parse_location(f"oci:{odd}") == ImageLocation("oci", str(odd))


def test_docker_archive_larger_than_the_byte_cap_is_refused_while_listing(tmp_path: Path) -> None:
    archive = tmp_path / "big.tar.gz"
    archive.write_bytes(
        gzip.compress(tar(file("manifest.json", "[]"), file("zeros", b"\0" * (2 * 1024 * 1024))))
    )
    limits = Limits(max_unpacked_bytes=1024 * 1024)
    with (
        pytest.raises(UnsafeArchive, match=r"member 'zeros': members larger than 1048576 bytes"),
        open_docker_archive(archive, limits=limits),
    ):
        pass

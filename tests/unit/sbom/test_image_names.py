"""Image names read from an archive or a layout are checked before they name the SBOM's subject.

``RepoTags`` of a ``docker save`` manifest and the name annotations of an OCI layout's index are
whatever the archive says: a NUL, a terminal escape, a megabyte, a number. They used to become
the subject's name (and the artifact's) as they were. A name that is not an image reference is
now skipped with a warning naming the field; the image is still named by its digest, and by its
file or directory name when no valid name is left. An archive of several images is refused, as
before, without repeating the hostile names in the error.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate.errors import InvalidArgument
from gate.model import CONTROL_CHARACTER
from gate.oci import ImageRef, OciLayout
from gate.sbom import Limits
from gate.sbom._image import ImageContent, generate_image, open_docker_archive, open_oci_layout
from tests.unit.sbom.conftest import FIXED_TIME
from tests.unit.sbom.layers import docker_archive, file, image_config, tar, tgz

CLASSIC = "a classic docker-archive has no image manifest: the image ID (config digest) names it"
NOT_USED = "not used to name the image"
OS_RELEASE = file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.3\n")


def open_archive(path: Path, repo_tags: Any) -> tuple[ImageContent, str]:
    """Write a classic docker-archive whose manifest.json has ``repo_tags`` and open it."""
    digest = docker_archive(path, [tar(OS_RELEASE)], repo_tags)
    with open_docker_archive(path, limits=Limits()) as image:
        return image, digest


def test_repo_tags_that_are_not_image_references_are_skipped_and_the_first_valid_one_names_the_image(
    tmp_path: Path,
) -> None:
    image, digest = open_archive(
        tmp_path / "app.tar",
        [
            "ev\0il:1",
            "x" * 1_000_000,
            3,
            None,
            "registry.example/app:1.0\n",  # the reference grammar's "$" would let this one through
            "registry.example/team/app:2.0",
        ],
    )
    assert (image.name, image.tag, image.digest) == ("registry.example/team/app", "2.0", digest)
    assert [w.message for w in image.warnings] == [
        f"manifest.json[0].RepoTags[0]: expected an image reference, got 'ev\\x00il:1'; {NOT_USED}",
        "manifest.json[0].RepoTags[1]: expected an image reference, "
        f"got {'x' * 80!r}... (1000000 characters); {NOT_USED}",
        f"manifest.json[0].RepoTags[2]: expected an image reference, got a number; {NOT_USED}",
        f"manifest.json[0].RepoTags[3]: expected an image reference, got null; {NOT_USED}",
        "manifest.json[0].RepoTags[4]: expected an image reference, "
        f"got 'registry.example/app:1.0\\n'; {NOT_USED}",
        CLASSIC,
    ]
    assert {w.path for w in image.warnings} == {"app.tar"}


def test_an_archive_with_no_valid_name_is_named_after_its_file_and_its_sbom_holds_no_bad_name(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "app.tar"
    digest = docker_archive(archive, [tar(OS_RELEASE)], ["\x1b]0;pwned\x07:1"])
    with open_docker_archive(archive, limits=Limits()) as image:
        assert (image.name, image.tag, image.digest) == ("app", "", digest)
        sbom = generate_image(image, timestamp=FIXED_TIME)
    assert sbom.warnings[0].message == (
        f"manifest.json[0].RepoTags[0]: expected an image reference, got '\\x1b]0;pwned\\x07:1'; {NOT_USED}"
    )
    document = sbom.to_cyclonedx_json()
    subject = json.loads(document)["metadata"]["component"]
    assert (subject["name"], subject["version"]) == ("app", digest)
    assert b"pwned" not in document


@pytest.mark.parametrize(
    ("repo_tags", "got"),
    [
        (True, "a boolean"),
        ("registry.example/app:1.0", "'registry.example/app:1.0'"),
        ({"a": 1}, "an object"),
    ],
)
def test_repo_tags_that_are_not_a_list_are_ignored_with_a_warning(
    tmp_path: Path, repo_tags: object, got: str
) -> None:
    image, _ = open_archive(tmp_path / "app.tar", repo_tags)
    assert (image.name, image.tag) == ("app", "")
    assert [w.message for w in image.warnings] == [
        f"manifest.json[0].RepoTags: expected a list of image references, got {got}; {NOT_USED}",
        CLASSIC,
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tags=st.lists(
        st.one_of(
            st.text(max_size=40),
            st.from_regex(r"[a-z0-9.:/\n\x00\x1b-]{1,30}", fullmatch=True),
            st.integers(),
            st.none(),
            st.booleans(),
        ),
        max_size=4,
    )
)
def test_whatever_repo_tags_hold_the_image_is_named_by_a_valid_reference_or_its_file(
    tmp_path: Path, tags: list[object]
) -> None:
    image, _ = open_archive(tmp_path / "app.tar", tags)
    assert CONTROL_CHARACTER.search(image.name + image.tag) is None
    if image.name != "app":
        ImageRef.parse(f"{image.name}:{image.tag}" if image.tag else image.name)
    assert all("\x00" not in w.message and "\x1b" not in w.message for w in image.warnings)


def test_an_untagged_image_has_no_warning_about_its_name(tmp_path: Path) -> None:
    image, _ = open_archive(tmp_path / "app.tar", None)  # docker save writes null for one
    assert (image.name, image.tag) == ("app", "")
    assert [w.message for w in image.warnings] == [CLASSIC]


def test_warnings_about_bad_names_stop_after_five_and_say_how_many_more(tmp_path: Path) -> None:
    image, _ = open_archive(tmp_path / "app.tar", [""] * 10_000)
    messages = [w.message for w in image.warnings]
    assert len(messages) == 7
    assert messages[4] == f"manifest.json[0].RepoTags[4]: expected an image reference, got ''; {NOT_USED}"
    assert messages[5] == "manifest.json[0].RepoTags: 9995 more entries that are not image references"


def several_images(path: Path, *repo_tags: object) -> Path:
    manifest = [{"Config": f"{i}.json", "Layers": [], "RepoTags": tags} for i, tags in enumerate(repo_tags)]
    path.write_bytes(tar(file("manifest.json", json.dumps(manifest))))
    return path


def test_an_archive_of_several_images_is_refused_without_repeating_hostile_names(tmp_path: Path) -> None:
    archive = several_images(
        tmp_path / "two.tar", ["\x1b[2J:1", "registry.example/a:1", "y" * 100_000], ["ev\0il:2"]
    )
    with pytest.raises(InvalidArgument) as refused, open_docker_archive(archive, limits=Limits()):
        pass
    assert refused.value.problem == (
        "two.tar: holds 2 images (registry.example/a:1; <untagged>); save one image per archive"
    )


def test_an_archive_of_many_images_lists_five_of_them(tmp_path: Path) -> None:
    archive = several_images(tmp_path / "many.tar", *([f"registry.example/a:{i}"] for i in range(1000)))
    with pytest.raises(InvalidArgument) as refused, open_docker_archive(archive, limits=Limits()):
        pass
    assert refused.value.problem == (
        "many.tar: holds 1000 images (registry.example/a:0; registry.example/a:1; registry.example/a:2; "
        "registry.example/a:3; registry.example/a:4; and 995 more); save one image per archive"
    )


def layout_with_annotations(path: Path, *annotations: dict[str, str]) -> list[str]:
    """An OCI layout of one image per ``annotations``, its index entries annotated with them."""
    layout = OciLayout.create(path)
    digests = []
    for index, _ in enumerate(annotations):
        layer = tgz(file("etc/os-release", f"ID=alpine\nVERSION_ID=3.20.{index}\n"))
        digests.append(
            layout.write_image(image_config([gzip.decompress(layer)]), [layer], tag=str(index)).digest
        )
    document = json.loads((path / "index.json").read_text())
    for entry, wanted in zip(document["manifests"], annotations, strict=True):
        entry["annotations"] = wanted
    (path / "index.json").write_text(json.dumps(document))
    return digests


def test_an_oci_layout_name_annotation_that_is_not_a_reference_is_skipped_with_a_warning(
    tmp_path: Path,
) -> None:
    layout_with_annotations(
        tmp_path / "layout",
        {"io.containerd.image.name": "registry.example/app:1\n", "org.opencontainers.image.ref.name": "3.0"},
    )
    image = open_oci_layout(tmp_path / "layout", "", platform="linux/amd64", limits=Limits())
    assert (image.name, image.tag) == ("layout", "3.0")  # a bare tag, as ref.name often is
    assert [(w.path, w.message) for w in image.warnings] == [
        (
            "layout",
            "index.json manifests[0].annotations['io.containerd.image.name']: expected an image reference, "
            f"got 'registry.example/app:1\\n'; {NOT_USED}",
        )
    ]


@pytest.mark.parametrize("name", ["\x1b[2J", "1.0\0", "V" * 200, "registry.example/App:1"])
def test_an_oci_layout_with_no_valid_name_is_named_after_its_directory(tmp_path: Path, name: str) -> None:
    (digest,) = layout_with_annotations(tmp_path / "layout", {"org.opencontainers.image.ref.name": name})
    image = open_oci_layout(tmp_path / "layout", "", platform="linux/amd64", limits=Limits())
    assert (image.name, image.tag, image.digest) == ("layout", "", digest)
    (warning,) = image.warnings
    field = "index.json manifests[0].annotations['org.opencontainers.image.ref.name']"
    assert warning.message.startswith(f"{field}: expected an image reference, got ")
    assert "\x1b" not in warning.message
    assert "\0" not in warning.message


def test_an_oci_layout_of_several_images_is_refused_naming_a_hostile_one_by_its_digest(
    tmp_path: Path,
) -> None:
    digests = layout_with_annotations(
        tmp_path / "layout",
        {"org.opencontainers.image.ref.name": "1.0"},
        {"org.opencontainers.image.ref.name": "\x1b[2J"},
    )
    with pytest.raises(InvalidArgument) as refused:
        open_oci_layout(tmp_path / "layout", "", platform="linux/amd64", limits=Limits())
    assert f"holds 2 images ({', '.join(sorted(['1.0', digests[1]]))}); name one" in refused.value.problem
    assert "\x1b" not in refused.value.problem


def test_a_config_named_by_its_digest_is_still_checked_with_hostile_names(tmp_path: Path) -> None:
    # The names are skipped; what identifies the image (its config's digest) is still verified.
    layer = tar(OS_RELEASE)
    config = image_config([layer])
    wrong = hashlib.sha256(b"other").hexdigest() + ".json"
    manifest = [{"Config": wrong, "RepoTags": ["\0"], "Layers": ["l.tar"]}]
    archive = tmp_path / "bad.tar"
    archive.write_bytes(
        tar(file(wrong, config), file("l.tar", layer), file("manifest.json", json.dumps(manifest)))
    )
    with (
        pytest.raises(InvalidArgument, match="does not hash to its name"),
        open_docker_archive(archive, limits=Limits()),
    ):
        pass

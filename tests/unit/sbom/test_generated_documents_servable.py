"""What native generation writes passes the upload parser, so GetSbom can convert it later.

GetSbom converts a stored SBOM by reading it again with the strict upload parser. Two inputs
used to make a generated document unreadable there: a NUL in free text (a dpkg ``Source:``
field, written into a property as ``\\u0000``), and a file path holding a control character
(Linux allows a line feed in a name), written into a bom-ref. Free text now gets U+FFFD with a
warning naming the field, and the path part of a bom-ref is percent-encoded; refs of ordinary
paths are those gate always wrote.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gate.model import Sbom, SbomFormat
from gate.sbom import GeneratedSbom, MalformedInput, SbomWarning, Subject, generate
from gate.sbom._export import convert
from gate.sbom._ingest import parse
from gate.sbom._types import ref_location
from tests.unit.sbom.conftest import ASSETS, FIXED_TIME

DPKG_SOURCE_WITH_NUL = (
    "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1\n"
    "Source: zl\0ib (1:1.2.13.dfsg-1)\n"
)


def _generated(root: Path, subject: Subject, *, strict: bool = False) -> GeneratedSbom:
    return generate(root, subject=subject, timestamp=FIXED_TIME, strict=strict)


def _record(fmt: SbomFormat) -> Sbom:
    return Sbom("1" * 32, "sha256:" + "5" * 64, fmt, "1.6", "gate", datetime(2026, 1, 2, tzinfo=UTC), 0, "")


def _servable(sbom: GeneratedSbom) -> None:
    """Both renderings pass the upload parser (schema included), and convert to every format as
    GetSbom converts a stored document."""
    for fmt, document in (
        (SbomFormat.CYCLONEDX_JSON, sbom.to_cyclonedx_json()),
        (SbomFormat.CYCLONEDX_XML, sbom.to_cyclonedx_xml()),
    ):
        parsed = parse(document, fmt)
        assert {c.ref for c in parsed.components} == {c.ref for c in sbom.components}
        for target in SbomFormat:
            assert convert(parse(document, fmt, check_schema=False), _record(fmt), target)


def _debian(root: Path, status: str) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(status)
    return root


def _properties(sbom: GeneratedSbom, name: str) -> dict[str, str]:
    (found,) = [c for c in sbom.components if c.component.name == name]
    return dict(found.properties)


# --- free text ---------------------------------------------------------------------------------


def test_a_nul_in_a_dpkg_source_field_becomes_u_fffd_with_a_warning_and_the_package_is_kept(
    tmp_path: Path, subject: Subject
) -> None:
    sbom = _generated(_debian(tmp_path, DPKG_SOURCE_WITH_NUL), subject)
    assert _properties(sbom, "zlib1g")["gate:deb:source"] == "zl\ufffdib"
    assert sbom.warnings == (
        SbomWarning(
            "var/lib/dpkg/status",
            "dpkg entry 'zlib1g': NUL characters replaced with U+FFFD in property gate:deb:source",
        ),
    )
    assert b"\\u0000" not in sbom.to_cyclonedx_json()
    _servable(sbom)


def test_a_lone_surrogate_in_a_lock_file_licence_becomes_u_fffd_instead_of_failing_the_document(
    tmp_path: Path, subject: Subject
) -> None:
    # JSON can escape a lone surrogate, which no UTF-8 document can hold: writing it failed.
    lock = {
        "name": "app",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "app", "version": "1.0.0", "dependencies": {"left-pad": "1"}},
            "node_modules/left-pad": {"version": "1.3.0", "license": "WTFPL\ud800"},
        },
    }
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    sbom = _generated(tmp_path, subject)
    (left_pad,) = [c for c in sbom.components if c.component.name == "left-pad"]
    assert left_pad.component.licenses == ("WTFPL\ufffd",)
    assert sbom.warnings == (
        SbomWarning(
            "package-lock.json",
            "npm-lock entry 'left-pad': lone UTF-16 surrogates replaced with U+FFFD in licence",
        ),
    )
    _servable(sbom)


def test_a_strict_generation_refuses_free_text_it_would_have_to_replace(
    tmp_path: Path, subject: Subject
) -> None:
    with pytest.raises(MalformedInput) as caught:
        _generated(_debian(tmp_path, DPKG_SOURCE_WITH_NUL), subject, strict=True)
    assert caught.value.path == "var/lib/dpkg/status"
    assert "NUL characters replaced with U+FFFD in property gate:deb:source" in caught.value.problem


# --- paths in bom-refs -------------------------------------------------------------------------


def _jar(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _pom(artifact: str, version: str) -> bytes:
    return f"groupId=org.example\nartifactId={artifact}\nversion={version}\n".encode()


def npm_lock_in(directory: Path) -> None:
    shutil.copytree(ASSETS / "npm-v3", directory, dirs_exist_ok=True)


def python_environment_in(directory: Path) -> None:
    site = directory / "lib/python3.12/site-packages"
    for name, version, requires in (
        ("requests", "2.31.0", "Requires-Dist: urllib3\n"),
        ("urllib3", "2.2.1", ""),
    ):
        (site / f"{name}-{version}.dist-info").mkdir(parents=True)
        (site / f"{name}-{version}.dist-info/METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requires}"
        )


def npm_lock_in_a_directory_with_a_newline(root: Path) -> None:
    npm_lock_in(root / "web\napp")


def python_environment_in_a_directory_with_a_newline(root: Path) -> None:
    python_environment_in(root / "venv\n")


def dpkg_status_files_with_a_newline_in_their_names(root: Path) -> None:
    status_d = root / "var/lib/dpkg/status.d"
    status_d.mkdir(parents=True)
    (status_d / "libc\n6").write_text("Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\n")
    (status_d / "zlib\n1g").write_text(
        "Package: zlib1g\nVersion: 1:1.2.13\nArchitecture: amd64\nDepends: libc6 (>= 2.14)\n"
    )


def jar_nested_under_a_member_name_with_a_newline(root: Path) -> None:
    inner = _jar({"META-INF/maven/org.example/inner/pom.properties": _pom("inner", "1.0")})
    outer = _jar(
        {
            "META-INF/maven/org.example/app/pom.properties": _pom("app", "2.0"),
            "BOOT-INF/lib/in\nner-1.0.jar": inner,
        }
    )
    (root / "lib").mkdir()
    (root / "lib/app-2.0.jar").write_bytes(outer)


def go_mod_in_a_directory_with_a_tab(root: Path) -> None:
    (root / "cmd\tserver").mkdir()
    (root / "cmd\tserver/go.mod").write_text(
        "module example.com/server\n\ngo 1.22\n\nrequire golang.org/x/text v0.14.0\n"
    )


@pytest.mark.parametrize(
    ("build", "ref", "depends_on"),
    [
        (
            npm_lock_in_a_directory_with_a_newline,
            "pkg:npm/loose-envify@1.4.0#web%0Aapp/package-lock.json",
            "pkg:npm/js-tokens@4.0.0#web%0Aapp/package-lock.json",
        ),
        (
            python_environment_in_a_directory_with_a_newline,
            "pkg:pypi/requests@2.31.0#venv%0A/lib/python3.12/site-packages/requests-2.31.0.dist-info",
            "pkg:pypi/urllib3@2.2.1#venv%0A/lib/python3.12/site-packages/urllib3-2.2.1.dist-info",
        ),
        (
            dpkg_status_files_with_a_newline_in_their_names,
            "pkg:deb/debian/zlib1g@1:1.2.13?arch=amd64#var/lib/dpkg/status.d/zlib%0A1g",
            "pkg:deb/debian/libc6@2.36-9?arch=amd64#var/lib/dpkg/status.d/libc%0A6",
        ),
        (
            jar_nested_under_a_member_name_with_a_newline,
            "pkg:maven/org.example/app@2.0#lib/app-2.0.jar",
            "pkg:maven/org.example/inner@1.0#lib/app-2.0.jar!BOOT-INF/lib/in%0Aner-1.0.jar",
        ),
        (
            go_mod_in_a_directory_with_a_tab,
            "pkg:golang/example.com/server#cmd%09server/go.mod",
            "pkg:golang/golang.org/x/text@v0.14.0#cmd%09server/go.mod",
        ),
    ],
    ids=["npm-lock", "python-installed", "dpkg-status.d", "java-nested-jar", "go-mod"],
)
def test_a_control_character_in_a_path_is_percent_encoded_in_bom_refs_and_the_graph_kept(
    tmp_path: Path,
    subject: Subject,
    build: Callable[[Path], None],
    ref: str,
    depends_on: str,
) -> None:
    build(tmp_path)
    sbom = _generated(tmp_path, subject)
    refs = {c.ref for c in sbom.components}
    assert ref in refs
    assert depends_on in sbom.dependencies[ref]  # the edge found by the path survived the encoding
    assert not any(character < " " for r in refs for character in r)
    assert sbom.warnings == ()
    # The location (a property: free text, which may hold a line feed) stays the path as it is.
    assert any(not c.path.isprintable() for c in sbom.components)
    _servable(sbom)


def test_a_path_that_is_not_utf8_keeps_the_dependency_edges_found_by_it(
    tmp_path: Path, subject: Subject
) -> None:
    # The edges were built from the path as the OS gave it, the component's ref from the path
    # shown with U+FFFD: they never met, and the edges were dropped.
    directory = Path(os.fsdecode(bytes(tmp_path) + b"/web\xffapp"))
    npm_lock_in(directory)
    python_environment_in(directory)
    sbom = _generated(tmp_path, subject)
    location = "web\ufffdapp"
    assert sbom.dependencies[f"pkg:npm/loose-envify@1.4.0#{location}/package-lock.json"] == (
        f"pkg:npm/js-tokens@4.0.0#{location}/package-lock.json",
    )
    site = f"{location}/lib/python3.12/site-packages"
    assert sbom.dependencies[f"pkg:pypi/requests@2.31.0#{site}/requests-2.31.0.dist-info"] == (
        f"pkg:pypi/urllib3@2.2.1#{site}/urllib3-2.2.1.dist-info",
    )
    _servable(sbom)


def test_a_percent_that_would_read_as_an_escape_is_encoded_so_two_paths_never_share_a_ref(
    tmp_path: Path, subject: Subject
) -> None:
    for directory in ("a\nb", "a%0Ab"):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "requirements.txt").write_text("six==1.16.0\n")
    sbom = _generated(tmp_path, subject)
    assert sorted(c.ref for c in sbom.components) == [
        "pkg:pypi/six@1.16.0#a%0Ab/requirements.txt",
        "pkg:pypi/six@1.16.0#a%250Ab/requirements.txt",
    ]
    _servable(sbom)


def test_the_location_part_of_a_bom_ref_maps_one_path_to_one_ref() -> None:
    # Every path of up to five characters over the characters that matter.
    refs: dict[str, str] = {}
    for size in range(6):
        for characters in itertools.product("%0aA12F5\n\x1f", repeat=size):
            path = "".join(characters)
            ref = ref_location(path)
            assert refs.setdefault(ref, path) == path
            assert ref.isprintable()


# --- ordinary paths --------------------------------------------------------------------------


def _ref_as_gate_always_wrote_it(sbom: GeneratedSbom) -> dict[str, str]:
    written: dict[str, str] = {}
    for found in sbom.components:
        model = found.component
        head = model.purl or (f"{model.name}@{model.version}" if model.version else model.name)
        written[found.ref] = f"{head}#{found.path}"
    return written


@pytest.mark.parametrize(
    "asset", sorted(p.name for p in ASSETS.iterdir() if p.is_dir() and p.name != "uploads")
)
def test_bom_refs_of_ordinary_paths_are_unchanged(asset: str, subject: Subject) -> None:
    sbom = generate(ASSETS / asset, subject=subject, timestamp=FIXED_TIME)
    assert sbom.components
    assert all(ref == old for ref, old in _ref_as_gate_always_wrote_it(sbom).items())


def test_bom_refs_of_paths_with_a_percent_sign_or_non_ascii_names_are_unchanged(
    tmp_path: Path, subject: Subject
) -> None:
    for directory in ("100%", "a%2Fb", "caf\u00e9 \u00a0app", "%zz"):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "requirements.txt").write_text("six==1.16.0\n")
    sbom = _generated(tmp_path, subject)
    assert sorted(c.ref for c in sbom.components) == [
        "pkg:pypi/six@1.16.0#%zz/requirements.txt",
        "pkg:pypi/six@1.16.0#100%/requirements.txt",
        "pkg:pypi/six@1.16.0#a%2Fb/requirements.txt",
        "pkg:pypi/six@1.16.0#caf\u00e9 \u00a0app/requirements.txt",
    ]
    _servable(sbom)


def test_bom_refs_of_a_debian_root_filesystem_are_unchanged(subject: Subject) -> None:
    sbom = generate(ASSETS / "rootfs-debian", subject=subject, timestamp=FIXED_TIME)
    refs = {c.component.name: c.ref for c in sbom.components}
    zlib = "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12#var/lib/dpkg/status"
    assert refs["zlib1g"] == zlib
    assert refs["debian"] == "debian@12#etc/os-release"

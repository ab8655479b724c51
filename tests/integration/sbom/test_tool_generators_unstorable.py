"""The trivy and syft generators, run for real, skip an entry gate cannot store and keep the rest.

Both tools copy a NUL from the scanned metadata into their documents (syft from a dpkg status
paragraph, both from a package-lock.json entry). gate refused the whole generated document for
it; now the entry is skipped with a warning, as the native generator skips it, and the SBOM is
stored on every backend. Image names read from an archive are checked on this path as well.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from gate.cli import main
from gate.core import ArtifactSelector, Gate
from gate.model import ArtifactKind, SbomFormat, ScanTarget, TargetKind
from gate.sbom import Subject
from gate.sbom._generators import GeneratorRequest, SbomTarget, load_generator
from gate.store import EvidenceStore
from tests.integration.store.conftest import backend, store, store_url  # noqa: F401
from tests.unit.sbom.conftest import ASSETS
from tests.unit.sbom.layers import docker_archive, tree_layer
from tests.unit.sbom.schema import rs_errors

SUBJECT = Subject("github.com/example/project", "git:" + "a" * 40, ArtifactKind.SOURCE)
DIGEST = "sha256:" + "7" * 64
NPM_LOCK_WITH_NUL = ASSETS.parent / "sbom-generation" / "npm-lock-entry-with-nul"
NUL = "got a NUL character (\\u0000), expected text without NUL"


def debian_rootfs_with_a_nul_in_a_package_name(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    shutil.copytree(ASSETS / "rootfs-debian", root)
    (root / "etc" / "debian_version").write_text("12.15\n")  # Trivy needs it to recognise Debian
    with (root / "var/lib/dpkg/status").open("a") as status:
        status.write(
            "\nPackage: lib\0bad1\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.0-1\n"
        )
    return root


def npm_project_with_a_nul_in_a_lock_entry(tmp_path: Path) -> Path:
    return Path(shutil.copytree(NPM_LOCK_WITH_NUL, tmp_path / "project"))


@pytest.mark.parametrize(
    ("tool", "kind", "make_target", "skipped", "kept"),
    [
        ("syft", TargetKind.ROOTFS, debian_rootfs_with_a_nul_in_a_package_name, "lib\\x00bad1", "bash"),
        ("syft", TargetKind.FILESYSTEM, npm_project_with_a_nul_in_a_lock_entry, "le\\x00ft", "left-pad"),
        ("trivy", TargetKind.FILESYSTEM, npm_project_with_a_nul_in_a_lock_entry, "le\\x00ft", "left-pad"),
    ],
    ids=["syft-dpkg", "syft-npm-lock", "trivy-npm-lock"],
)
def test_a_tool_entry_with_a_nul_in_its_name_is_skipped_and_the_rest_kept(
    tmp_path: Path,
    tool: str,
    kind: TargetKind,
    make_target: Callable[[Path], Path],
    skipped: str,
    kept: str,
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    target = SbomTarget(kind, path=make_target(tmp_path))
    request = GeneratorRequest(target, SUBJECT, SbomFormat.CYCLONEDX_JSON, workdir)
    output = load_generator(tool, {}).generate(request)
    names = {c.name for c in output.components}
    assert kept in names
    assert not any("\0" in name for name in names)
    (warning,) = output.warnings
    assert warning.message.startswith(f"{tool} component '{skipped}' (bom-ref ")
    assert warning.message.endswith(f"skipped: name: {NUL}")
    assert rs_errors(output.document) == []
    assert b"\\u0000" not in output.document


def test_the_cli_prints_what_trivy_output_lost_and_writes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    project = npm_project_with_a_nul_in_a_lock_entry(tmp_path)
    written = tmp_path / "sbom.json"
    arguments = ["sbom", "generate", str(project), "--artifact", DIGEST, "--generator", "trivy"]
    code = main([*arguments, "--output", str(written)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (
        "gate: warning: components/1: trivy component 'le\\x00ft' (bom-ref 'pkg:npm/le%00ft@1.0.0') " in err
    )
    document = json.loads(written.read_text())
    assert {c["name"] for c in document["components"]} >= {"left-pad"}
    assert all("%00" not in ref for entry in document["dependencies"] for ref in entry.get("dependsOn", []))


def test_a_syft_sbom_of_a_root_filesystem_with_a_nul_in_a_package_name_is_stored_on_every_backend(
    store: EvidenceStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    root = debian_rootfs_with_a_nul_in_a_package_name(tmp_path)
    gate = Gate(store, local_root=tmp_path)
    warnings: list[str] = []
    sbom = gate.generate_sbom(
        ArtifactSelector(digest=DIGEST),
        ScanTarget(TargetKind.ROOTFS, str(root)),
        fmt=SbomFormat.CYCLONEDX_JSON,
        generator="syft",
        warn=warnings.append,
    )
    assert sbom.generator.startswith("syft ")
    names = {c.name for c in store.sbom_components(sbom.id)}
    assert {"bash", "libc6", "zlib1g"} <= names
    assert not any("bad1" in name for name in names)
    (warning,) = warnings
    assert "syft component 'lib\\x00bad1'" in warning
    assert warning.endswith(f"skipped: name: {NUL}")
    # Stored, and readable in every format GetSbom converts to.
    for fmt in SbomFormat:
        _, document = gate.get_sbom(sbom.id, include_document=True, fmt=fmt)
        assert document is not None
        assert b"bad1" not in document


def test_an_image_name_from_a_hostile_archive_is_skipped_on_the_tool_path_too(
    store: EvidenceStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    root = tmp_path / "rootfs"
    shutil.copytree(ASSETS / "rootfs-debian", root)
    (root / "etc" / "debian_version").write_text("12.15\n")
    archive = tmp_path / "app.tar"
    digest = docker_archive(archive, [tree_layer(root)], ["\x1b[2Jregistry.example/app:1.0", "ev\0il:1"])
    gate = Gate(store, local_root=tmp_path)
    warnings: list[str] = []
    sbom = gate.generate_sbom(
        None,
        ScanTarget(TargetKind.IMAGE, f"docker-archive:{archive}"),
        fmt=SbomFormat.CYCLONEDX_JSON,
        generator="trivy",
        warn=warnings.append,
    )
    assert sbom.artifact_digest == digest
    assert warnings[:2] == [
        "app.tar: manifest.json[0].RepoTags[0]: expected an image reference, "
        "got '\\x1b[2Jregistry.example/app:1.0'; not used to name the image",
        "app.tar: manifest.json[0].RepoTags[1]: expected an image reference, got 'ev\\x00il:1'; "
        "not used to name the image",
    ]
    _, document = gate.get_sbom(sbom.id, include_document=True)
    assert document is not None
    subject = json.loads(document)["metadata"]["component"]
    assert (subject["name"], subject["version"]) == ("app", digest)  # named after the file
    artifact = store.get_artifact(digest)
    assert artifact is not None
    assert artifact.name == "app"

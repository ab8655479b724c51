"""Generated SBOMs skip an entry holding a NUL or a control character, keeping the rest.

Package databases, lock files and metadata are read from disk as they are. A NUL in one
entry used to reach the store, where PostgreSQL refused the whole SBOM (SQLite kept it);
like syft and Trivy, gate now drops the unparseable entry with a warning naming the file
and the field, and the image's SBOM keeps every other component.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from gate.sbom import GeneratedSbom, MalformedInput, SbomWarning, Subject, generate
from tests.unit.sbom.conftest import FIXED_TIME

# A package-lock.json whose second dependency's name holds a NUL (shared with the integration test).
NPM_LOCK_WITH_NUL = Path(__file__).resolve().parents[2] / "assets/sbom-generation/npm-lock-entry-with-nul"
NUL = "got a NUL character (\\u0000), expected text without NUL"


def _paragraph(name: str, version: str) -> str:
    return f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n"


def _debian(root: Path, *paragraphs: str) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nNAME="Debian GNU/Linux"\n')
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("\n".join(paragraphs))
    return root


def _dist_info(site: Path, directory: str, name: str, version: str) -> None:
    (site / directory).mkdir(parents=True)
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    (site / directory / "METADATA").write_text(metadata)


def _generate(root: Path, subject: Subject, *, strict: bool = False) -> GeneratedSbom:
    return generate(root, subject=subject, timestamp=FIXED_TIME, strict=strict)


def _names(sbom: GeneratedSbom, found_by: str) -> set[str]:
    return {c.component.name for c in sbom.components if c.found_by == found_by}


def test_a_dpkg_entry_with_a_nul_in_its_version_is_skipped_and_the_rest_kept(
    tmp_path: Path, subject: Subject
) -> None:
    root = _debian(tmp_path, _paragraph("zlib1g", "1:1.2.13"), _paragraph("libbad1", "2.0\0-1"))
    sbom = _generate(root, subject)
    assert _names(sbom, "dpkg") == {"zlib1g"}
    assert sbom.warnings == (
        SbomWarning("var/lib/dpkg/status", f"dpkg entry 'libbad1' skipped: version: {NUL}"),
    )
    assert "\0" not in sbom.to_cyclonedx_json().decode()


def test_a_python_distribution_with_a_control_character_in_its_name_is_skipped(
    tmp_path: Path, subject: Subject
) -> None:
    site = tmp_path / "lib/python3.12/site-packages"
    _dist_info(site, "requests-2.31.0.dist-info", "requests", "2.31.0")
    _dist_info(site, "evil-1.0.dist-info", "ev\x1bil", "1.0")
    sbom = _generate(tmp_path, subject)
    assert _names(sbom, "python-installed") == {"requests"}
    assert sbom.warnings == (
        SbomWarning(
            "lib/python3.12/site-packages/evil-1.0.dist-info",
            "python-installed entry 'ev\\x1bil' skipped: name: got a control character (\\u001b), "
            "expected an identifier without control characters",
        ),
    )
    # Converting to XML would fail on an ESC; the skipped entry leaves nothing to fail on.
    assert b"evil" not in sbom.to_cyclonedx_xml()


def test_an_npm_lock_entry_with_a_nul_in_its_name_is_skipped_and_the_rest_kept(
    tmp_path: Path, subject: Subject
) -> None:
    shutil.copytree(NPM_LOCK_WITH_NUL, tmp_path, dirs_exist_ok=True)
    sbom = _generate(tmp_path, subject)
    assert _names(sbom, "npm-lock") == {"app", "left-pad"}
    assert sbom.warnings == (
        SbomWarning("package-lock.json", f"npm-lock entry 'le\\x00ft' skipped: name: {NUL}"),
    )


def test_skipped_entries_are_logged_once_per_sbom(
    tmp_path: Path, subject: Subject, caplog: pytest.LogCaptureFixture
) -> None:
    root = _debian(
        tmp_path, *(_paragraph(f"libbad{i}", f"{i}\0") for i in range(3)), _paragraph("zlib1g", "1")
    )
    with caplog.at_level(logging.WARNING, logger="gate.sbom"):
        _generate(root, subject)
    (record,) = [r for r in caplog.records if r.name == "gate.sbom"]
    assert "3 component(s) skipped" in record.getMessage()
    assert "\0" not in record.getMessage()


def test_a_strict_generation_refuses_the_entry_instead(tmp_path: Path, subject: Subject) -> None:
    root = _debian(tmp_path, _paragraph("zlib1g", "1:1.2.13\x01"))
    with pytest.raises(MalformedInput) as caught:
        _generate(root, subject, strict=True)
    assert caught.value.path == "var/lib/dpkg/status"
    assert "version: got a control character (\\u0001)" in caught.value.problem

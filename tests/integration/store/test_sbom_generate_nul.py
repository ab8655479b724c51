"""A generated SBOM whose package database holds a NUL is stored on both backends, without the entry.

Before, the native generator passed the NUL to the store: SQLite kept it and PostgreSQL failed
with StoreUnavailable, so the image had no SBOM at all on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from gate.core import ArtifactSelector, Gate
from gate.model import SbomFormat, ScanTarget, TargetKind
from gate.store import EvidenceStore

DIGEST = "sha256:" + "7" * 64


def _debian_root(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nNAME="Debian GNU/Linux"\n')
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\n\n"
        "Package: libbad1\nStatus: install ok installed\nVersion: 2.0\0-1\n"
    )
    return root


def test_a_generated_sbom_with_a_nul_in_a_dpkg_entry_is_stored_without_it_on_every_backend(
    store: EvidenceStore, tmp_path: Path
) -> None:
    root = _debian_root(tmp_path / "rootfs")
    gate = Gate(store, local_root=tmp_path)
    sbom = gate.generate_sbom(
        ArtifactSelector(digest=DIGEST),
        ScanTarget(TargetKind.ROOTFS, str(root)),
        fmt=SbomFormat.CYCLONEDX_JSON,
        generator="native",
    )
    names = {c.name for c in store.sbom_components(sbom.id)}
    assert "zlib1g" in names
    assert "libbad1" not in names
    _, document = gate.get_sbom(sbom.id, include_document=True)
    assert document is not None
    assert b"libbad1" not in document

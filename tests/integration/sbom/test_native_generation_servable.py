"""A natively generated SBOM, stored on every backend, is served by GetSbom in every format.

GetSbom converts a stored document by reading it again with the strict upload parser. A NUL in
a dpkg ``Source:`` field (written into a property as ``\\u0000``) and a line feed in a path
(written into bom-refs) made that read fail, so the stored SBOM could be fetched only as it was
stored. Both are now made storable at generation: the text gets U+FFFD with a warning, and the
path part of each bom-ref is percent-encoded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gate.core import ArtifactSelector, Gate
from gate.model import SbomFormat, ScanTarget, TargetKind
from gate.sbom._ingest import parse
from gate.store import EvidenceStore
from tests.integration.store.conftest import backend, store, store_url  # noqa: F401
from tests.unit.sbom.conftest import ASSETS
from tests.unit.sbom.layers import docker_archive, tree_layer

DIGEST = "sha256:" + "7" * 64
NPM_REF = "pkg:npm/loose-envify@1.4.0#srv/web%0Aapp/package-lock.json"
PYTHON_REF = "pkg:pypi/requests@2.31.0#opt/venv%0A/lib/python3.12/site-packages/requests-2.31.0.dist-info"
REPLACED = (
    "var/lib/dpkg/status: dpkg entry 'libnul1': NUL characters replaced with U+FFFD "
    "in property gate:deb:source"
)


def debian_rootfs_with_a_nul_in_a_source_field_and_a_line_feed_in_paths(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    shutil.copytree(ASSETS / "rootfs-debian", root)
    with (root / "var/lib/dpkg/status").open("a") as status:
        status.write(
            "\nPackage: libnul1\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n"
            "Source: nul\0src (1.0-1)\n"
        )
    shutil.copytree(ASSETS / "npm-v3", root / "srv/web\napp")
    dist_info = root / "opt/venv\n/lib/python3.12/site-packages/requests-2.31.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n")
    return root


def _generate(gate: Gate, tmp_path: Path, kind: TargetKind, fmt: SbomFormat) -> tuple[str, list[str]]:
    root = debian_rootfs_with_a_nul_in_a_source_field_and_a_line_feed_in_paths(tmp_path)
    selector: ArtifactSelector | None = ArtifactSelector(digest=DIGEST)
    target = ScanTarget(TargetKind.ROOTFS, str(root))
    if kind is TargetKind.IMAGE:
        archive = tmp_path / "app.tar"
        docker_archive(archive, [tree_layer(root)], ["registry.example/app:1.0"])
        selector, target = None, ScanTarget(TargetKind.IMAGE, f"docker-archive:{archive}")
    warnings: list[str] = []
    sbom = gate.generate_sbom(selector, target, fmt=fmt, generator="native", warn=warnings.append)
    assert sbom.format is fmt
    return sbom.id, warnings


@pytest.mark.parametrize("stored", [SbomFormat.CYCLONEDX_JSON, SbomFormat.CYCLONEDX_XML], ids=["json", "xml"])
@pytest.mark.parametrize("kind", [TargetKind.ROOTFS, TargetKind.IMAGE], ids=["rootfs", "image"])
def test_a_native_sbom_with_a_nul_in_free_text_and_line_feeds_in_paths_is_served_in_every_format(
    store: EvidenceStore,  # noqa: F811
    tmp_path: Path,
    kind: TargetKind,
    stored: SbomFormat,
) -> None:
    gate = Gate(store, local_root=tmp_path)
    sbom_id, warnings = _generate(gate, tmp_path, kind, stored)
    assert REPLACED in warnings
    names = {c.name for c in store.sbom_components(sbom_id)}
    assert {"libnul1", "zlib1g", "loose-envify", "requests"} <= names
    _, document = gate.get_sbom(sbom_id, include_document=True)
    assert document is not None
    # What generation stored passes the upload parser, schema check included.
    refs = {c.ref for c in parse(document, stored).components}
    assert {NPM_REF, PYTHON_REF} <= refs
    for fmt in SbomFormat:
        _, served = gate.get_sbom(sbom_id, include_document=True, fmt=fmt)
        assert served is not None
        parsed = parse(served, fmt)
        assert {"libnul1", "loose-envify", "requests"} <= {c.component.name for c in parsed.components}
        if fmt is not SbomFormat.SPDX_JSON:  # SPDX ids are gate's own, not the refs
            assert {NPM_REF, PYTHON_REF} <= {c.ref for c in parsed.components}


def test_the_served_json_keeps_the_replaced_text_and_the_location_as_found(
    store: EvidenceStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    gate = Gate(store, local_root=tmp_path)
    sbom_id, _ = _generate(gate, tmp_path, TargetKind.ROOTFS, SbomFormat.CYCLONEDX_JSON)
    _, document = gate.get_sbom(sbom_id, include_document=True)
    assert document is not None
    components = {c["bom-ref"]: c for c in json.loads(document)["components"]}
    libnul = next(c for c in components.values() if c["name"] == "libnul1")
    assert {"name": "gate:deb:source", "value": "nul\ufffdsrc"} in libnul["properties"]
    location = {"name": "gate:location", "value": "srv/web\napp/package-lock.json"}
    assert location in components[NPM_REF]["properties"]

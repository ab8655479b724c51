"""Both conformance corpora agree case by case, through the standalone harnesses."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from gate.signatures import load_private_key, make_statement, sign_dsse, sign_simple_signing
from gate.signatures.conformance import run_cosign, run_sigstore
from gate.signatures.conformance._report import load_known_gaps

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT / ".." / "shared" / "conformance"
ASSETS = ROOT / "tests" / "assets" / "signatures"
COSIGN_CASES, SIGSTORE_CASES = 44, 56


def _harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gate.signatures.conformance", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_cosign_corpus_agrees_on_every_case() -> None:
    assert (SHARED / "cosign" / "cases").is_dir(), "the shared cosign corpus is missing"
    report = run_cosign(SHARED / "cosign").with_gaps(load_known_gaps(ASSETS / "known_gaps_cosign.yaml"))
    assert len(report.results) == COSIGN_CASES
    assert [line for line in report.lines() if line.startswith("FAIL")] == []
    assert (report.passed, report.failed) == (COSIGN_CASES, 0)


def test_sigstore_corpus_agrees_on_every_case_with_bytes_and_digest() -> None:
    assert (SHARED / "sigstore" / "test").is_dir(), "the shared sigstore corpus is missing"
    report = run_sigstore(SHARED / "sigstore").with_gaps(load_known_gaps(ASSETS / "known_gaps_sigstore.yaml"))
    assert len(report.results) == SIGSTORE_CASES
    assert [line for line in report.lines() if line.startswith("FAIL")] == []
    assert (report.passed, report.failed) == (SIGSTORE_CASES, 0)


def test_harness_commands_print_the_summary_and_exit_zero() -> None:
    cosign = _harness(
        "cosign", str(SHARED / "cosign" / "cases"), "--known-gaps", str(ASSETS / "known_gaps_cosign.yaml")
    )
    assert (cosign.returncode, cosign.stdout) == (0, f"{COSIGN_CASES} passed, 0 failed\n"), cosign.stderr
    sigstore = _harness(
        "sigstore",
        str(SHARED / "sigstore" / "test" / "assets" / "bundle-verify"),
        "--known-gaps",
        str(ASSETS / "known_gaps_sigstore.yaml"),
    )
    assert (sigstore.returncode, sigstore.stdout) == (0, f"{SIGSTORE_CASES} passed, 0 failed\n"), (
        sigstore.stderr
    )


def test_a_disagreeing_case_and_a_known_gap_both_count_as_failed(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    shutil.copytree(SHARED / "cosign" / "cases" / "ci-key-simplesigning-valid", cases / "flipped")
    shutil.copytree(SHARED / "cosign" / "cases" / "ci-key-simplesigning-wrong-key_fail", cases / "gap")
    case = json.loads((cases / "flipped" / "case.json").read_text())
    case["expect"] = "fail"
    (cases / "flipped" / "case.json").write_text(json.dumps(case))
    gaps = tmp_path / "gaps.yaml"
    gaps.write_text("gap: not implemented here\n")
    result = _harness("cosign", str(cases), "--known-gaps", str(gaps))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "FAIL flipped (expected fail): verified",
        "FAIL gap (expected fail): known gap: not implemented here",
        "0 passed, 2 failed",
    ]


def test_harness_refuses_an_empty_directory(tmp_path: Path) -> None:
    result = _harness("sigstore", str(tmp_path))
    assert result.returncode == 2
    assert "no cases found" in result.stderr


def _key_pem(tmp_path: Path) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, public


def test_what_gate_signs_verifies_through_the_cosign_harness(tmp_path: Path) -> None:
    private_pem, public_pem = _key_pem(tmp_path)
    key = load_private_key(private_pem, b"pw")
    manifest = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()

    image_case = tmp_path / "cases" / "gate-signed-image"
    image_case.mkdir(parents=True)
    payload, signature = sign_simple_signing("registry.example/team/app:1.0", digest, key)
    layer = {
        "mimeType": "application/vnd.dev.cosign.simplesigning.v1+json",
        "payload": base64.b64encode(payload).decode(),
        "annotations": {"dev.cosignproject.cosign/signature": signature},
    }
    (image_case / "signature-1").write_bytes(b"\x00sigstore-json\n" + json.dumps(layer).encode())
    (image_case / "manifest.json").write_bytes(manifest)
    (image_case / "key.pub").write_bytes(public_pem)
    (image_case / "case.json").write_text(
        json.dumps(
            {
                "kind": "oci-simplesigning",
                "expect": "pass",
                "policy": {
                    "mode": "key",
                    "keys": ["key.pub"],
                    "require_tlog": False,
                    "reference": "registry.example/team/app",
                    "reference_match": "exact",
                },
                "image_digest_from": "manifest.json",
            }
        )
    )

    attestation_case = tmp_path / "cases" / "gate-attested-sbom"
    attestation_case.mkdir()
    sbom = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
    (attestation_case / "artifact").write_bytes(sbom)
    statement = make_statement(
        {"registry.example/team/app": "sha256:" + hashlib.sha256(sbom).hexdigest()},
        "https://cyclonedx.org/bom",
        json.loads(sbom),
    )
    (attestation_case / "envelope.json").write_bytes(
        sign_dsse(statement, "application/vnd.in-toto+json", key)
    )
    (attestation_case / "cosign.pub").write_bytes(public_pem)
    (attestation_case / "case.json").write_text(
        json.dumps(
            {
                "kind": "dsse-key",
                "expect": "pass",
                "policy": {"key": "cosign.pub", "predicate_type_uri": "https://cyclonedx.org/bom"},
            }
        )
    )
    report = run_cosign(tmp_path / "cases")
    assert [(r.name, r.agrees, r.reason) for r in report.results] == [
        ("gate-attested-sbom", True, ""),
        ("gate-signed-image", True, ""),
    ]

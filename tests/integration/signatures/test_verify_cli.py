"""``gate verify blob``: exit 0 with the signer, 1 with the reason, 2 for usage errors."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gate.cli import main

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "conformance"
CASES = SHARED / "sigstore" / "test" / "assets" / "bundle-verify"
ROOT_JSON = SHARED / "sigstore" / "trust" / "production-trusted_root.json"
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["verify", "blob", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _keyless(*extra: str | Path) -> list[str | Path]:
    return [
        "--trusted-root",
        ROOT_JSON,
        "--certificate-identity",
        BEACON,
        "--certificate-oidc-issuer",
        ISSUER,
        *extra,
    ]


def test_bundle_verifies_with_the_file_and_with_its_digest(capsys: pytest.CaptureFixture[str]) -> None:
    bundle = CASES / "happy-path-v0.3" / "bundle.sigstore.json"
    code, out, err = run(capsys, CASES / "a.txt", "--bundle", bundle, *_keyless())
    assert (code, err) == (0, "")
    assert out.startswith(f"Verified OK: {CASES / 'a.txt'} (signer {BEACON}, issuer {ISSUER}, tlog index ")
    digest = "sha256:" + hashlib.sha256((CASES / "a.txt").read_bytes()).hexdigest()
    code, out, _ = run(capsys, digest, "--bundle", bundle, *_keyless())
    assert code == 0
    assert out.startswith(f"Verified OK: {digest} (")


def test_regexp_identity_and_managed_key(capsys: pytest.CaptureFixture[str]) -> None:
    bundle = CASES / "happy-path-v0.3" / "bundle.sigstore.json"
    code, _, err = run(
        capsys,
        CASES / "a.txt",
        "--bundle",
        bundle,
        "--trusted-root",
        ROOT_JSON,
        "--certificate-identity-regexp",
        "https://github.com/sigstore-conformance/.*",
        "--certificate-oidc-issuer-regexp",
        "https://token\\.actions\\..*",
    )
    assert (code, err) == (0, "")
    managed = CASES / "managed-key-happy-path"
    code, out, _ = run(
        capsys,
        CASES / "a.txt",
        "--bundle",
        managed / "bundle.sigstore.json",
        "--key",
        managed / "key.pub",
        "--trusted-root",
        ROOT_JSON,
    )
    assert code == 0
    assert "signer sha256:" in out


def test_failures_exit_1_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    bundle = CASES / "signature-mismatch_fail" / "bundle.sigstore.json"
    code, out, err = run(capsys, CASES / "a.txt", "--bundle", bundle, *_keyless())
    assert (code, out) == (1, "")
    reason = "bundle: VerificationError: Signature is invalid for input"
    assert err == f"gate: error: {CASES / 'a.txt'}: verification failed: {reason}\n"
    code, _, err = run(
        capsys,
        CASES / "a.txt",
        "--bundle",
        CASES / "happy-path-v0.3" / "bundle.sigstore.json",
        "--trusted-root",
        ROOT_JSON,
        "--certificate-identity",
        "someone@example.com",
        "--certificate-oidc-issuer",
        ISSUER,
    )
    assert code == 1
    assert "does not match expected 'someone@example.com'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--signature", "x", "--bundle", "y", "--key", "k"], "exactly one of --bundle and --signature"),
        (["--bundle", "y"], "give --key, or --certificate-identity"),
        (["--bundle", "y", "--certificate-identity", "a@b"], "--certificate-oidc-issuer"),
        (
            ["--bundle", "y", "--certificate-oidc-issuer", ISSUER],
            "--certificate-identity or --certificate-identity-regexp",
        ),
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = run(capsys, CASES / "a.txt", *args)
    assert code == 2
    assert message in err


def test_bad_digest_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sha256:1234", "--bundle", "b", "--key", "k")
    assert code == 2
    assert "expected sha256:<64 hex>" in err


def test_detached_signature_with_a_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = tmp_path / "key.pub"
    key.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(b"release tarball")
    signature = tmp_path / "artifact.sig"
    signature.write_bytes(base64.b64encode(private.sign(b"release tarball", ec.ECDSA(hashes.SHA256()))))
    code, out, _ = run(capsys, artifact, "--signature", signature, "--key", key)
    assert code == 0
    assert out.startswith(f"Verified OK: {artifact} (signer sha256:")
    digest = "sha256:" + hashlib.sha256(b"release tarball").hexdigest()
    assert run(capsys, digest, "--signature", signature, "--key", key)[0] == 0
    artifact.write_bytes(b"tampered tarball")
    code, _, err = run(capsys, artifact, "--signature", signature, "--key", key)
    assert code == 1
    assert "no trusted key verifies the signature" in err
    code, _, err = run(capsys, artifact, "--signature", signature, "--key", key, "--require-tlog")
    assert code == 1


def test_legacy_blob_bundle_is_read(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "key.pub").write_bytes(public_pem)
    (tmp_path / "blob").write_bytes(b"blob")
    signature = private.sign(b"blob", ec.ECDSA(hashes.SHA256()))
    legacy = {
        "base64Signature": base64.b64encode(signature).decode(),
        "cert": base64.b64encode(public_pem).decode(),
    }
    (tmp_path / "bundle.json").write_text(json.dumps(legacy))
    code, _, err = run(
        capsys, tmp_path / "blob", "--bundle", tmp_path / "bundle.json", "--key", tmp_path / "key.pub"
    )
    assert (code, err) == (0, "")
    code, _, err = run(
        capsys,
        tmp_path / "blob",
        "--bundle",
        tmp_path / "bundle.json",
        "--key",
        tmp_path / "key.pub",
        "--require-tlog",
    )
    assert code == 1
    assert "the policy requires a transparency-log entry" in err


def test_unparsable_key_regexp_or_trusted_root_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad_key = tmp_path / "bad.pub"
    bad_key.write_bytes(b"not a key")
    code, _, err = run(capsys, CASES / "a.txt", "--bundle", "b", "--key", bad_key)
    assert code == 2
    assert "key: not a PEM or DER public key" in err
    code, _, err = run(
        capsys,
        CASES / "a.txt",
        "--bundle",
        "b",
        "--certificate-identity-regexp",
        "(",
        "--certificate-oidc-issuer",
        ISSUER,
    )
    assert code == 2
    assert "not a valid RE2 regular expression" in err
    bad_root = tmp_path / "root.json"
    bad_root.write_text("{}")
    code, _, err = run(
        capsys,
        CASES / "a.txt",
        "--bundle",
        "b",
        "--key",
        CASES / "managed-key-happy-path" / "key.pub",
        "--trusted-root",
        bad_root,
    )
    assert code == 2
    assert "trust material: trusted_root: " in err

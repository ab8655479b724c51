"""Sigstore bundles: real corpus bundles verify; each corrupted field makes them fail."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from gate.errors import InvalidArgument
from gate.signatures import Identity, SignaturePolicy, TrustRoot, load_public_key, verify_bundle
from tests.unit.signatures.support import signing_key

SIGSTORE = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "sigstore"
CASES = SIGSTORE / "test" / "assets" / "bundle-verify"
ARTIFACT = (CASES / "a.txt").read_bytes()
DIGEST = "sha256:" + hashlib.sha256(ARTIFACT).hexdigest()
BEACON = Identity(
    subject="https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
    issuer="https://token.actions.githubusercontent.com",
)
POLICY = SignaturePolicy(identities=(BEACON,))


@pytest.fixture(scope="module")
def production() -> TrustRoot:
    return TrustRoot.from_trusted_root_json(
        (SIGSTORE / "trust" / "production-trusted_root.json").read_bytes()
    )


def _bundle(case: str) -> dict[str, Any]:
    return json.loads((CASES / case / "bundle.sigstore.json").read_bytes())


def _bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def _flip(text: str, index: int = 20) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_happy_bundle_verifies_with_bytes_and_with_digest_only(production: TrustRoot) -> None:
    raw = _bytes(_bundle("happy-path-v0.3"))
    by_bytes = verify_bundle(raw, policy=POLICY, trust=production, artifact=ARTIFACT)
    by_digest = verify_bundle(raw, policy=POLICY, trust=production, digest=DIGEST)
    assert by_bytes.verified, by_bytes.reason
    assert by_bytes == by_digest
    assert by_bytes.signer == BEACON.subject
    assert by_bytes.issuer == BEACON.issuer
    assert by_bytes.tlog_index is not None


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda b: b["messageSignature"].update(signature=_flip(b["messageSignature"]["signature"])),
            "Signature is invalid",
        ),
        (
            lambda b: b["verificationMaterial"]["certificate"].update(
                rawBytes=_flip(b["verificationMaterial"]["certificate"]["rawBytes"], 300)
            ),
            "bundle: ",
        ),
        (
            lambda b: b["verificationMaterial"]["tlogEntries"][0].update(
                canonicalizedBody=_flip(b["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"], 50)
            ),
            "bundle: ",
        ),
        (lambda b: b["verificationMaterial"].update(tlogEntries=[]), "expected exactly one log entry"),
        (
            lambda b: b.update(mediaType="application/vnd.dev.sigstore.bundle+json;version=9"),
            "bundle: InvalidBundle",
        ),
        (
            lambda b: b["verificationMaterial"]["tlogEntries"][0].update(integratedTime="1"),
            "bundle: ",
        ),
    ],
    ids=["signature", "certificate", "log-body", "no-log-entry", "media-type", "integrated-time"],
)
def test_each_corrupted_field_fails(production: TrustRoot, mutate: Any, reason: str) -> None:
    document = _bundle("happy-path-v0.3")
    mutate(document)
    for result in (
        verify_bundle(_bytes(document), policy=POLICY, trust=production, artifact=ARTIFACT),
        verify_bundle(_bytes(document), policy=POLICY, trust=production, digest=DIGEST),
    ):
        assert not result.verified
        assert reason in result.reason


def test_other_artifact_and_other_identity_fail(production: TrustRoot) -> None:
    raw = _bytes(_bundle("happy-path-v0.3"))
    assert not verify_bundle(raw, policy=POLICY, trust=production, artifact=b"other").verified
    assert not verify_bundle(raw, policy=POLICY, trust=production, digest="sha256:" + "00" * 32).verified
    stranger = SignaturePolicy(identities=(Identity(subject="someone@example.com"),))
    result = verify_bundle(raw, policy=stranger, trust=production, artifact=ARTIFACT)
    assert "does not match expected 'someone@example.com'" in result.reason
    regexp = SignaturePolicy(
        identities=(
            Identity(subject_regexp="https://github.com/sigstore-conformance/.*", issuer_regexp=".*"),
        )
    )
    assert verify_bundle(raw, policy=regexp, trust=production, artifact=ARTIFACT).verified


def test_dsse_bundle_checks_subject_and_predicate_type(production: TrustRoot) -> None:
    raw = _bytes(_bundle("happy-path-intoto-in-dsse-v3"))
    good = verify_bundle(
        raw, policy=POLICY, trust=production, digest=DIGEST, predicate_type="https://slsa.dev/provenance/v1"
    )
    assert good.verified, good.reason
    assert isinstance(good.predicate, dict)
    wrong_type = verify_bundle(
        raw, policy=POLICY, trust=production, digest=DIGEST, predicate_type="https://slsa.dev/provenance/v0.2"
    )
    assert wrong_type.reason.startswith("statement.predicateType: got 'https://slsa.dev/provenance/v1'")
    wrong_subject = verify_bundle(raw, policy=POLICY, trust=production, artifact=b"another artifact")
    assert wrong_subject.reason.startswith("statement.subject: no subject has sha256 digest")


def test_blob_bundle_cannot_satisfy_a_predicate_type(production: TrustRoot) -> None:
    result = verify_bundle(
        _bytes(_bundle("happy-path-v0.3")),
        policy=POLICY,
        trust=production,
        artifact=ARTIFACT,
        predicate_type="x",
    )
    assert result.reason == "bundle: signs a blob, not an attestation with a predicate type"


def test_managed_key_bundle_needs_the_right_key(production: TrustRoot) -> None:
    raw = (CASES / "managed-key-happy-path" / "bundle.sigstore.json").read_bytes()
    key = load_public_key((CASES / "managed-key-happy-path" / "key.pub").read_bytes())
    good = verify_bundle(raw, policy=SignaturePolicy(keys=(key,)), trust=production, digest=DIGEST)
    assert good.verified, good.reason
    assert good.signer == key.fingerprint
    wrong = verify_bundle(
        raw, policy=SignaturePolicy(keys=(signing_key().public,)), trust=production, artifact=ARTIFACT
    )
    assert wrong.reason.startswith("bundle.messageSignature: no trusted key verifies the signature")
    other = verify_bundle(raw, policy=SignaturePolicy(keys=(key,)), trust=production, artifact=b"other")
    assert not other.verified
    keyless = verify_bundle(
        _bytes(_bundle("happy-path-v0.3")),
        policy=SignaturePolicy(keys=(key,)),
        trust=production,
        artifact=ARTIFACT,
    )
    assert keyless.reason == "bundle: has no public key hint: signed with a certificate, not a key"


def test_managed_key_bundle_with_a_tampered_log_entry_fails(production: TrustRoot) -> None:
    document = json.loads((CASES / "managed-key-happy-path" / "bundle.sigstore.json").read_bytes())
    entry = document["verificationMaterial"]["tlogEntries"][0]
    entry["inclusionPromise"]["signedEntryTimestamp"] = _flip(
        entry["inclusionPromise"]["signedEntryTimestamp"]
    )
    key = load_public_key((CASES / "managed-key-happy-path" / "key.pub").read_bytes())
    result = verify_bundle(
        _bytes(document), policy=SignaturePolicy(keys=(key,)), trust=production, artifact=ARTIFACT
    )
    assert not result.verified
    assert "SET" in result.reason


@pytest.mark.parametrize("raw", [b"", b"not json", b"{}", b"[1, 2]", b"x" * (16 * 1024 * 1024 + 1)])
def test_garbage_bundles_fail(production: TrustRoot, raw: bytes) -> None:
    assert not verify_bundle(raw, policy=POLICY, trust=production, artifact=ARTIFACT).verified


def test_bundles_need_a_trusted_root_json() -> None:
    result = verify_bundle(
        _bytes(_bundle("happy-path-v0.3")), policy=POLICY, trust=TrustRoot(), artifact=ARTIFACT
    )
    assert result.reason == "trust: verifying a Sigstore bundle needs a trusted_root.json"


def test_artifact_and_digest_are_exclusive_and_digests_are_checked(production: TrustRoot) -> None:
    raw = _bytes(_bundle("happy-path-v0.3"))
    with pytest.raises(InvalidArgument):
        verify_bundle(raw, policy=POLICY, trust=production, artifact=ARTIFACT, digest=DIGEST)
    with pytest.raises(InvalidArgument):
        verify_bundle(raw, policy=POLICY, trust=production)
    with pytest.raises(InvalidArgument, match=r"^digest: "):
        verify_bundle(raw, policy=POLICY, trust=production, digest="sha256:xyz")

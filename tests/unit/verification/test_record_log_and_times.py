"""The evidence record of an image verification keeps each check's log position and times.

The checks are real: a conformance-corpus keyless bundle (Rekor v1 entry with an inclusion
promise, an inclusion proof and an RFC 3161 timestamp) proves all five values at once.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rfc3161_client import decode_timestamp_response

from gate.model import AttestationResult, SignatureResult
from gate.signatures import (
    Identity,
    ImageVerification,
    SignaturePolicy,
    TrustRoot,
    Verification,
    verify_bundle,
)
from gate.verification import to_record

CASE = (
    Path(__file__).resolve().parents[4]
    / "shared"
    / "conformance"
    / "sigstore"
    / "test"
    / "assets"
    / "bundle-verify"
    / "intoto-with-custom-trust-root"
)
BUNDLE = (CASE / "bundle.sigstore.json").read_bytes()
BEACON = Identity(
    subject="https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
    issuer="https://token.actions.githubusercontent.com",
)
SLSA = "https://slsa.dev/provenance/v1"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _real_check() -> Verification:
    trust = TrustRoot.from_trusted_root_json((CASE / "trusted_root.json").read_bytes())
    result = verify_bundle(
        BUNDLE,
        policy=SignaturePolicy(identities=(BEACON,)),
        trust=trust,
        artifact=(CASE / "artifact").read_bytes(),
    )
    assert result.verified, result.reason
    return result


def _bundle_entry_and_gen_time() -> tuple[dict[str, Any], datetime]:
    material = json.loads(BUNDLE)["verificationMaterial"]
    token = material["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"]
    entry: dict[str, Any] = material["tlogEntries"][0]
    return entry, decode_timestamp_response(base64.b64decode(token)).tst_info.gen_time


def test_each_signature_record_keeps_the_log_position_and_both_times_of_its_check() -> None:
    check = _real_check()
    entry, gen_time = _bundle_entry_and_gen_time()
    result = ImageVerification(
        digest="sha256:" + "ab" * 32, verified=True, signatures=(check, Verification.failure("bad"))
    )
    [signed, failed] = to_record(result, "rec-1", NOW).signatures
    assert signed == SignatureResult(
        verified=True,
        signer=BEACON.subject,
        tlog_index=int(entry["logIndex"]),
        integrated_time=datetime.fromtimestamp(int(entry["integratedTime"]), UTC),
        tlog_tree=check.tlog_tree,
        tlog_tree_index=int(entry["inclusionProof"]["logIndex"]),
        timestamp=gen_time,
    )
    assert check.tlog_tree
    assert signed.tlog_tree == check.tlog_tree
    assert failed == SignatureResult(verified=False, signer="", error="bad")
    assert (failed.tlog_index, failed.tlog_tree_index, failed.integrated_time, failed.timestamp) == (
        -1,
        -1,
        None,
        None,
    )


def test_each_attestation_record_keeps_the_log_position_and_both_times_of_its_check() -> None:
    check = _real_check()
    entry, gen_time = _bundle_entry_and_gen_time()
    result = ImageVerification(
        digest="sha256:" + "ab" * 32,
        verified=True,
        attestations={SLSA: (check, Verification.failure("subject mismatch"))},
    )
    [attested, failed] = to_record(result, "rec-2", NOW).attestations
    assert attested == AttestationResult(
        predicate_type=SLSA,
        verified=True,
        signer=BEACON.subject,
        tlog_index=int(entry["logIndex"]),
        integrated_time=datetime.fromtimestamp(int(entry["integratedTime"]), UTC),
        tlog_tree=check.tlog_tree,
        tlog_tree_index=int(entry["inclusionProof"]["logIndex"]),
        timestamp=gen_time,
    )
    assert failed == AttestationResult(predicate_type=SLSA, verified=False, error="subject mismatch")
    assert (failed.tlog_index, failed.tlog_tree_index) == (-1, -1)


def test_results_built_without_the_new_fields_default_to_unknown() -> None:
    signature = SignatureResult(True, "sha256:key", 7)
    attestation = AttestationResult(SLSA, True, "sha256:key")
    assert (
        signature.integrated_time,
        signature.tlog_tree,
        signature.tlog_tree_index,
        signature.timestamp,
    ) == (
        None,
        "",
        -1,
        None,
    )
    assert (attestation.tlog_index, attestation.integrated_time, attestation.tlog_tree) == (-1, None, "")
    assert (attestation.tlog_tree_index, attestation.timestamp) == (-1, None)

"""A real keyless cosign signature (Fulcio + Rekor SET): each trust ingredient is required."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

from gate.signatures import Identity, SignatureLayer, SignaturePolicy, TrustRoot, verify_simple_signing
from gate.signatures._trust import LogKey
from tests.unit.signatures.support import Rekor

SHARED = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "cosign"
CASE = SHARED / "cases" / "ci-fulcio-rekor-valid"
DIGEST = "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a"
STORED = json.loads((CASE / "signature-1").read_bytes()[15:])
LAYER = SignatureLayer(STORED["mimeType"], base64.b64decode(STORED["payload"]), STORED["annotations"])
TRUST = TrustRoot.from_trusted_root_json((SHARED / "trust" / "production-trusted_root.json").read_bytes())
POLICY = SignaturePolicy(
    identities=(Identity(subject="mitr@redhat.com", issuer="https://github.com/login/oauth"),),
    require_tlog=True,
)


def test_the_real_signature_verifies_at_its_integrated_time() -> None:
    result = verify_simple_signing(LAYER, image_digest=DIGEST, policy=POLICY, trust=TRUST)
    assert result.verified, result.reason
    assert result.integrated_time is not None
    assert (result.signer, result.issuer) == ("mitr@redhat.com", "https://github.com/login/oauth")


def test_without_the_ct_log_key_the_sct_does_not_verify() -> None:
    no_ct = dataclasses.replace(TRUST, ct_logs=())
    assert verify_simple_signing(LAYER, image_digest=DIGEST, policy=POLICY, trust=no_ct).reason == (
        "certificate: no embedded SCT is signed by a trusted CT log"
    )
    impostor = Rekor.create().log_key()
    wrong_ct = dataclasses.replace(
        TRUST, ct_logs=tuple(LogKey(key=impostor.key, log_id=log.log_id) for log in TRUST.ct_logs)
    )
    assert not verify_simple_signing(LAYER, image_digest=DIGEST, policy=POLICY, trust=wrong_ct).verified


def test_without_the_rekor_key_or_fulcio_the_signature_is_not_trusted() -> None:
    no_rekor = dataclasses.replace(TRUST, rekor=())
    assert (
        "is not a trusted Rekor log"
        in verify_simple_signing(LAYER, image_digest=DIGEST, policy=POLICY, trust=no_rekor).reason
    )
    no_fulcio = dataclasses.replace(TRUST, fulcio=())
    assert verify_simple_signing(LAYER, image_digest=DIGEST, policy=POLICY, trust=no_fulcio).reason == (
        "certificate: no certificate authority is trusted"
    )


def test_issuer_and_identity_regexps_are_anchored() -> None:
    loose = SignaturePolicy(
        identities=(Identity(subject_regexp="mitr@", issuer_regexp="https://github.com"),)
    )
    assert not verify_simple_signing(LAYER, image_digest=DIGEST, policy=loose, trust=TRUST).verified
    anchored = SignaturePolicy(
        identities=(
            Identity(subject_regexp=r"[a-z]+@redhat\.com", issuer_regexp=r"https://github\.com/login/.*"),
        )
    )
    assert verify_simple_signing(LAYER, image_digest=DIGEST, policy=anchored, trust=TRUST).verified

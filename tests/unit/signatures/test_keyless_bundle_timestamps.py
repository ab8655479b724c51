"""RFC 3161 timestamps of keyless bundles: their verified time is reported, or the bundle fails.

Every bundle is a real one from the sigstore-conformance corpus (timestamped by a Sigstore
TSA). The sigstore library verifies these timestamps but reports no time, and skips one
it cannot verify while another time remains; gate verifies them again as for key-based
bundles, so such a timestamp fails the bundle instead.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rfc3161_client import decode_timestamp_response

from gate.signatures import Identity, SignaturePolicy, TrustRoot, verify_bundle

SIGSTORE = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "sigstore"
CASES = SIGSTORE / "test" / "assets" / "bundle-verify"
PRODUCTION = SIGSTORE / "trust" / "production-trusted_root.json"
FIELD = "bundle.verificationMaterial.timestampVerificationData.rfc3161Timestamps"
BEACON = Identity(
    subject="https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
    issuer="https://token.actions.githubusercontent.com",
)
POLICY = SignaturePolicy(identities=(BEACON,))


def _document(case: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CASES / case / "bundle.sigstore.json").read_bytes())
    return document


def _root(case: str) -> dict[str, Any]:
    path = CASES / case / "trusted_root.json"
    root: dict[str, Any] = json.loads((path if path.is_file() else PRODUCTION).read_bytes())
    return root


def _tokens(document: dict[str, Any]) -> list[dict[str, str]]:
    tokens: list[dict[str, str]] = document["verificationMaterial"]["timestampVerificationData"][
        "rfc3161Timestamps"
    ]
    return tokens


def _gen_times(case: str) -> list[datetime]:
    return [
        decode_timestamp_response(base64.b64decode(token["signedTimestamp"])).tst_info.gen_time
        for token in _tokens(_document(case))
    ]


def _artifact(case: str) -> bytes:
    own = CASES / case / "artifact"
    return (own if own.is_file() else CASES / "a.txt").read_bytes()


def _verify(case: str, document: dict[str, Any] | None = None, root: dict[str, Any] | None = None) -> Any:
    trust = TrustRoot.from_trusted_root_json(json.dumps(root or _root(case)).encode())
    raw = json.dumps(document or _document(case)).encode()
    return verify_bundle(raw, policy=POLICY, trust=trust, artifact=_artifact(case))


@pytest.mark.parametrize(
    "case",
    [
        "rekor2-timestamp-with-embedded-cert",
        "rekor2-timestamp-without-embedded-cert",
        "rekor2-timestamp-with-expired-cert-chain",
        "rekor2-dsse-happy-path",
        "trust-root-tsa-validity-end-inclusive",
        "bundle-with-sct-with-extensions",
        "intoto-with-custom-trust-root",
    ],
)
def test_a_keyless_bundle_reports_the_gen_time_of_its_rfc3161_timestamp(case: str) -> None:
    [gen_time] = _gen_times(case)
    result = _verify(case)
    assert (result.verified, result.timestamp) == (True, gen_time), result.reason
    trust = TrustRoot.from_trusted_root_json(json.dumps(_root(case)).encode())
    digest = "sha256:" + hashlib.sha256(_artifact(case)).hexdigest()
    by_digest = verify_bundle(json.dumps(_document(case)).encode(), policy=POLICY, trust=trust, digest=digest)
    assert by_digest.timestamp == gen_time


def test_a_keyless_bundle_with_a_timestamp_and_a_promise_reports_both_times() -> None:
    # A Rekor v1 entry with an inclusion promise and a TSA timestamp: two independent times.
    result = _verify("intoto-with-custom-trust-root")
    assert result.verified, result.reason
    assert result.timestamp == _gen_times("intoto-with-custom-trust-root")[0]
    assert result.integrated_time is not None
    assert result.tlog_index is not None


def test_a_keyless_bundle_without_timestamps_reports_none() -> None:
    result = _verify("happy-path-v0.3")
    assert result.verified, result.reason
    assert "timestampVerificationData" not in _document("happy-path-v0.3")["verificationMaterial"]
    assert result.timestamp is None


def test_a_timestamp_over_another_signature_fails_although_the_library_skips_it() -> None:
    # A genuine token of the same TSA, but over another bundle's signature: sigstore drops it
    # (the first token still proves a time) and would accept the bundle.
    document = _document("rekor2-timestamp-with-embedded-cert")
    _tokens(document).append(_tokens(_document("rekor2-timestamp-without-embedded-cert"))[0])
    result = _verify("rekor2-timestamp-with-embedded-cert", document)
    assert not result.verified
    signature = base64.b64decode(document["messageSignature"]["signature"])
    assert result.reason.startswith(f"{FIELD}[1]: got a timestamp over sha256 ")
    assert result.reason.endswith(
        f"expected one over the signature (sha256 {hashlib.sha256(signature).hexdigest()})"
    )
    assert result.timestamp is None


def test_a_timestamp_outside_its_authoritys_validity_fails_although_a_promise_remains() -> None:
    # sigstore skips the timestamp and verifies the certificate at the promised integrated time.
    case = "intoto-with-custom-trust-root"
    [gen_time] = _gen_times(case)
    root = copy.deepcopy(_root(case))
    for authority in root["timestampAuthorities"]:
        authority["validFor"] = {"start": (gen_time + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    result = _verify(case, root=root)
    assert not result.verified
    assert result.reason.startswith(f"{FIELD}[0]: got a timestamp no timestamp authority of the trust root")
    assert f"genTime {gen_time.isoformat()} is outside its validity" in result.reason

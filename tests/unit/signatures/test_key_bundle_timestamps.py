"""RFC 3161 timestamps of key-based bundles: verified against the trust root's TSAs, or refused.

The positive case is the conformance corpus' real managed-key bundle, timestamped by
timestamp.sigstore.dev (production trust root). rfc3161-client cannot issue timestamps, so
every failing case changes the trust root or moves that real token onto other bundles.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rfc3161_client import decode_timestamp_response

from gate.signatures import (
    SignaturePolicy,
    TrustRoot,
    key_hint,
    load_public_key,
    make_statement,
    pae,
    verify_bundle,
)
from tests.unit.signatures.support import (
    DIGEST,
    Rekor,
    dsse_body_and_envelope,
    hashedrekord_body,
    key_bundle,
    signing_key,
    trusted_root_json,
)

SIGSTORE = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "sigstore"
CASES = SIGSTORE / "test" / "assets" / "bundle-verify"
MANAGED_KEY = CASES / "managed-key-happy-path"
PRODUCTION: dict[str, Any] = json.loads((SIGSTORE / "trust" / "production-trusted_root.json").read_bytes())
STAGING: dict[str, Any] = json.loads((SIGSTORE / "trust" / "staging-trusted_root.json").read_bytes())
FIELD = "bundle.verificationMaterial.timestampVerificationData.rfc3161Timestamps"
ARTIFACT = (CASES / "a.txt").read_bytes()
POLICY = SignaturePolicy(keys=(load_public_key((MANAGED_KEY / "key.pub").read_bytes()),))


def _real_bundle() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((MANAGED_KEY / "bundle.sigstore.json").read_bytes())
    return document


def _real_token() -> str:
    data = _real_bundle()["verificationMaterial"]["timestampVerificationData"]
    token: str = data["rfc3161Timestamps"][0]["signedTimestamp"]
    return token


def _gen_time() -> Any:
    return decode_timestamp_response(base64.b64decode(_real_token())).tst_info.gen_time


def _verify_real(document: dict[str, Any], root: dict[str, Any]) -> Any:
    trust = TrustRoot.from_trusted_root_json(json.dumps(root).encode())
    return verify_bundle(json.dumps(document).encode(), policy=POLICY, trust=trust, artifact=ARTIFACT)


def _with_tsa_validity(start: Any, end: Any = None) -> dict[str, Any]:
    root = copy.deepcopy(PRODUCTION)
    valid: dict[str, str] = {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if end is not None:
        valid["end"] = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    for authority in root["timestampAuthorities"]:
        authority["validFor"] = valid
    return root


def test_a_key_bundle_reports_the_time_its_rfc3161_timestamp_proves() -> None:
    result = _verify_real(_real_bundle(), PRODUCTION)
    assert result.verified, result.reason
    assert result.timestamp == _gen_time()


def test_a_tsa_validity_ending_at_the_timestamp_still_vouches_for_it() -> None:
    gen_time = _gen_time()
    result = _verify_real(_real_bundle(), _with_tsa_validity(gen_time - timedelta(days=1), gen_time))
    assert (result.verified, result.timestamp) == (True, gen_time), result.reason


def test_a_timestamp_made_outside_its_authoritys_validity_fails() -> None:
    gen_time = _gen_time()
    result = _verify_real(_real_bundle(), _with_tsa_validity(gen_time + timedelta(seconds=1)))
    assert not result.verified
    assert result.reason.startswith(f"{FIELD}[0]: got a timestamp no timestamp authority of the trust root")
    assert f"genTime {gen_time.isoformat()} is outside its validity" in result.reason


def test_a_timestamp_from_an_authority_the_trust_root_does_not_name_fails() -> None:
    root = copy.deepcopy(PRODUCTION)
    root["timestampAuthorities"] = STAGING["timestampAuthorities"]
    result = _verify_real(_real_bundle(), root)
    assert not result.verified
    assert result.reason.startswith(
        f"{FIELD}[0]: got a timestamp no timestamp authority of the trust root vouches for, "
        "expected one signed by a trusted TSA within its validity ("
    )


def test_a_timestamp_without_any_authority_in_the_trust_root_fails() -> None:
    root = copy.deepcopy(PRODUCTION)
    root["timestampAuthorities"] = []
    result = _verify_real(_real_bundle(), root)
    assert result.reason == (
        f"{FIELD}: got 1 signed timestamp(s), expected a trust root with a timestamp authority "
        "to verify them (it has none)"
    )


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (
            base64.b64encode(b"not a timestamp").decode(),
            f"{FIELD}[0]: got bytes that are not a DER RFC 3161 TimeStampResp with a token",
        ),
        ("", f"{FIELD}[0]: got bytes that are not a DER RFC 3161 TimeStampResp with a token"),
    ],
    ids=["garbage", "empty"],
)
def test_a_corrupt_timestamp_fails(token: str, reason: str) -> None:
    document = _real_bundle()
    document["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"] = [
        {"signedTimestamp": token}
    ]
    assert _verify_real(document, PRODUCTION).reason == reason


def test_the_same_timestamp_twice_fails() -> None:
    document = _real_bundle()
    stamps = document["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    stamps.append(dict(stamps[0]))
    assert _verify_real(document, PRODUCTION).reason == (
        f"{FIELD}: got the same timestamp twice, expected each at most once"
    )


def _message_bundle(rekor: Rekor) -> tuple[bytes, bytes, SignaturePolicy]:
    key = signing_key()
    artifact = b"another artifact"
    signature = key.sign(artifact)
    body = hashedrekord_body(artifact, signature, key.public.pem())
    content = {"messageSignature": {"signature": base64.b64encode(signature).decode()}}
    return (
        key_bundle(rekor, body, content, key_hint(key.public)),
        signature,
        SignaturePolicy(keys=(key.public,)),
    )


def _dsse_bundle(rekor: Rekor) -> tuple[bytes, bytes, SignaturePolicy]:
    key = signing_key()
    payload = make_statement({"app": DIGEST}, "https://example.com/p", {})
    signature = key.sign(pae("application/vnd.in-toto+json", payload))
    body, content = dsse_body_and_envelope(
        payload, "application/vnd.in-toto+json", signature, key.public.pem()
    )
    return (
        key_bundle(rekor, body, content, key_hint(key.public)),
        signature,
        SignaturePolicy(keys=(key.public,)),
    )


@pytest.mark.parametrize("build", [_message_bundle, _dsse_bundle], ids=["message", "dsse"])
def test_a_timestamp_over_another_signature_fails_with_both_hashes(build: Any) -> None:
    rekor = Rekor.create()
    raw, signature, policy = build(rekor)
    trust = TrustRoot.from_trusted_root_json(
        trusted_root_json(rekor, timestamp_authorities=PRODUCTION["timestampAuthorities"])
    )
    digest = (
        "sha256:" + hashlib.sha256(b"another artifact").hexdigest() if build is _message_bundle else DIGEST
    )
    untimed = verify_bundle(raw, policy=policy, trust=trust, digest=digest)
    assert (untimed.verified, untimed.timestamp) == (True, None), untimed.reason
    document = json.loads(raw)
    # A genuine token from a trusted TSA, but over the corpus bundle's signature.
    document["verificationMaterial"]["timestampVerificationData"] = {
        "rfc3161Timestamps": [{"signedTimestamp": _real_token()}]
    }
    result = verify_bundle(json.dumps(document).encode(), policy=policy, trust=trust, digest=digest)
    stamped = base64.b64decode(_real_bundle()["messageSignature"]["signature"])
    assert result.reason == (
        f"{FIELD}[0]: got a timestamp over sha256 {hashlib.sha256(stamped).hexdigest()}, "
        f"expected one over the signature (sha256 {hashlib.sha256(signature).hexdigest()})"
    )

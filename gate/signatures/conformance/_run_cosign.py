"""The cosign corpus: ``cases/<case>/case.json`` with an expected verdict, a kind and a policy."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from gate.errors import EvidenceError, GateError, InvalidArgument
from gate.signatures._bundle import verify_bundle
from gate.signatures._certs import Identity
from gate.signatures._dsse import parse_envelope
from gate.signatures._keys import load_public_key
from gate.signatures._policy import SignaturePolicy
from gate.signatures._results import Verification
from gate.signatures._signer import SignerEvidence
from gate.signatures._trust import TrustRoot
from gate.signatures._verify import (
    SignatureLayer,
    verify_attestation,
    verify_blob,
    verify_simple_signing,
    verify_statement,
)
from gate.signatures.conformance._report import CaseResult, Report, outcome

# containers/image stores one cosign signature layer on disk behind this marker.
_SIGSTORE_JSON_MARKER = b"\x00sigstore-json\n"


def run_cosign(cases_dir: Path) -> Report:
    """Run every case under ``cases_dir`` (a corpus root with ``cases/``, or the cases folder)."""
    if (cases_dir / "cases").is_dir():
        cases_dir = cases_dir / "cases"
    report = Report()
    for case_file in sorted(cases_dir.glob("*/case.json")):
        report.results.append(_run_case(case_file.parent))
    return report


def _run_case(folder: Path) -> CaseResult:
    name = folder.name
    try:
        case = json.loads((folder / "case.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return CaseResult(name, False, "?", f"case.json unreadable: {exc}")
    expect_pass = case.get("expect") == "pass"
    kind = case.get("kind")
    runner = _RUNNERS.get(kind)
    if runner is None:
        return CaseResult(name, False, case.get("expect", "?"), f"unknown case kind {kind!r}")
    try:
        result = runner(folder, case)
    except EvidenceError as exc:
        # Bad policy or trust inputs (an unparsable key, say) make the verification fail.
        result = Verification.failure(exc.message)
    except GateError as exc:
        return CaseResult(name, False, case.get("expect", "?"), f"harness error: {exc.message}")
    return outcome(name, expect_pass, result.verified, result.reason)


def _read(folder: Path, name: str) -> bytes:
    try:
        return (folder / name).read_bytes()
    except OSError as exc:
        raise InvalidArgument(name, f"cannot read: {exc.strerror}") from None


def _trust(folder: Path, spec: dict[str, Any]) -> TrustRoot:
    def pems(key: str) -> bytes:
        return b"".join(_read(folder, f) for f in spec.get(key, []))

    trust = TrustRoot.from_pem(
        fulcio_roots=pems("fulcio_roots"),
        rekor_keys=tuple(_read(folder, f) for f in spec.get("rekor_keys", [])),
        ca_roots=pems("ca_roots"),
        ca_intermediates=pems("ca_intermediates"),
    )
    alt = spec.get("alt_trusted_root")
    if alt:
        trust = trust.merged(TrustRoot.from_trusted_root_json(_read(folder, alt)))
    return trust


def _identity(policy: dict[str, Any]) -> Identity:
    extensions = tuple(sorted(policy.get("extensions", {}).items()))
    return Identity(subject=policy["identity"], issuer=policy.get("issuer", ""), extensions=extensions)


def _image_digest(folder: Path, case: dict[str, Any]) -> str:
    if "image_digest_from" in case:
        return "sha256:" + hashlib.sha256(_read(folder, case["image_digest_from"])).hexdigest()
    return str(case["image_digest"])


def _oci_simplesigning(folder: Path, case: dict[str, Any]) -> Verification:
    raw = _read(folder, "signature-1")
    if not raw.startswith(_SIGSTORE_JSON_MARKER):
        raise InvalidArgument("signature-1", "missing the sigstore-json marker")
    stored = json.loads(raw[len(_SIGSTORE_JSON_MARKER) :])
    layer = SignatureLayer(
        media_type=stored.get("mimeType", ""),
        payload=base64.b64decode(stored.get("payload", "")),
        annotations=stored.get("annotations") or {},
    )
    policy_spec = case["policy"]
    mode = policy_spec["mode"]
    reference = policy_spec.get("reference", "") if policy_spec.get("reference_match") == "exact" else ""
    policy = SignaturePolicy(
        keys=tuple(load_public_key(_read(folder, k)) for k in policy_spec.get("keys", []))
        if mode == "key"
        else (),
        identities=(_identity(policy_spec),) if mode in ("keyless", "pki") else (),
        require_tlog=bool(policy_spec.get("require_tlog")),
        reference=reference,
    )
    trust = _trust(folder, case.get("trust", {}))
    return verify_simple_signing(layer, image_digest=_image_digest(folder, case), policy=policy, trust=trust)


def _rekor_set(folder: Path, case: dict[str, Any]) -> Verification:
    # Loose files of one keyless signature: the payload, its signature, certificate and SET.
    payload = _read(folder, "payload.json")
    annotations = {
        "dev.cosignproject.cosign/signature": _read(folder, "signature.b64").decode().strip(),
        "dev.sigstore.cosign/certificate": _read(folder, "cert.pem").decode(),
        "dev.sigstore.cosign/bundle": _read(folder, "set.json").decode(),
    }
    spec = dict(case.get("trust", {}))
    spec.setdefault("rekor_keys", ["rekor.pub"])
    policy = SignaturePolicy(identities=(_identity(case["policy"]),), require_tlog=True)
    layer = SignatureLayer("application/vnd.dev.cosign.simplesigning.v1+json", payload, annotations)
    claims = json.loads(payload)
    digest = case.get("image_digest") or claims["critical"]["image"]["docker-manifest-digest"]
    return verify_simple_signing(layer, image_digest=digest, policy=policy, trust=_trust(folder, spec))


def _dsse_key(folder: Path, case: dict[str, Any]) -> Verification:
    policy_spec = case["policy"]
    policy = SignaturePolicy(keys=(load_public_key(_read(folder, policy_spec["key"])),))
    digest = "sha256:" + hashlib.sha256(_read(folder, "artifact")).hexdigest()
    return verify_attestation(
        _read(folder, "envelope.json"),
        digest=digest,
        predicate_type=policy_spec.get("predicate_type_uri"),
        policy=policy,
        trust=TrustRoot(),
    )


def _intoto_claim(folder: Path, case: dict[str, Any]) -> Verification:
    envelope = parse_envelope(_read(folder, "envelope.json"))
    return verify_statement(
        envelope.payload,
        digest=case["image_digest"],
        predicate_type=case.get("policy", {}).get("predicate_type_uri"),
    )


def _corpus_trust(folder: Path, case: dict[str, Any]) -> TrustRoot:
    if case.get("trusted_root"):
        return TrustRoot.from_trusted_root_json(_read(folder, case["trusted_root"]))
    if (folder / "trusted_root.json").is_file():
        return TrustRoot.from_trusted_root_json(_read(folder, "trusted_root.json"))
    return TrustRoot.from_trusted_root_json(_read(folder, "../../trust/production-trusted_root.json"))


def _sigstore_bundle(folder: Path, case: dict[str, Any]) -> Verification:
    policy_spec = case["policy"]
    policy = SignaturePolicy(identities=(_identity(policy_spec),))
    trust = _corpus_trust(folder, case)
    bundle = _read(folder, "bundle.sigstore.json")
    predicate_type = policy_spec.get("predicate_type_uri")
    if (folder / "artifact").is_file():
        artifact = _read(folder, "artifact")
        by_bytes = verify_bundle(
            bundle, policy=policy, trust=trust, artifact=artifact, predicate_type=predicate_type
        )
        digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    else:
        by_bytes = None
        digest = case["artifact_digest"]
    by_digest = verify_bundle(
        bundle, policy=policy, trust=trust, digest=digest, predicate_type=predicate_type
    )
    if by_bytes is not None and by_bytes.verified != by_digest.verified:
        return Verification.failure(
            f"artifact bytes and digest disagree: bytes={by_bytes.verified} ({by_bytes.reason}), "
            f"digest={by_digest.verified} ({by_digest.reason})"
        )
    return by_digest


def _pubkey_parse(folder: Path, case: dict[str, Any]) -> Verification:
    name = "key.der" if (folder / "key.der").is_file() else "key.pem"
    key = load_public_key(_read(folder, name))
    if key.key_type != case["key_type"]:
        return Verification.failure(f"key type {key.key_type}, expected {case['key_type']}")
    return Verification(verified=True, signer=key.fingerprint)


def _detached_keyless(folder: Path, case: dict[str, Any]) -> Verification:
    policy = SignaturePolicy(identities=(_identity(case["policy"]),))
    signature = base64.b64decode(_read(folder, "artifact.sig"), validate=False)
    evidence = SignerEvidence(certificate=_read(folder, "artifact.crt"))
    return verify_blob(
        signature,
        policy=policy,
        trust=_corpus_trust(folder, case),
        artifact=_read(folder, "artifact"),
        evidence=evidence,
    )


_RUNNERS = {
    "oci-simplesigning": _oci_simplesigning,
    "rekor-set": _rekor_set,
    "dsse-key": _dsse_key,
    "intoto-claim": _intoto_claim,
    "sigstore-bundle": _sigstore_bundle,
    "pubkey-parse": _pubkey_parse,
    "detached-keyless": _detached_keyless,
}

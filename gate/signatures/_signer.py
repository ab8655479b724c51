"""Who signed: a trusted key, or a certificate chained to a trusted CA with a trusted identity.

Shared by simple-signing signatures and DSSE attestations stored the legacy cosign way
(signature material in layer annotations, optional Rekor SET).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from gate.errors import InvalidArgument
from gate.signatures._certs import (
    certificate_issuer,
    has_code_signing,
    load_certificate,
    load_certificates,
    verify_chain,
    verify_embedded_sct,
)
from gate.signatures._keys import PublicKey
from gate.signatures._policy import SignaturePolicy
from gate.signatures._rekor import RekorEntry, Signer, verify_set
from gate.signatures._results import Verification
from gate.signatures._trust import TrustRoot, certificate_key


@dataclass(frozen=True)
class SignerEvidence:
    """Material stored beside a signature: certificate, chain (PEM) and Rekor SET bundle."""

    certificate: bytes | None = None
    chain: bytes | None = None
    rekor_bundle: bytes | None = None


@dataclass(frozen=True)
class Signed:
    """A verified signer."""

    signer: str
    issuer: str
    entry: RekorEntry | None

    def verification(self, **verified: Any) -> Verification:
        """The successful verification by this signer, with what was verified (claims, predicate)."""
        return Verification(
            verified=True,
            signer=self.signer,
            issuer=self.issuer,
            tlog_index=self.entry.log_index if self.entry else None,
            integrated_time=self.entry.integrated_time if self.entry else None,
            **verified,
        )


def establish_signer(
    verifies: Callable[[PublicKey], bool],
    evidence: SignerEvidence,
    policy: SignaturePolicy,
    trust: TrustRoot,
    check_entry: Callable[[RekorEntry, Signer], None],
    now: datetime | None = None,
) -> Signed:
    """Find the trusted signer for which ``verifies`` holds, and check its log evidence.

    ``check_entry`` compares a verified Rekor entry's body with the signed material.
    Certificates are validated at the SET's integrated time; without a SET only a private
    CA can vouch (at ``now``), since a short-lived Fulcio certificate needs a verified time.

    Raises:
        InvalidArgument: with the reason the signature is not trusted.
    """
    signer: Signer
    leaf: x509.Certificate | None = None
    if policy.key_mode:
        key = next((k for k in policy.keys if verifies(k)), None)
        if key is None:
            raise InvalidArgument(
                "signature", f"no trusted key verifies the signature ({len(policy.keys)} tried)"
            )
        signer = key
    else:
        if not evidence.certificate:
            raise InvalidArgument("certificate", "no signing certificate to check the identities against")
        leaf = load_certificate(evidence.certificate)
        if not verifies(certificate_key(leaf)):
            raise InvalidArgument("signature", "signature does not verify under the certificate's key")
        signer = leaf
    entry: RekorEntry | None = None
    if evidence.rekor_bundle is not None:
        entry = verify_set(evidence.rekor_bundle, trust)
        check_entry(entry, signer)
    elif policy.require_tlog:
        raise InvalidArgument("rekor bundle", "missing: the policy requires a transparency-log entry (SET)")
    if leaf is None:
        assert isinstance(signer, PublicKey)
        return Signed(signer=signer.fingerprint, issuer="", entry=entry)
    return _check_certificate(leaf, evidence, policy, trust, entry, now)


def _check_certificate(
    leaf: x509.Certificate,
    evidence: SignerEvidence,
    policy: SignaturePolicy,
    trust: TrustRoot,
    entry: RekorEntry | None,
    now: datetime | None,
) -> Signed:
    intermediates = load_certificates(evidence.chain, "certificate chain") if evidence.chain else []
    signed_at = entry.integrated_time if entry is not None else None
    chain, via_fulcio = _chain(leaf, intermediates, trust, signed_at, now)
    if via_fulcio:
        if not has_code_signing(leaf):
            raise InvalidArgument("certificate", "not a code-signing certificate (KeyUsage/EKU)")
        if policy.require_sct:
            problem = verify_embedded_sct(leaf, chain[1], trust)
            if problem is not None:
                raise InvalidArgument("certificate", problem)
    problems = [i.mismatch(leaf) for i in policy.identities]
    matched = next((i for i, p in zip(policy.identities, problems, strict=True) if p is None), None)
    if matched is None:
        raise InvalidArgument("certificate", problems[0] or "identity mismatch")
    return Signed(signer=matched.matching_subject(leaf), issuer=certificate_issuer(leaf) or "", entry=entry)


def _chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    trust: TrustRoot,
    signed_at: datetime | None,
    now: datetime | None,
) -> tuple[list[x509.Certificate], bool]:
    """The verified chain (leaf first) and whether it ends at a Fulcio CA."""
    reasons: list[str] = []
    if trust.fulcio:
        if signed_at is None:
            reasons.append("Fulcio: no verified signing time (Rekor SET) for a short-lived certificate")
        else:
            found = verify_chain(leaf, intermediates, trust.fulcio, signed_at)
            if not isinstance(found, str):
                return found[1], True
            reasons.append(f"Fulcio: {found}")
    if trust.private_cas:
        moment = signed_at or now or datetime.now(UTC)
        found = verify_chain(leaf, intermediates, trust.private_cas, moment, lenient_key_usage=True)
        if not isinstance(found, str):
            return found[1], False
        reasons.append(f"private CA: {found}")
    raise InvalidArgument("certificate", "; ".join(reasons) or "no certificate authority is trusted")

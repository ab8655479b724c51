"""Image verification as gate runs it: registry discovery, offline trust, a shared result cache.

:class:`ImageVerifierService` pins an image to its digest, discovers its cosign
signatures, attestations and Sigstore bundles through an image source (the
registry client, or an OCI layout on disk) and verifies them with
:mod:`gate.signatures`. Successful results are cached by (image digest, trust policy key):
a verification of one digest under one policy is a pure function of what the
registry holds, and concurrent requests for the same key share one fetch
sequence (Kyverno was seen verifying one image eight times in one admission).

:class:`KyvernoImageVerifier` adapts the service to the policy engine's
:class:`policies.ImageVerifier` port, turning ``verifyImages`` attestors into
signature policies.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, TypeVar

from gate._cache import CacheStats, SharedCache
from gate.errors import EvidenceError, InfrastructureError, InvalidArgument
from gate.model import AttestationResult, SignatureResult
from gate.model import Verification as VerificationRecord
from gate.oci import ImageRef, ImageSource
from gate.signatures import Identity, SignaturePolicy, TrustRoot, load_certificate, load_public_key
from gate.signatures._image import AttestationRequirement, ImagePolicy, ImageVerification, verify_image
from gate.signatures._trust import certificate_key
from policies import (
    AttestationOutcome,
    Attestor,
    CertificateAttestor,
    EvaluationError,
    KeyAttestor,
    KeylessAttestor,
    SignatureOutcome,
)

# Fulcio's legacy GitHub extensions, by the names Kyverno's additionalExtensions use.
_KYVERNO_EXTENSIONS = {
    "githubWorkflowTrigger": "1.3.6.1.4.1.57264.1.2",
    "githubWorkflowSha": "1.3.6.1.4.1.57264.1.3",
    "githubWorkflowName": "1.3.6.1.4.1.57264.1.4",
    "githubWorkflowRepository": "1.3.6.1.4.1.57264.1.5",
    "githubWorkflowRef": "1.3.6.1.4.1.57264.1.6",
}
T = TypeVar("T")
_PEM_KEY = re.compile(rb"-----BEGIN (?:RSA )?PUBLIC KEY-----.+?-----END (?:RSA )?PUBLIC KEY-----", re.DOTALL)


@cache
def embedded_trust_root() -> TrustRoot:
    """Sigstore's public-good trust root as shipped inside the ``sigstore`` package (never fetched).

    The file is the library's own offline copy of the TUF-distributed root; gate pins the
    library's minor version, so the path is stable. Deployments that need a fresher root
    configure ``signatures.trusted_root``.
    """
    store = resources.files("sigstore") / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    return TrustRoot.from_trusted_root_json((store / "trusted_root.json").read_bytes())


def policy_key(*parts: Any) -> str:
    """A stable cache key for a trust policy from the values that define it."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class VerifierStats:
    """Cache counters of the verification results and of tag resolutions."""

    results: CacheStats
    tags: CacheStats


class ImageVerifierService:
    """Verifies images from an image source under a trust root, caching results per digest and policy.

    Args:
        source: where images, signatures and attestations are read (a ``RegistryClient``
            shared by the process, or an ``OciLayout``).
        trust: Fulcio CAs, Rekor and CT log keys, private CAs.
        result_ttl: seconds a verification result is reused.
        max_results: cached results kept.
        tag_ttl: seconds a tag's digest is reused (tags move; digests do not).
    """

    def __init__(
        self,
        source: ImageSource,
        trust: TrustRoot,
        *,
        result_ttl: float = 300.0,
        max_results: int = 10_000,
        tag_ttl: float = 30.0,
        outage_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.trust = trust
        # A registry that failed is not asked again for this long: without it every admission
        # naming the image would wait for the same timeout (the answer is still "retry").
        self._outages: SharedCache[str, str] = SharedCache(max_entries=1024, ttl=outage_ttl, clock=clock)
        self._results: SharedCache[tuple[str, str], ImageVerification] = SharedCache(
            max_entries=max_results, ttl=result_ttl, clock=clock
        )
        self._tags: SharedCache[str, str] = SharedCache(max_entries=max_results, ttl=tag_ttl, clock=clock)

    def resolve(self, ref: ImageRef) -> str:
        """The digest ``ref`` names (its own, or its tag's, cached for ``tag_ttl``).

        Raises:
            InfrastructureError: the registry failed now or within the last ``outage_ttl`` seconds.
        """
        if ref.digest:
            return ref.digest
        return self._tags.get_or_compute(
            str(ref), lambda: self._guarded(ref, lambda: self.source.resolve(ref).digest)
        )

    def _guarded(self, ref: ImageRef, fetch: Callable[[], T]) -> T:
        failure = self._outages.get(ref.registry)
        if failure is not None:
            raise InfrastructureError(f"{failure} (a recent failure; not retried for a few seconds)")
        try:
            return fetch()
        except InfrastructureError as error:
            self._outages.put(ref.registry, error.message)
            raise

    def verify(
        self,
        image: str | ImageRef,
        policy: ImagePolicy,
        key: str,
        *,
        trust: TrustRoot | None = None,
        signature_repository: str = "",
    ) -> ImageVerification:
        """The verification of ``image`` under ``policy`` (identified by ``key`` for the cache).

        ``signature_repository`` names another repository of the same registry that holds the
        signatures (cosign's ``COSIGN_REPOSITORY``, Kyverno's ``repository``).

        Raises:
            InvalidArgument: ``image`` is not an image reference.
            InfrastructureError: the source failed (retry, or apply the failure policy).
        """
        ref = image if isinstance(image, ImageRef) else ImageRef.parse(image)
        digest = self.resolve(ref)
        where = ref.in_repository(signature_repository) if signature_repository else ref
        pinned = where.with_digest(digest)
        roots = trust or self.trust
        cache_key = (digest, f"{key}:{signature_repository}")
        result = self._results.get_or_compute(
            cache_key, lambda: verify_image(self.source, pinned, policy, roots)
        )
        if not result.verified:
            # Only successes are reused: a signature pushed a moment ago must count at once.
            # Concurrent callers still shared this one fetch.
            self._results.invalidate(cache_key)
        return result

    def cached(self, digest: str, key: str) -> ImageVerification | None:
        """The cached verification of ``digest`` under the policy ``key``, if fresh."""
        return self._results.get((digest, key))

    def invalidate(self) -> None:
        """Forget every cached result (the trust root changed)."""
        self._results.invalidate()
        self._tags.invalidate()

    def stats(self) -> VerifierStats:
        """Cache counters."""
        return VerifierStats(self._results.stats(), self._tags.stats())


def _public_keys(pem: str) -> tuple[Any, ...]:
    blocks = _PEM_KEY.findall(pem.encode())
    return tuple(load_public_key(block) for block in blocks)


def _wildcard_regexp(text: str) -> str:
    # Kyverno's keyless subject and issuer accept ``*`` wildcards; the verifier takes anchored RE2.
    return ".*".join(re.escape(part) for part in text.split("*"))


class KyvernoImageVerifier:
    """The policy engine's ``ImageVerifier`` port over :class:`ImageVerifierService`."""

    def __init__(self, service: ImageVerifierService, *, max_policies: int = 1024) -> None:
        self._service = service
        # Attestors compile to the same policy on every admission: keep them (bounded).
        self._policies: SharedCache[str, tuple[SignaturePolicy, TrustRoot | None]] = SharedCache(
            max_entries=max_policies, ttl=24 * 3600.0
        )

    def _policy(self, attestor: Attestor) -> tuple[SignaturePolicy, TrustRoot | None]:
        return self._policies.get_or_compute(policy_key(attestor), lambda: self._compile(attestor))

    def _compile(self, attestor: Attestor) -> tuple[SignaturePolicy, TrustRoot | None]:
        rekor = attestor.rekor
        rekor_keys = (rekor.public_key.encode(),) if rekor.public_key else ()
        ct_keys = (attestor.ctlog_public_key.encode(),) if attestor.ctlog_public_key else ()
        ca_roots = attestor.roots.encode() if isinstance(attestor, KeylessAttestor) else b""
        ca_chain = attestor.cert_chain.encode() if isinstance(attestor, CertificateAttestor) else b""
        trust = None
        if rekor_keys or ct_keys or ca_roots or ca_chain:
            extra = TrustRoot.from_pem(
                rekor_keys=rekor_keys, ct_keys=ct_keys, ca_roots=ca_roots, ca_intermediates=ca_chain
            )
            trust = self._service.trust.merged(extra)
        tlog, sct = not rekor.ignore_tlog, not attestor.ignore_sct
        if isinstance(attestor, KeyAttestor):
            keys = _public_keys(attestor.public_keys)
            if not keys:
                raise EvidenceError("keys.publicKeys: no PEM public key found")
            return SignaturePolicy(
                keys=keys, hash_algorithm=attestor.signature_algorithm, require_tlog=tlog, require_sct=sct
            ), trust
        if isinstance(attestor, CertificateAttestor):
            if not attestor.cert:
                raise EvidenceError("certificates.cert: a signing certificate is required")
            # The certificate is the trust anchor the policy names: its key verifies the signature.
            key = certificate_key(load_certificate(attestor.cert.encode()))
            return SignaturePolicy(keys=(key,), require_tlog=tlog, require_sct=sct), trust
        extensions = []
        for name, value in attestor.additional_extensions.items():
            oid = _KYVERNO_EXTENSIONS.get(name)
            if oid is None:
                raise EvidenceError(f"keyless.additionalExtensions.{name}: not a supported extension")
            extensions.append((oid, value))
        identity = Identity(
            subject=attestor.subject if "*" not in attestor.subject else "",
            subject_regexp=attestor.subject_regexp
            or (_wildcard_regexp(attestor.subject) if "*" in attestor.subject else ""),
            issuer=attestor.issuer if "*" not in attestor.issuer else "",
            issuer_regexp=attestor.issuer_regexp
            or (_wildcard_regexp(attestor.issuer) if "*" in attestor.issuer else ""),
            extensions=tuple(extensions),
        )
        return SignaturePolicy(identities=(identity,), require_tlog=tlog, require_sct=sct), trust

    def verify_signature(
        self, image: str, attestor: Attestor, *, signature_type: str, repository: str
    ) -> SignatureOutcome:
        """Whether ``image`` carries a signature ``attestor`` accepts."""
        try:
            signers, trust = self._policy(attestor)
            result = self._verify(
                image, repository, ImagePolicy(signers=signers), trust, attestor, signature_type
            )
        except EvidenceError as error:
            return SignatureOutcome(False, reason=error.message)
        return SignatureOutcome(result.verified, result.digest, result.reason)

    def verify_attestations(
        self, image: str, predicate_type: str, attestor: Attestor, *, repository: str
    ) -> AttestationOutcome:
        """The statements of ``predicate_type`` about ``image`` that ``attestor`` signed."""
        try:
            signers, trust = self._policy(attestor)
            policy = ImagePolicy(attestations=(AttestationRequirement(predicate_type, signers),))
            result = self._verify(image, repository, policy, trust, attestor, predicate_type)
        except EvidenceError as error:
            return AttestationOutcome(False, reason=error.message)
        statements = tuple(
            {"predicateType": predicate_type, "predicate": predicate}
            for predicate in result.predicates(predicate_type)
        )
        return AttestationOutcome(result.verified, result.digest, statements, result.reason)

    def _verify(
        self,
        image: str,
        repository: str,
        policy: ImagePolicy,
        trust: TrustRoot | None,
        attestor: Attestor,
        purpose: str,
    ) -> ImageVerification:
        try:
            return self._service.verify(
                image,
                policy,
                policy_key(attestor, purpose),
                trust=trust,
                signature_repository=repository,
            )
        except InfrastructureError as error:
            # A registry outage is not a verdict: the rule errors and failurePolicy decides.
            raise EvaluationError(f"cannot verify {image}: {error.message}") from None


@dataclass(frozen=True)
class VerifyRequest:
    """What a VerifyImage call asks, in domain terms.

    ``public_keys`` are PEM keys (any may have signed); ``identities`` are keyless
    identities; ``predicate_types`` each need a verified attestation by the same signers.
    With ``attestations_only`` the image's own signatures are not required (``cosign
    verify-attestation``).
    """

    public_keys: tuple[str, ...] = ()
    identities: tuple[Identity, ...] = ()
    require_tlog: bool = False
    predicate_types: tuple[str, ...] = ()
    attestations_only: bool = False

    def policy(self) -> tuple[ImagePolicy, str]:
        """The image policy and its cache key.

        Raises:
            InvalidArgument: no signer named, a key that does not parse, a bad regexp.
        """
        keys: list[Any] = []
        for index, pem in enumerate(self.public_keys):
            found = _public_keys(pem)
            if not found:
                raise InvalidArgument(f"policy.public_keys[{index}]", "expected a PEM public key")
            keys.extend(found)
        signers = SignaturePolicy(
            keys=tuple(keys),
            identities=self.identities,
            require_tlog=self.require_tlog,
        )
        attestations = tuple(AttestationRequirement(t, signers) for t in self.predicate_types)
        policy = ImagePolicy(signers=None if self.attestations_only else signers, attestations=attestations)
        fingerprints = tuple(sorted(k.fingerprint for k in keys))
        key = policy_key(
            fingerprints, self.identities, self.require_tlog, self.predicate_types, self.attestations_only
        )
        return policy, key


def to_record(result: ImageVerification, record_id: str, verified_at: datetime) -> VerificationRecord:
    """The stored evidence of one image verification."""
    signatures = tuple(
        SignatureResult(
            verified=check.verified,
            signer=check.signer,
            tlog_index=_index(check.tlog_index),
            error="" if check.verified else check.reason,
            integrated_time=check.integrated_time,
            tlog_tree=check.tlog_tree,
            tlog_tree_index=_index(check.tlog_tree_index),
            timestamp=check.timestamp,
        )
        for check in result.signatures
    )
    attestations = tuple(
        AttestationResult(
            predicate_type=predicate_type,
            verified=check.verified,
            signer=check.signer,
            error="" if check.verified else check.reason,
            tlog_index=_index(check.tlog_index),
            integrated_time=check.integrated_time,
            tlog_tree=check.tlog_tree,
            tlog_tree_index=_index(check.tlog_tree_index),
            timestamp=check.timestamp,
        )
        for predicate_type, checks in result.attestations.items()
        for check in checks
    )
    return VerificationRecord(
        id=record_id,
        artifact_digest=result.digest,
        verified=result.verified,
        verified_at=verified_at,
        signatures=signatures,
        attestations=attestations,
        message="" if result.verified else result.reason,
    )


def _index(value: int | None) -> int:
    """A log index as records keep it: -1 when there is none."""
    return value if value is not None else -1

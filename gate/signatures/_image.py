"""Signatures and attestations of an image, discovered in an image source and verified.

Discovery follows cosign: the ``sha256-<hex>.sig`` and ``.att`` tags (one layer per
signature or attestation, material in the layer annotations) and Sigstore bundles
attached as OCI 1.1 referrers (the referrers API where the source offers it, else the
``sha256-<hex>`` fallback index). Everything fetched is verified with the pure
functions of this package. Bad content of one signature makes that signature fail;
a source that cannot be reached raises (``InfrastructureError``) so that the caller
applies its failure policy instead of a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from gate.errors import EvidenceError, InvalidArgument
from gate.oci import (
    ContentNotFound,
    Descriptor,
    ImageIndex,
    ImageManifest,
    ImageRef,
    ImageSource,
    cosign_tag,
    referrers_tag,
)
from gate.signatures._bundle import verify_bundle
from gate.signatures._policy import SignaturePolicy
from gate.signatures._results import Verification
from gate.signatures._signer import SignerEvidence
from gate.signatures._trust import TrustRoot
from gate.signatures._verify import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_CHAIN,
    DSSE_MEDIA_TYPE,
    SignatureLayer,
    annotation_bytes,
    verify_attestation,
    verify_simple_signing,
)

BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
MAX_LAYERS = 64
MAX_REFERRERS = 64
MAX_SIGNATURE_BLOB = 1024 * 1024
MAX_ENVELOPE_BLOB = 16 * 1024 * 1024


@runtime_checkable
class ReferrersSource(Protocol):
    """A source that answers the OCI 1.1 referrers API (a registry client)."""

    def referrers(self, ref: ImageRef, artifact_type: str | None = None) -> list[Descriptor]:
        """Descriptors of the manifests whose subject is ``ref``."""
        ...


@dataclass(frozen=True)
class AttestationRequirement:
    """An attestation the image must carry: its exact predicate type and who must sign it."""

    predicate_type: str
    signers: SignaturePolicy


@dataclass(frozen=True)
class ImagePolicy:
    """What an image needs: signatures by ``count`` distinct ``signers`` and each required attestation.

    Distinct signers (key fingerprints or certificate identities) are counted, so one
    signature copied into several layers counts once.
    """

    signers: SignaturePolicy | None = None
    count: int = 1
    attestations: tuple[AttestationRequirement, ...] = ()

    def __post_init__(self) -> None:
        if self.signers is None and not self.attestations:
            raise InvalidArgument("image policy", "require signatures, attestations or both")
        if self.count < 1:
            raise InvalidArgument("image policy.count", f"must be at least 1, got {self.count}")


@dataclass(frozen=True)
class ImageVerification:
    """The verdict for one image digest, with every signature and attestation examined."""

    digest: str
    verified: bool
    reason: str = ""
    signatures: tuple[Verification, ...] = ()
    attestations: dict[str, tuple[Verification, ...]] = field(default_factory=dict)

    def predicates(self, predicate_type: str) -> list[object]:
        """The predicates of the verified attestations of ``predicate_type``."""
        return [a.predicate for a in self.attestations.get(predicate_type, ()) if a.verified]


def verify_image(
    source: ImageSource, ref: ImageRef, policy: ImagePolicy, trust: TrustRoot
) -> ImageVerification:
    """Discover and verify the signatures and attestations of the image ``ref`` names.

    The image is pinned to its digest first (``ref``'s digest, else what its tag resolves
    to); everything is verified against that digest.

    Raises:
        InfrastructureError: the source failed (retry or apply the failure policy).
    """
    digest = ref.digest or source.resolve(ref).digest
    pinned = ref.with_digest(digest)
    bundles = _referrer_bundles(source, pinned, digest)
    signatures: list[Verification] = []
    if policy.signers is not None:
        for layer in _cosign_layers(source, pinned, digest, "sig"):
            signatures.append(_verify_signature_layer(source, pinned, layer, digest, policy.signers, trust))
        for bundle in bundles:
            result = verify_bundle(
                bundle,
                policy=policy.signers,
                trust=trust,
                digest=digest,
                predicate_type=COSIGN_SIGN_PREDICATE,
            )
            # Bundles of other predicate types are attestations, not signatures.
            if not result.reason.startswith("statement.predicateType"):
                signatures.append(result)
    attestations: dict[str, tuple[Verification, ...]] = {}
    if policy.attestations:
        att_layers = list(_cosign_layers(source, pinned, digest, "att"))
        for requirement in policy.attestations:
            found = [
                _verify_attestation_layer(source, pinned, layer, digest, requirement, trust)
                for layer in att_layers
                if layer.annotations.get("predicateType", requirement.predicate_type)
                == requirement.predicate_type
            ]
            found.extend(
                verify_bundle(
                    bundle,
                    policy=requirement.signers,
                    trust=trust,
                    digest=digest,
                    predicate_type=requirement.predicate_type,
                )
                for bundle in bundles
            )
            attestations[requirement.predicate_type] = tuple(found)
    return _verdict(digest, policy, signatures, attestations)


def _verdict(
    digest: str,
    policy: ImagePolicy,
    signatures: list[Verification],
    attestations: dict[str, tuple[Verification, ...]],
) -> ImageVerification:
    problems: list[str] = []
    if policy.signers is not None:
        good = len({s.signer for s in signatures if s.verified})
        if good < policy.count:
            detail = "; ".join(s.reason for s in signatures if not s.verified)[:500] or "no signatures found"
            problems.append(f"{good} distinct verified signer(s), need {policy.count}: {detail}")
    for requirement in policy.attestations:
        found = attestations.get(requirement.predicate_type, ())
        if not any(a.verified for a in found):
            detail = "; ".join(a.reason for a in found if not a.verified)[:500] or "none found"
            problems.append(f"no verified {requirement.predicate_type} attestation: {detail}")
    return ImageVerification(
        digest=digest,
        verified=not problems,
        reason="; ".join(problems),
        signatures=tuple(signatures),
        attestations=attestations,
    )


def _manifest_or_none(source: ImageSource, ref: ImageRef) -> ImageManifest | ImageIndex | None:
    try:
        return source.manifest(ref)
    except ContentNotFound:
        return None


def _cosign_layers(source: ImageSource, ref: ImageRef, digest: str, suffix: str) -> list[Descriptor]:
    found = _manifest_or_none(source, ref.with_tag(cosign_tag(digest, suffix)))
    if not isinstance(found, ImageManifest):
        return []
    return list(found.layers[:MAX_LAYERS])


def _evidence(layer: Descriptor) -> SignerEvidence:
    def get(name: str) -> bytes | None:
        value = layer.annotations.get(name)
        return annotation_bytes(name, value) if value else None

    return SignerEvidence(
        certificate=get(ANNOTATION_CERTIFICATE),
        chain=get(ANNOTATION_CHAIN),
        rekor_bundle=get(ANNOTATION_BUNDLE),
    )


def _verify_signature_layer(
    source: ImageSource,
    ref: ImageRef,
    layer: Descriptor,
    digest: str,
    policy: SignaturePolicy,
    trust: TrustRoot,
) -> Verification:
    try:
        payload = source.read_blob(ref.with_tag(cosign_tag(digest, "sig")), layer, MAX_SIGNATURE_BLOB)
    except EvidenceError as exc:
        return Verification.failure(f"signature layer {layer.digest}: {exc.message}")
    signature_layer = SignatureLayer(layer.media_type, payload, dict(layer.annotations))
    return verify_simple_signing(signature_layer, image_digest=digest, policy=policy, trust=trust)


def _verify_attestation_layer(
    source: ImageSource,
    ref: ImageRef,
    layer: Descriptor,
    digest: str,
    requirement: AttestationRequirement,
    trust: TrustRoot,
) -> Verification:
    if layer.media_type != DSSE_MEDIA_TYPE:
        return Verification.failure(f"attestation layer {layer.digest}: media type {layer.media_type!r}")
    try:
        evidence = _evidence(layer)
        envelope = source.read_blob(ref.with_tag(cosign_tag(digest, "att")), layer, MAX_ENVELOPE_BLOB)
    except EvidenceError as exc:
        return Verification.failure(f"attestation layer {layer.digest}: {exc.message}")
    return verify_attestation(
        envelope,
        digest=digest,
        predicate_type=requirement.predicate_type,
        policy=requirement.signers,
        trust=trust,
        evidence=evidence,
    )


def _referrer_bundles(source: ImageSource, ref: ImageRef, digest: str) -> list[bytes]:
    """Sigstore bundle blobs attached to the image as referrers."""
    if isinstance(source, ReferrersSource):
        descriptors = source.referrers(ref)
    else:
        index = _manifest_or_none(source, ref.with_tag(referrers_tag(digest)))
        descriptors = list(index.manifests) if isinstance(index, ImageIndex) else []
    bundles: list[bytes] = []
    for descriptor in descriptors[:MAX_REFERRERS]:
        # Member entries may carry a misleading artifactType (cosign 3 on some registries),
        # so the member manifest itself is inspected.
        try:
            member = source.manifest(ref.with_digest(descriptor.digest), expected=descriptor)
        except EvidenceError:
            continue
        if not isinstance(member, ImageManifest) or member.subject is None or member.subject.digest != digest:
            continue
        for layer in member.layers[:1]:
            if layer.media_type.startswith(BUNDLE_MEDIA_PREFIX):
                try:
                    bundles.append(source.read_blob(ref, layer, MAX_ENVELOPE_BLOB))
                except EvidenceError:
                    continue
    return bundles

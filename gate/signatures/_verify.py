"""Legacy cosign material: simple-signing image signatures and DSSE attestation layers."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gate.errors import EvidenceError, InvalidArgument
from gate.signatures._dsse import (
    INTOTO_PAYLOAD_TYPE,
    Envelope,
    check_statement,
    parse_envelope,
    parse_statement,
    sha256_subject,
)
from gate.signatures._json import load_json
from gate.signatures._keys import PublicKey
from gate.signatures._policy import SignaturePolicy
from gate.signatures._rekor import RekorEntry, Signer, b64decode_strict, check_dsse_entry, check_hashedrekord
from gate.signatures._results import Verification
from gate.signatures._signer import Signed, SignerEvidence, establish_signer
from gate.signatures._trust import TrustRoot

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
SIMPLE_SIGNING_TYPE = "cosign container image signature"
ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature"
ANNOTATION_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANNOTATION_CHAIN = "dev.sigstore.cosign/chain"
ANNOTATION_BUNDLE = "dev.sigstore.cosign/bundle"
MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_SIGNATURE_B64 = 16 * 1024


@dataclass(frozen=True)
class SignatureLayer:
    """One layer of a cosign ``.sig``/``.att`` manifest: media type, blob and annotations."""

    media_type: str
    payload: bytes = field(repr=False)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def evidence(self) -> SignerEvidence:
        """The certificate, chain and Rekor bundle annotations.

        Raises:
            InvalidArgument: one of them is not UTF-8 text.
        """

        def get(name: str) -> bytes | None:
            value = self.annotations.get(name)
            return annotation_bytes(name, value) if isinstance(value, str) else None

        return SignerEvidence(
            certificate=get(ANNOTATION_CERTIFICATE),
            chain=get(ANNOTATION_CHAIN),
            rekor_bundle=get(ANNOTATION_BUNDLE),
        )


def annotation_bytes(name: str, value: str) -> bytes:
    """The UTF-8 bytes of the annotation ``name``.

    Raises:
        InvalidArgument: the value holds a lone surrogate (a registry's JSON may carry
            ``"\\ud800"``), which no UTF-8 text, and so no certificate or bundle, contains.
    """
    try:
        return value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidArgument(
            f"annotation {name}",
            f"got a lone surrogate at character {exc.start}, expected text that encodes as UTF-8",
        ) from None


def _lookup(mapping: object, name: str) -> object:
    # Go's encoding/json matches field names case-insensitively, and cosign reads the
    # payload through it; an exact match still wins.
    if not isinstance(mapping, dict):
        return None
    if name in mapping:
        return mapping[name]
    lowered = name.lower()
    return next((v for k, v in mapping.items() if isinstance(k, str) and k.lower() == lowered), None)


def parse_simple_signing(payload: bytes) -> dict[str, Any]:
    """Parse a simple-signing payload and check its ``critical`` structure.

    Raises:
        InvalidArgument: not JSON, or ``critical.type``/``critical.image`` malformed.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidArgument("payload", f"{len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    claims = load_json(payload, "payload")
    if not isinstance(claims, dict) or not isinstance(_lookup(claims, "critical"), dict):
        raise InvalidArgument("payload.critical", "missing or not an object")
    kind = _lookup(_lookup(claims, "critical"), "type")
    if kind != SIMPLE_SIGNING_TYPE:
        raise InvalidArgument("payload.critical.type", f"got {kind!r}, expected {SIMPLE_SIGNING_TYPE!r}")
    return claims


def check_claims(claims: dict[str, Any], *, image_digest: str, policy: SignaturePolicy) -> None:
    """Bind the payload to the image: digest, and (when the policy says) reference and annotations.

    Raises:
        InvalidArgument: naming the claim that differs.
    """
    critical = _lookup(claims, "critical")
    signed_digest = _lookup(_lookup(critical, "image"), "docker-manifest-digest")
    if signed_digest != image_digest:
        raise InvalidArgument(
            "payload.critical.image.docker-manifest-digest",
            f"got {signed_digest!r}, expected {image_digest!r}",
        )
    if policy.reference:
        reference = _lookup(_lookup(critical, "identity"), "docker-reference")
        if reference != policy.reference:
            raise InvalidArgument(
                "payload.critical.identity.docker-reference",
                f"got {reference!r}, expected {policy.reference!r}",
            )
    if policy.annotations:
        optional = _lookup(claims, "optional")
        optional = optional if isinstance(optional, dict) else {}
        for name, value in policy.annotations.items():
            if optional.get(name) != value:
                raise InvalidArgument(
                    f"payload.optional.{name}", f"got {optional.get(name)!r}, expected {value!r}"
                )


def verify_simple_signing(
    layer: SignatureLayer,
    *,
    image_digest: str,
    policy: SignaturePolicy,
    trust: TrustRoot,
    now: datetime | None = None,
) -> Verification:
    """Verify one cosign simple-signing signature layer for the image ``image_digest``.

    Checks, in order: media type, signature encoding, payload structure, signature under a
    trusted key or certificate, Rekor SET and its body (when present or required),
    certificate chain/SCT/identity, then the payload's binding to the image.
    """
    try:
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE:
            raise InvalidArgument(
                "layer.mediaType", f"got {layer.media_type!r}, expected {SIMPLE_SIGNING_MEDIA_TYPE}"
            )
        signature = _signature(layer.annotations.get(ANNOTATION_SIGNATURE))
        claims = parse_simple_signing(layer.payload)
        payload = layer.payload

        def verifies(key: PublicKey) -> bool:
            return key.verify(signature, payload, policy.hash_algorithm)

        def check_entry(entry: RekorEntry, signer: Signer) -> None:
            check_hashedrekord(
                entry, message_sha256=hashlib.sha256(payload).hexdigest(), signature=signature, signer=signer
            )

        signed = establish_signer(verifies, layer.evidence(), policy, trust, check_entry, now)
        check_claims(claims, image_digest=image_digest, policy=policy)
    except EvidenceError as exc:
        return Verification.failure(exc.message)
    return signed.verification(claims=claims)


def _signature(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"annotation {ANNOTATION_SIGNATURE}", "missing or empty")
    if len(value) > MAX_SIGNATURE_B64:
        raise InvalidArgument(f"annotation {ANNOTATION_SIGNATURE}", f"{len(value)} characters is too long")
    return b64decode_strict(value, f"annotation {ANNOTATION_SIGNATURE}")


def verify_attestation(
    envelope: bytes,
    *,
    digest: str,
    predicate_type: str | None,
    policy: SignaturePolicy,
    trust: TrustRoot,
    evidence: SignerEvidence | None = None,
    now: datetime | None = None,
) -> Verification:
    """Verify a DSSE in-toto attestation for the artifact or image ``digest``.

    The envelope must carry ``policy.threshold`` valid signatures by distinct trusted keys
    (key mode) or one by a trusted certificate; its statement (v0.1 or v1) must name
    ``digest`` among its subjects and have exactly ``predicate_type`` (when given). The
    predicate is returned for policy conditions.
    """
    try:
        parsed = parse_envelope(envelope)
        if parsed.payload_type != INTOTO_PAYLOAD_TYPE:
            raise InvalidArgument(
                "envelope.payloadType", f"got {parsed.payload_type!r}, expected {INTOTO_PAYLOAD_TYPE}"
            )
        signed = _envelope_signer(parsed, policy, trust, evidence or SignerEvidence(), now)
        statement = parse_statement(parsed.payload)
        check_statement(statement, digest=digest, predicate_type=predicate_type)
    except EvidenceError as exc:
        return Verification.failure(exc.message)
    return signed.verification(predicate_type=statement.predicate_type, predicate=statement.predicate)


def _envelope_signer(
    envelope: Envelope,
    policy: SignaturePolicy,
    trust: TrustRoot,
    evidence: SignerEvidence,
    now: datetime | None,
) -> Signed:
    message = envelope.pae()
    if not policy.key_mode and policy.threshold > 1:
        raise InvalidArgument(
            "policy.threshold", f"one signing certificate cannot meet a threshold of {policy.threshold}"
        )
    if policy.key_mode and policy.threshold > 1:
        signers = envelope.signers(policy.keys, policy.hash_algorithm)
        if len(signers) < policy.threshold:
            raise InvalidArgument(
                "envelope.signatures",
                f"{len(signers)} trusted signer(s), the policy requires {policy.threshold}",
            )

    def verifies(key: PublicKey) -> bool:
        return any(key.verify(sig, message, policy.hash_algorithm) for sig in envelope.signatures)

    def check_entry(entry: RekorEntry, signer: Signer) -> None:
        check_dsse_entry(entry, payload=envelope.payload, signatures=list(envelope.signatures), signer=signer)

    return establish_signer(verifies, evidence, policy, trust, check_entry, now)


def verify_statement(payload: bytes, *, digest: str, predicate_type: str | None) -> Verification:
    """Check an in-toto statement's claims only (no signature): subject digest and predicate type.

    For statements whose envelope signature was verified elsewhere.
    """
    try:
        statement = parse_statement(payload)
        check_statement(statement, digest=digest, predicate_type=predicate_type)
    except EvidenceError as exc:
        return Verification.failure(exc.message)
    return Verification(verified=True, predicate_type=statement.predicate_type, predicate=statement.predicate)


def verify_blob(
    signature: bytes,
    *,
    policy: SignaturePolicy,
    trust: TrustRoot,
    artifact: bytes | None = None,
    digest: str | None = None,
    evidence: SignerEvidence | None = None,
    now: datetime | None = None,
) -> Verification:
    """Verify a detached ``cosign sign-blob`` signature (raw DER/Ed25519 bytes) over an artifact.

    The artifact is given as bytes or as ``sha256:<hex>`` (ECDSA and RSA only, since Ed25519
    signs the whole message). Certificate, chain and Rekor SET bundle come in ``evidence``;
    a keyless certificate needs the SET for a verified signing time.

    Raises:
        InvalidArgument: neither or both of ``artifact`` and ``digest`` were given.
    """
    digest, hex_value = sha256_subject(artifact, digest, "blob signatures are checked")
    raw_digest = bytes.fromhex(hex_value)
    try:
        if len(signature) > MAX_SIGNATURE_B64:
            raise InvalidArgument("signature", f"{len(signature)} bytes is too long for a signature")

        def verifies(key: PublicKey) -> bool:
            if artifact is not None:
                return key.verify(signature, artifact, policy.hash_algorithm)
            return key.verify_digest(signature, raw_digest, policy.hash_algorithm or "sha256")

        def check_entry(entry: RekorEntry, signer: Signer) -> None:
            check_hashedrekord(entry, message_sha256=hex_value, signature=signature, signer=signer)

        signed = establish_signer(verifies, evidence or SignerEvidence(), policy, trust, check_entry, now)
    except EvidenceError as exc:
        return Verification.failure(exc.message)
    return signed.verification()

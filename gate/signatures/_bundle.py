"""Sigstore bundles (v0.1 to v0.3), verified offline against a trusted root.

Keyless bundles go through ``sigstore.verify.Verifier`` (pinned minor version) with two
adjustments, both in ``gate.signatures._sigstore.OfflineVerifier``: Rekor v1 ``intoto`` entries are accepted
like ``dsse`` ones (their integrated time is bound by the SET just the same), and TSA
validity ends are inclusive (see ``TrustRoot.sigstore_trusted_root``). The library has no
key-based ("managed key") path, so :func:`_verify_key_bundle` does that one with the
library's log-entry proof checks.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gate.errors import EvidenceError, InvalidArgument
from gate.signatures._certs import certificate_issuer
from gate.signatures._dsse import (
    INTOTO_PAYLOAD_TYPE,
    Envelope,
    check_statement,
    parse_statement,
    sha256_subject,
)
from gate.signatures._json import load_json
from gate.signatures._keys import PublicKey
from gate.signatures._policy import SignaturePolicy
from gate.signatures._rekor import RekorEntry, check_dsse_entry, check_hashedrekord, unix_time
from gate.signatures._results import Verification
from gate.signatures._trust import TrustRoot

if TYPE_CHECKING:
    from gate.signatures._sigstore import OfflineVerifier

MAX_BUNDLE_BYTES = 16 * 1024 * 1024


def rekor_entry(inner: Any) -> RekorEntry:
    """A bundle's log entry (sigstore model) as a :class:`RekorEntry` with its parsed body.

    Index and time are those :func:`signed_position` vouches for.

    Raises:
        InvalidArgument: the canonicalized body is not a JSON object.
    """
    body = load_json(inner.canonicalized_body, "bundle log entry", "canonicalizedBody is not JSON")
    if not isinstance(body, dict):
        raise InvalidArgument("bundle log entry", "canonicalizedBody is not an object")
    log_index, integrated = signed_position(inner)
    return RekorEntry(
        log_index=log_index,
        log_id=bytes(inner.log_id.key_id),
        integrated_time=integrated,
        body=body,
    )


def signed_position(inner: Any) -> tuple[int | None, datetime | None]:
    """The log index and integrated time of a verified bundle log entry, or None for each
    that nothing the log signed vouches for.

    ``integratedTime`` and ``logIndex`` are plain bundle fields: only the inclusion promise
    (SET) signs them, and the sigstore library checks it exactly when both it and a non-zero
    time are present. Without it a bundle can name any time (a v0.2+ bundle needs only the
    inclusion proof). The proof is computed at its own index, so a matching ``logIndex`` is
    proven too (Rekor v2, unsharded); a sharded v1 log's global index is not.

    Raises:
        InvalidArgument: the promised time is outside the years 1970 to 9999.
    """
    if inner.inclusion_promise and inner.integrated_time:
        return int(inner.log_index), unix_time(int(inner.integrated_time), "bundle log entry integratedTime")
    proof = inner.inclusion_proof
    if proof is not None and int(proof.log_index) == int(inner.log_index):
        return int(inner.log_index), None
    return None, None


def _verifier(trust: TrustRoot) -> OfflineVerifier:
    from gate.signatures._sigstore import OfflineVerifier

    root = trust.sigstore_trusted_root
    if root is None:
        raise InvalidArgument("trust", "verifying a Sigstore bundle needs a trusted_root.json")
    return trust.cached("sigstore-verifier", lambda: OfflineVerifier(trusted_root=root))


def verify_bundle(
    bundle: bytes,
    *,
    policy: SignaturePolicy,
    trust: TrustRoot,
    artifact: bytes | None = None,
    digest: str | None = None,
    predicate_type: str | None = None,
) -> Verification:
    """Verify a Sigstore bundle for an artifact, given as bytes or as ``sha256:<hex>`` only.

    Message-signature bundles verify a signature over the artifact; DSSE bundles verify the
    envelope and require the artifact's digest among the in-toto statement's subjects (and
    ``predicate_type`` exactly, when given). Either way the log entry's inclusion proof,
    checkpoint and SET, the signing time and the entry's consistency with the bundle are
    checked. Keyless bundles need ``policy.identities``, key-based bundles ``policy.keys``.

    Raises:
        InvalidArgument: neither or both of ``artifact`` and ``digest`` were given.
    """
    digest, _ = sha256_subject(artifact, digest, "bundles are verified")
    try:
        if len(bundle) > MAX_BUNDLE_BYTES:
            raise InvalidArgument("bundle", f"{len(bundle)} bytes exceeds {MAX_BUNDLE_BYTES}")
        if policy.key_mode:
            return _verify_key_bundle(bundle, policy, trust, digest, artifact, predicate_type)
        return _verify_keyless_bundle(bundle, policy, trust, digest, artifact, predicate_type)
    except EvidenceError as exc:
        return Verification.failure(exc.message)


def _library_failure(exc: Exception) -> Verification:
    text = str(exc).splitlines()[0] if str(exc) else ""
    if len(text) > 300:
        text = text[:300] + "..."
    return Verification.failure(f"bundle: {type(exc).__name__}: {text}".rstrip(": "))


def _verify_keyless_bundle(
    raw: bytes,
    policy: SignaturePolicy,
    trust: TrustRoot,
    digest: str,
    artifact: bytes | None,
    predicate_type: str | None,
) -> Verification:
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle
    from sigstore_models.common.v1 import HashAlgorithm

    from gate.signatures._sigstore import IdentityPolicy

    verifier = _verifier(trust)
    identity_policy = IdentityPolicy(policy.identities)
    # The library runs on hostile input; whatever it raises is a failed verification,
    # never an exception for gate's caller.
    try:
        bundle = Bundle.from_json(raw)
        envelope = bundle._dsse_envelope
        if envelope is not None:
            payload_type, payload = verifier.verify_dsse(bundle, identity_policy)
        else:
            if predicate_type is not None:
                raise InvalidArgument("bundle", "signs a blob, not an attestation with a predicate type")
            hashed: bytes | Hashed = (
                artifact
                if artifact is not None
                else Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest.partition(":")[2]))
            )
            verifier.verify_artifact(hashed, bundle, identity_policy)
    except EvidenceError:
        raise
    except Exception as exc:
        return _library_failure(exc)
    cert = bundle.signing_certificate
    matched = next(i for i in policy.identities if i.mismatch(cert) is None)
    log_index, integrated = signed_position(bundle.log_entry._inner)
    result = Verification(
        verified=True,
        signer=matched.matching_subject(cert),
        issuer=certificate_issuer(cert) or "",
        tlog_index=log_index,
        integrated_time=integrated,
    )
    if envelope is None:
        return result
    return _with_statement(result, payload_type, payload, digest, predicate_type)


def _with_statement(
    result: Verification, payload_type: str, payload: bytes, digest: str, predicate_type: str | None
) -> Verification:
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise InvalidArgument("envelope.payloadType", f"got {payload_type!r}, expected {INTOTO_PAYLOAD_TYPE}")
    statement = parse_statement(payload)
    check_statement(statement, digest=digest, predicate_type=predicate_type)
    return dataclasses.replace(result, predicate_type=statement.predicate_type, predicate=statement.predicate)


def _verify_key_bundle(
    raw: bytes,
    policy: SignaturePolicy,
    trust: TrustRoot,
    digest: str,
    artifact: bytes | None,
    predicate_type: str | None,
) -> Verification:
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.models import Bundle, TransparencyLogEntry
    from sigstore_models.bundle.v1 import Bundle as BundleModel

    root = trust.sigstore_trusted_root
    if root is None:
        raise InvalidArgument("trust", "verifying a Sigstore bundle needs a trusted_root.json")
    try:
        inner = BundleModel.from_json(raw)
        media_type = Bundle.BundleType(inner.media_type)
        material = inner.verification_material
        if material.public_key is None:
            raise InvalidArgument("bundle", "has no public key hint: signed with a certificate, not a key")
        if len(material.tlog_entries) != 1:
            raise InvalidArgument(
                "bundle", f"expected exactly one log entry, got {len(material.tlog_entries)}"
            )
        log_entry = TransparencyLogEntry(material.tlog_entries[0])
        if media_type == Bundle.BundleType.BUNDLE_0_1 and not log_entry._inner.inclusion_promise:
            raise InvalidArgument("bundle", "a v0.1 bundle must carry an inclusion promise")
        log_entry._verify(root.rekor_keyring(KeyringPurpose.VERIFY))
    except EvidenceError:
        raise
    except Exception as exc:
        return _library_failure(exc)
    entry = rekor_entry(log_entry._inner)
    hex_digest = digest.partition(":")[2]
    if inner.dsse_envelope is not None:
        return _verify_key_envelope(inner.dsse_envelope, entry, policy, digest, predicate_type)
    signature_message = inner.message_signature
    if signature_message is None:
        raise InvalidArgument("bundle", "has neither a message signature nor a DSSE envelope")
    if predicate_type is not None:
        raise InvalidArgument("bundle", "signs a blob, not an attestation with a predicate type")
    recorded = signature_message.message_digest
    if recorded is not None and bytes(recorded.digest).hex() != hex_digest:
        raise InvalidArgument("bundle.messageSignature.messageDigest", "does not match the artifact digest")
    signature = bytes(signature_message.signature)
    signer = _key_for_message(policy, signature, artifact, bytes.fromhex(hex_digest))
    check_hashedrekord(entry, message_sha256=hex_digest, signature=signature, signer=signer)
    return _key_result(signer, entry)


def _verify_key_envelope(
    model: Any, entry: RekorEntry, policy: SignaturePolicy, digest: str, predicate_type: str | None
) -> Verification:
    envelope = Envelope(
        payload_type=model.payload_type,
        payload=model.payload,
        signatures=tuple(s.sig for s in model.signatures),
    )
    signers = envelope.signers(policy.keys, policy.hash_algorithm)
    if len(signers) < policy.threshold:
        raise InvalidArgument(
            "bundle", f"{len(signers)} trusted key(s) signed the envelope, need {policy.threshold}"
        )
    if entry.body.get("kind") == "hashedrekord":
        # Rekor v2 logs a DSSE envelope as a hashedrekord over its PAE (one signature).
        if len(envelope.signatures) != 1:
            raise InvalidArgument("bundle", "a hashedrekord-logged envelope must have exactly one signature")
        pae_sha256 = hashlib.sha256(envelope.pae()).hexdigest()
        check_hashedrekord(
            entry, message_sha256=pae_sha256, signature=envelope.signatures[0], signer=signers[0]
        )
    else:
        check_dsse_entry(
            entry, payload=envelope.payload, signatures=list(envelope.signatures), signer=signers[0]
        )
    result = _key_result(signers[0], entry)
    return _with_statement(result, envelope.payload_type, envelope.payload, digest, predicate_type)


def _key_for_message(
    policy: SignaturePolicy, signature: bytes, artifact: bytes | None, digest: bytes
) -> PublicKey:
    for key in policy.keys:
        hash_name = policy.hash_algorithm or "sha256"
        if artifact is not None and key.verify(signature, artifact, policy.hash_algorithm):
            return key
        if key.verify_digest(signature, digest, hash_name):
            return key
    raise InvalidArgument(
        "bundle.messageSignature", f"no trusted key verifies the signature ({len(policy.keys)} tried)"
    )


def _key_result(key: PublicKey, entry: RekorEntry) -> Verification:
    return Verification(
        verified=True,
        signer=key.fingerprint,
        tlog_index=entry.log_index,
        integrated_time=entry.integrated_time,
    )


def key_hint(key: PublicKey) -> str:
    """The ``publicKey.hint`` cosign writes for ``key``: base64 of SHA-256 of its DER SPKI."""
    return base64.b64encode(hashlib.sha256(key.spki_der).digest()).decode()

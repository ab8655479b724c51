"""Sigstore bundles (v0.1 to v0.3), verified offline against a trusted root.

Keyless bundles go through ``sigstore.verify.Verifier`` (pinned minor version) with two
adjustments, both in ``gate.signatures._sigstore.OfflineVerifier``: Rekor v1 ``intoto`` entries are accepted
like ``dsse`` ones (their integrated time is bound by the SET just the same), and TSA
validity ends are inclusive (see ``TrustRoot.sigstore_trusted_root``). The library has no
key-based ("managed key") path, so :func:`_verify_key_bundle` does that one with the
library's log-entry proof checks. RFC 3161 timestamps of both kinds are verified in
``gate.signatures._timestamp``, which also gives their time (the library reports none).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gate.errors import EvidenceError, InvalidArgument
from gate.signatures._certs import certificate_issuer
from gate.signatures._dsse import (
    INTOTO_PAYLOAD_TYPE,
    Envelope,
    check_statement,
    parse_statement,
    sha256_subject,
)
from gate.signatures._json import check_json_shape, load_json
from gate.signatures._keys import PublicKey
from gate.signatures._policy import SignaturePolicy
from gate.signatures._rekor import RekorEntry, check_dsse_entry, check_hashedrekord, unix_time
from gate.signatures._results import Verification
from gate.signatures._timestamp import verified_timestamp
from gate.signatures._trust import TrustRoot

if TYPE_CHECKING:
    from gate.signatures._sigstore import OfflineVerifier

MAX_BUNDLE_BYTES = 16 * 1024 * 1024
# No list or object of a bundle needs more: an inclusion proof of a tree of 2^64 entries has
# 64 hashes; sigstore clients accept 32 timestamps, gate 16 envelope signatures, one log entry.
MAX_BUNDLE_MEMBERS = 64
# Nor a bundle more lists and objects (a real one has about 30).
MAX_BUNDLE_CONTAINERS = 1024


def entry_body(inner: Any) -> dict[str, Any]:
    """A bundle log entry's (sigstore model) canonicalized body, parsed.

    Raises:
        InvalidArgument: the canonicalized body is not a JSON object.
    """
    body = load_json(inner.canonicalized_body, "bundle log entry", "canonicalizedBody is not JSON")
    if not isinstance(body, dict):
        raise InvalidArgument("bundle log entry", "canonicalizedBody is not an object")
    return body


def rekor_entry(inner: Any, trust: TrustRoot) -> RekorEntry:
    """A verified bundle log entry as a :class:`RekorEntry` placed by :func:`log_position`.

    Raises:
        InvalidArgument: the canonicalized body is not a JSON object.
    """
    position = log_position(inner, trust)
    return RekorEntry(
        log_index=position.index,
        log_id=bytes(inner.log_id.key_id),
        integrated_time=position.integrated_time,
        body=entry_body(inner),
        tree=position.tree,
        tree_index=position.tree_index,
    )


@dataclass(frozen=True)
class LogPosition:
    """Where a verified bundle log entry sits, as far as the log's own signatures say.

    ``index`` and ``integrated_time`` are the log's global index and time, or None when
    nothing the log signed vouches for them; ``tree`` and ``tree_index`` are the checkpoint
    origin and the index the inclusion proof was verified at.
    """

    index: int | None
    integrated_time: datetime | None
    tree: str = ""
    tree_index: int | None = None


def log_position(inner: Any, trust: TrustRoot) -> LogPosition:
    """The position of a bundle log entry whose proofs the sigstore library verified.

    ``integratedTime`` and ``logIndex`` are plain bundle fields: only the inclusion promise
    (SET) signs them, and the sigstore library checks it exactly when both it and a non-zero
    time are present. Without it a bundle can name any time (a v0.2+ bundle needs only the
    inclusion proof), and any index: the proof is computed in the tree its checkpoint names,
    at the tree's own index. A sharded Rekor v1 log starts each shard's tree at zero under
    the same key (the trust root says nothing of shard offsets), so a proven tree index is
    the global one only when the trust root's log id pins that very tree (see
    :func:`_tree_is_the_log`); otherwise it is reported as what it is, an index in ``tree``.

    Raises:
        InvalidArgument: the promised time is outside the years 1970 to 9999.
    """
    tree, tree_index = "", None
    proof = inner.inclusion_proof
    if proof is not None and proof.checkpoint is not None:
        tree, tree_index = _checkpoint_origin(proof.checkpoint.envelope), int(proof.log_index)
    if inner.inclusion_promise and inner.integrated_time:
        when = unix_time(int(inner.integrated_time), "bundle log entry integratedTime")
        return LogPosition(int(inner.log_index), when, tree, tree_index)
    if tree_index is not None and _tree_is_the_log(tree, bytes(inner.log_id.key_id), trust):
        return LogPosition(tree_index, None, tree, tree_index)
    return LogPosition(None, None, tree, tree_index)


def _checkpoint_origin(envelope: str) -> str:
    from sigstore._internal.rekor.checkpoint import SignedCheckpoint

    # The checkpoint was verified before this is called, so parsing it again fails only if
    # the library changed; refusing then beats reporting an index in a tree nobody named.
    try:
        return str(SignedCheckpoint.from_text(envelope).checkpoint.origin)
    except Exception:
        raise InvalidArgument(
            "bundle log entry", "inclusion proof checkpoint has no readable origin"
        ) from None


def _tree_is_the_log(origin: str, log_id: bytes, trust: TrustRoot) -> bool:
    """True when the trusted log ``log_id`` is exactly the tree named ``origin``.

    A Rekor v2 log (one tree per log, Ed25519 checkpoints) is identified in the trusted
    root by its C2SP signed-note key id, SHA-256(origin || 0x0A || 0x01 || raw key), which
    commits to the origin; a Rekor v1 log id is SHA-256 of the key alone and is shared by
    all of the log's shards.
    """
    key = trust.rekor_key(log_id)
    if key is None or not isinstance(key.key.key, ed25519.Ed25519PublicKey):
        return False
    raw = key.key.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest() == log_id


def _verifier(trust: TrustRoot) -> OfflineVerifier:
    from gate.signatures._sigstore import OfflineVerifier

    root = trust.sigstore_trusted_root
    if root is None:
        raise InvalidArgument("trust", "verifying a Sigstore bundle needs a trusted_root.json")

    def build() -> OfflineVerifier:
        # The library refuses a root with no certificate authority valid by now, or no log.
        try:
            return OfflineVerifier(trusted_root=root)
        except Exception as exc:
            raise InvalidArgument(
                "trust",
                "got a trusted_root.json that cannot verify keyless bundles "
                f"({type(exc).__name__}: {_first_line(exc)}), expected one with a certificate "
                "authority valid by now and a transparency log",
            ) from None

    return trust.cached("sigstore-verifier", build)


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
        check_json_shape(
            bundle, "bundle", max_members=MAX_BUNDLE_MEMBERS, max_containers=MAX_BUNDLE_CONTAINERS
        )
        if policy.key_mode:
            return _verify_key_bundle(bundle, policy, trust, digest, artifact, predicate_type)
        return _verify_keyless_bundle(bundle, policy, trust, digest, artifact, predicate_type)
    except EvidenceError as exc:
        return Verification.failure(exc.message)


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text[:300] + "..." if len(text) > 300 else text


def _library_failure(exc: Exception) -> Verification:
    return Verification.failure(f"bundle: {type(exc).__name__}: {_first_line(exc)}".rstrip(": "))


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
    position = log_position(bundle.log_entry._inner, trust)
    result = Verification(
        verified=True,
        signer=matched.matching_subject(cert),
        issuer=certificate_issuer(cert) or "",
        tlog_index=position.index,
        integrated_time=position.integrated_time,
        tlog_tree=position.tree,
        tlog_tree_index=position.tree_index,
        timestamp=_keyless_timestamp(bundle, trust),
    )
    if envelope is None:
        return result
    return _with_statement(result, payload_type, payload, digest, predicate_type)


def _keyless_timestamp(bundle: Any, trust: TrustRoot) -> datetime | None:
    """The earliest time the RFC 3161 timestamps of a verified keyless bundle prove.

    The library verifies them (and the certificate chain at each time it accepts) but
    returns no time, and it skips a timestamp it cannot verify when another time remains.
    So they are verified again here as for a key-based bundle, over the bundle's signature
    (the one the certificate verified, as the library timestamps it): one that does not
    hold fails the bundle instead of being skipped.

    Raises:
        InvalidArgument: a timestamp does not verify against the trust root's TSAs.
    """
    return verified_timestamp(_timestamps(bundle._inner.verification_material), [bundle.signature], trust)


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
    entry = rekor_entry(log_entry._inner, trust)
    timestamps = _timestamps(material)
    hex_digest = digest.partition(":")[2]
    if inner.dsse_envelope is not None:
        return _verify_key_envelope(
            inner.dsse_envelope, entry, policy, digest, predicate_type, timestamps, trust
        )
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
    return _key_result(signer, entry, verified_timestamp(timestamps, [signature], trust))


def _timestamps(material: Any) -> list[bytes]:
    data = material.timestamp_verification_data
    if data is None or not data.rfc3161_timestamps:
        return []
    return [bytes(item.signed_timestamp) for item in data.rfc3161_timestamps]


def _verify_key_envelope(
    model: Any,
    entry: RekorEntry,
    policy: SignaturePolicy,
    digest: str,
    predicate_type: str | None,
    timestamps: list[bytes],
    trust: TrustRoot,
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
    # Only a signature a trusted key made may carry the time: a timestamp over any other
    # bytes in the envelope could be an old token for an unrelated signature.
    message = envelope.pae()
    hash_name = policy.hash_algorithm
    trusted = [sig for sig in envelope.signatures if any(k.verify(sig, message, hash_name) for k in signers)]
    result = _key_result(signers[0], entry, verified_timestamp(timestamps, trusted, trust))
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


def _key_result(key: PublicKey, entry: RekorEntry, timestamp: datetime | None) -> Verification:
    return Verification(
        verified=True,
        signer=key.fingerprint,
        tlog_index=entry.log_index,
        integrated_time=entry.integrated_time,
        tlog_tree=entry.tree,
        tlog_tree_index=entry.tree_index,
        timestamp=timestamp,
    )


def key_hint(key: PublicKey) -> str:
    """The ``publicKey.hint`` cosign writes for ``key``: base64 of SHA-256 of its DER SPKI."""
    return base64.b64encode(hashlib.sha256(key.spki_der).digest()).decode()

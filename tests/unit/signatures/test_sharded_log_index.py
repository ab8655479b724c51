"""A bundle's reported log index: global only when the log signed it or the proof's tree is the log.

A sharded Rekor v1 log proves an entry at its index in the shard's tree; the global index
(earlier shards' entries plus that) is only in the SET. These bundles are built on the fly
with real inclusion proofs in multi-entry trees (``support.Shard``), plus the real corpus
bundle of a sharded production log.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gate.signatures import SignaturePolicy, TrustRoot, key_hint, load_public_key, verify_bundle
from gate.signatures._sign import SigningKey
from tests.unit.signatures.support import Rekor, Shard, signing_key, trusted_log, trusted_root_json

SIGSTORE = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "sigstore"
MANAGED_KEY = SIGSTORE / "test" / "assets" / "bundle-verify" / "managed-key-happy-path"
ARTIFACT = b"the artifact"
DIGEST = "sha256:" + hashlib.sha256(ARTIFACT).hexdigest()
# A shard that starts after a million entries of earlier shards.
SHARD_START = 1_000_000


def _signed(key: SigningKey, *, v2: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """A hashedrekord body (Rekor v1 0.0.1 or v2 0.0.2) and message-signature content."""
    signature = key.sign(ARTIFACT)
    sha = hashlib.sha256(ARTIFACT)
    body: dict[str, Any]
    if v2:
        body = {
            "apiVersion": "0.0.2",
            "kind": "hashedrekord",
            "spec": {
                "hashedRekordV002": {
                    "data": {"algorithm": "SHA2_256", "digest": base64.b64encode(sha.digest()).decode()},
                    "signature": {
                        "content": base64.b64encode(signature).decode(),
                        "verifier": {
                            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                            "publicKey": {"rawBytes": base64.b64encode(key.public.spki_der).decode()},
                        },
                    },
                }
            },
        }
    else:
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": sha.hexdigest()}},
                "signature": {
                    "content": base64.b64encode(signature).decode(),
                    "publicKey": {"content": base64.b64encode(key.public.pem()).decode()},
                },
            },
        }
    content = {
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": base64.b64encode(sha.digest()).decode()},
            "signature": base64.b64encode(signature).decode(),
        }
    }
    return body, content


def _without_promise(bundle: bytes, **changes: str) -> bytes:
    document = json.loads(bundle)
    entry = document["verificationMaterial"]["tlogEntries"][0]
    del entry["inclusionPromise"]
    del entry["integratedTime"]
    entry.update(changes)
    return json.dumps(document).encode()


def test_a_shard_bundle_reports_the_set_signed_global_index_and_the_proven_shard_index() -> None:
    rekor, key = Rekor.create(), signing_key()
    shard = Shard.v1(rekor, tree_id=7)
    body, content = _signed(key, v2=False)
    bundle = shard.bundle(
        body, content, key_hint(key.public), tree_index=5, tree_size=11, log_index=SHARD_START + 5
    )
    trust = TrustRoot.from_trusted_root_json(trusted_root_json(rekor))
    result = verify_bundle(bundle, policy=SignaturePolicy(keys=(key.public,)), trust=trust, digest=DIGEST)
    assert result.verified, result.reason
    assert (result.tlog_index, result.tlog_tree, result.tlog_tree_index) == (
        SHARD_START + 5,
        "rekor.test - 7",
        5,
    )


def test_a_forged_log_index_equal_to_the_shard_index_is_not_reported_as_global() -> None:
    rekor, key = Rekor.create(), signing_key()
    shard = Shard.v1(rekor, tree_id=7)
    body, content = _signed(key, v2=False)
    genuine = shard.bundle(
        body, content, key_hint(key.public), tree_index=5, tree_size=11, log_index=SHARD_START + 5
    )
    # Without the SET nothing signs logIndex: set it to the shard-local index the proof checks.
    forged = _without_promise(genuine, logIndex="5")
    trust = TrustRoot.from_trusted_root_json(trusted_root_json(rekor))
    result = verify_bundle(forged, policy=SignaturePolicy(keys=(key.public,)), trust=trust, digest=DIGEST)
    assert result.verified, result.reason
    assert result.tlog_index is None
    assert (result.tlog_tree, result.tlog_tree_index) == ("rekor.test - 7", 5)


def test_the_real_sharded_log_bundle_with_a_forged_index_reports_only_its_tree_index() -> None:
    document = json.loads((MANAGED_KEY / "bundle.sigstore.json").read_bytes())
    entry = document["verificationMaterial"]["tlogEntries"][0]
    proof = entry["inclusionProof"]
    del entry["inclusionPromise"]
    entry["logIndex"] = proof["logIndex"]
    policy = SignaturePolicy(keys=(load_public_key((MANAGED_KEY / "key.pub").read_bytes()),))
    trust = TrustRoot.from_trusted_root_json(
        (SIGSTORE / "trust" / "production-trusted_root.json").read_bytes()
    )
    result = verify_bundle(
        json.dumps(document).encode(),
        policy=policy,
        trust=trust,
        artifact=(MANAGED_KEY.parent / "a.txt").read_bytes(),
    )
    assert result.verified, result.reason
    assert result.tlog_index is None
    origin = proof["checkpoint"]["envelope"].split("\n", 1)[0]
    assert (result.tlog_tree, result.tlog_tree_index) == (origin, int(proof["logIndex"]))


def _v2_trust(shard: Shard, key: ed25519.Ed25519PrivateKey) -> TrustRoot:
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    log = trusted_log(spki, shard.key_id, "PKIX_ED25519")
    return TrustRoot.from_trusted_root_json(trusted_root_json(Rekor.create(), tlogs=[log]))


def test_a_rekor_v2_log_pinned_by_its_origin_reports_the_proven_index_as_global() -> None:
    log_key, key = ed25519.Ed25519PrivateKey.generate(), signing_key()
    shard = Shard.v2(log_key, "log2030-1.rekor.test")
    body, content = _signed(key, v2=True)
    bundle = shard.bundle(body, content, key_hint(key.public), tree_index=6, tree_size=9, log_index=6)
    result = verify_bundle(
        bundle, policy=SignaturePolicy(keys=(key.public,)), trust=_v2_trust(shard, log_key), digest=DIGEST
    )
    assert result.verified, result.reason
    assert (result.tlog_index, result.integrated_time) == (6, None)
    assert (result.tlog_tree, result.tlog_tree_index) == ("log2030-1.rekor.test", 6)


def test_a_v2_checkpoint_naming_another_tree_than_the_trusted_log_proves_no_global_index() -> None:
    log_key, key = ed25519.Ed25519PrivateKey.generate(), signing_key()
    # The log's key also signed a checkpoint for a tree the trust root does not name.
    shard = Shard.v2(log_key, "log2030-2.rekor.test", named="log2030-1.rekor.test")
    body, content = _signed(key, v2=True)
    bundle = shard.bundle(body, content, key_hint(key.public), tree_index=6, tree_size=9, log_index=6)
    result = verify_bundle(
        bundle, policy=SignaturePolicy(keys=(key.public,)), trust=_v2_trust(shard, log_key), digest=DIGEST
    )
    assert result.verified, result.reason
    assert result.tlog_index is None
    assert (result.tlog_tree, result.tlog_tree_index) == ("log2030-2.rekor.test", 6)

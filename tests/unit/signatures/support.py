"""Test material made on the fly: keys, a private CA, Fulcio-like certificates, Rekor SETs."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gate.signatures import SignatureLayer, TrustRoot, load_private_key, sign_simple_signing
from gate.signatures._keys import public_key_from_crypto
from gate.signatures._sign import SigningKey
from gate.signatures._trust import CertificateAuthority, LogKey, Validity

DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def signing_key(curve: ec.EllipticCurve | None = None) -> SigningKey:
    private = ec.generate_private_key(curve or ec.SECP256R1())
    if isinstance(private.curve, ec.SECP256R1):
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return load_private_key(pem)
    return SigningKey(private=private, public=public_key_from_crypto(private.public_key()))


def signed_layer(
    key: SigningKey, digest: str = DIGEST, ref: str = "registry.example/team/app"
) -> SignatureLayer:
    payload, signature = sign_simple_signing(ref, digest, key)
    return SignatureLayer(SIMPLE_SIGNING, payload, {"dev.cosignproject.cosign/signature": signature})


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@dataclass
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def make_ca(
    common: str = "Test Root", *, key_usage: bool = True, issuer: Authority | None = None
) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(issuer.cert.subject if issuer else _name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=365))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if key_usage:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    signer = issuer.key if issuer else key
    return Authority(key, builder.sign(signer, hashes.SHA256()))


def make_leaf(
    issuer: Authority,
    *,
    email: str = "dev@example.com",
    oidc_issuer: str | None = "https://issuer.example",
    legacy_issuer: str | None = None,
    not_before: datetime = NOW - timedelta(days=1),
    lifetime: timedelta = timedelta(days=30),
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    )
    if oidc_issuer is not None:
        encoded = oidc_issuer.encode()
        der = bytes([0x0C, len(encoded)]) + encoded
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8"), der), critical=False
        )
    if legacy_issuer is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1"), legacy_issuer.encode()
            ),
            critical=False,
        )
    return key, builder.sign(issuer.key, hashes.SHA256())


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Rekor:
    """A fake Rekor log: its key signs SETs over hashedrekord bodies."""

    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls) -> Rekor:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def log_id(self) -> str:
        spki = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(spki).hexdigest()

    def log_key(self, validity: Validity | None = None) -> LogKey:
        return LogKey(
            key=public_key_from_crypto(self.key.public_key()),
            log_id=bytes.fromhex(self.log_id),
            validity=validity or Validity(),
        )

    def trust(self, **kwargs: object) -> TrustRoot:
        return TrustRoot(rekor=(self.log_key(),), **kwargs)  # type: ignore[arg-type]

    def bundle(
        self,
        *,
        payload: bytes,
        signature: bytes,
        signer_pem: bytes,
        integrated: datetime = NOW,
        index: int = 42,
        tamper: dict[str, object] | None = None,
    ) -> str:
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
                "signature": {
                    "content": base64.b64encode(signature).decode(),
                    "publicKey": {"content": base64.b64encode(signer_pem).decode()},
                },
            },
        }
        entry: dict[str, object] = {
            "body": base64.b64encode(json.dumps(body).encode()).decode(),
            "integratedTime": int(integrated.timestamp()),
            "logID": self.log_id,
            "logIndex": index,
        }
        set_signature = self.key.sign(rfc8785.dumps(entry), ec.ECDSA(hashes.SHA256()))
        entry.update(tamper or {})
        return json.dumps(
            {"SignedEntryTimestamp": base64.b64encode(set_signature).decode(), "Payload": entry}
        )


def authority(ca: Authority, *intermediates: Authority) -> CertificateAuthority:
    return CertificateAuthority(
        (*(i.cert for i in intermediates), ca.cert), name=ca.cert.subject.rfc4514_string()
    )


def trusted_log(spki: bytes, key_id: bytes, key_details: str = "PKIX_ECDSA_P256_SHA_256") -> dict[str, Any]:
    """A trusted_root.json ``tlogs`` item for a fake log."""
    return {
        "baseUrl": "https://rekor.test",
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": base64.b64encode(spki).decode(),
            "keyDetails": key_details,
            "validFor": {"start": "2020-01-01T00:00:00Z"},
        },
        "logId": {"keyId": base64.b64encode(key_id).decode()},
    }


def trusted_root_json(
    rekor: Rekor,
    *,
    timestamp_authorities: list[dict[str, Any]] | None = None,
    tlogs: list[dict[str, Any]] | None = None,
) -> bytes:
    """A trusted_root.json trusting only this fake Rekor log (or ``tlogs``) and those TSAs."""
    spki = rekor.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    root = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": tlogs if tlogs is not None else [trusted_log(spki, bytes.fromhex(rekor.log_id))],
        "certificateAuthorities": [],
        "ctlogs": [],
        "timestampAuthorities": timestamp_authorities or [],
    }
    return json.dumps(root).encode()


def _leaf(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _tree_hash(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _tree_hash(leaves[:split]) + _tree_hash(leaves[split:])).digest()


def _audit_path(leaves: list[bytes], index: int) -> list[bytes]:
    # RFC 6962 section 2.1.1, leaf to root: split at the largest power of two below the size.
    if len(leaves) == 1:
        return []
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < split:
        return [*_audit_path(leaves[:split], index), _tree_hash(leaves[split:])]
    return [*_audit_path(leaves[split:], index - split), _tree_hash(leaves[:split])]


@dataclass
class Shard:
    """One tree of a fake log: its checkpoint origin, signing key and log id.

    ``set_key`` also signs inclusion promises (Rekor v1 logs do; Rekor v2 logs do not).
    """

    origin: str
    key_id: bytes
    sign_note: Callable[[bytes], bytes]
    set_key: ec.EllipticCurvePrivateKey | None = None

    @classmethod
    def v1(cls, rekor: Rekor, tree_id: int) -> Shard:
        """A shard of a Rekor v1 log: every shard shares the key and log id."""
        return cls(
            origin=f"rekor.test - {tree_id}",
            key_id=bytes.fromhex(rekor.log_id),
            sign_note=lambda note: rekor.key.sign(note, ec.ECDSA(hashes.SHA256())),
            set_key=rekor.key,
        )

    @classmethod
    def v2(cls, key: ed25519.Ed25519PrivateKey, origin: str, *, named: str | None = None) -> Shard:
        """A Rekor v2 log (one tree), its id the C2SP key id of ``named`` (default ``origin``)."""
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        key_id = hashlib.sha256((named or origin).encode() + b"\n\x01" + raw).digest()
        return cls(origin=origin, key_id=key_id, sign_note=key.sign)

    def bundle(
        self,
        body: dict[str, object],
        content: dict[str, object],
        hint: str,
        *,
        tree_index: int,
        tree_size: int,
        log_index: int,
    ) -> bytes:
        """A v0.3 key-based bundle for ``body`` at ``tree_index`` of this tree; global ``log_index``.

        The other leaves are filler entries. With a ``set_key`` the entry carries a SET over
        ``log_index``, else no inclusion promise and no integrated time.
        """
        canonical = json.dumps(body, separators=(",", ":")).encode()
        leaves = [_leaf(b"filler %d" % i) for i in range(tree_size)]
        leaves[tree_index] = _leaf(canonical)
        root_hash = _tree_hash(leaves)
        note = f"{self.origin}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n"
        signed = base64.b64encode(self.key_id[:4] + self.sign_note(note.encode())).decode()
        entry: dict[str, object] = {
            "logIndex": str(log_index),
            "logId": {"keyId": base64.b64encode(self.key_id).decode()},
            "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
            "inclusionProof": {
                "logIndex": str(tree_index),
                "rootHash": base64.b64encode(root_hash).decode(),
                "treeSize": str(tree_size),
                "hashes": [base64.b64encode(h).decode() for h in _audit_path(leaves, tree_index)],
                "checkpoint": {"envelope": f"{note}\n\u2014 {self.origin.split(' ')[0]} {signed}\n"},
            },
            "canonicalizedBody": base64.b64encode(canonical).decode(),
        }
        if self.set_key is not None:
            integrated = int(NOW.timestamp())
            promised = {
                "body": base64.b64encode(canonical).decode(),
                "integratedTime": integrated,
                "logID": self.key_id.hex(),
                "logIndex": log_index,
            }
            set_signature = self.set_key.sign(rfc8785.dumps(promised), ec.ECDSA(hashes.SHA256()))
            entry["integratedTime"] = str(integrated)
            entry["inclusionPromise"] = {"signedEntryTimestamp": base64.b64encode(set_signature).decode()}
        bundle = {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": [entry]},
            **content,
        }
        return json.dumps(bundle).encode()


def key_bundle(rekor: Rekor, body: dict[str, object], content: dict[str, object], hint: str) -> bytes:
    """A v0.3 key-based bundle whose one-entry log proves ``body`` (inclusion proof, checkpoint, SET)."""
    canonical = json.dumps(body, separators=(",", ":")).encode()
    root_hash = hashlib.sha256(b"\x00" + canonical).digest()
    note = f"rekor.test - 1\n1\n{base64.b64encode(root_hash).decode()}\n"
    note_sig = rekor.key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
    hint_sig = base64.b64encode(bytes.fromhex(rekor.log_id)[:4] + note_sig).decode()
    integrated = int(NOW.timestamp())
    set_payload = {
        "body": base64.b64encode(canonical).decode(),
        "integratedTime": integrated,
        "logID": rekor.log_id,
        "logIndex": 0,
    }
    entry = {
        "logIndex": "0",
        "logId": {"keyId": base64.b64encode(bytes.fromhex(rekor.log_id)).decode()},
        "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
        "integratedTime": str(integrated),
        "inclusionPromise": {
            "signedEntryTimestamp": base64.b64encode(
                rekor.key.sign(rfc8785.dumps(set_payload), ec.ECDSA(hashes.SHA256()))
            ).decode()
        },
        "inclusionProof": {
            "logIndex": "0",
            "rootHash": base64.b64encode(root_hash).decode(),
            "treeSize": "1",
            "hashes": [],
            "checkpoint": {"envelope": f"{note}\n\u2014 rekor.test {hint_sig}\n"},
        },
        "canonicalizedBody": base64.b64encode(canonical).decode(),
    }
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": [entry]},
        **content,
    }
    return json.dumps(bundle).encode()


def hashedrekord_body(artifact: bytes, signature: bytes, signer_pem: bytes) -> dict[str, object]:
    """The Rekor ``hashedrekord`` entry body of ``signature`` over ``artifact`` by ``signer_pem``."""
    return {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(artifact).hexdigest()}},
            "signature": {
                "content": base64.b64encode(signature).decode(),
                "publicKey": {"content": base64.b64encode(signer_pem).decode()},
            },
        },
    }


def dsse_body_and_envelope(
    payload: bytes, payload_type: str, signature: bytes, verifier_pem: bytes
) -> tuple[dict[str, object], dict[str, object]]:
    """The Rekor ``dsse`` entry body and the bundle's ``dsseEnvelope`` of one signature."""
    body: dict[str, object] = {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [
                {
                    "signature": base64.b64encode(signature).decode(),
                    "verifier": base64.b64encode(verifier_pem).decode(),
                }
            ],
        },
    }
    content: dict[str, object] = {
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": payload_type,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        }
    }
    return body, content

"""Test material made on the fly: keys, a private CA, Fulcio-like certificates, Rekor SETs."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
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


def trusted_root_json(rekor: Rekor) -> bytes:
    """A trusted_root.json trusting only this fake Rekor log."""
    spki = rekor.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    log = {
        "baseUrl": "https://rekor.test",
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": base64.b64encode(spki).decode(),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": {"start": "2020-01-01T00:00:00Z"},
        },
        "logId": {"keyId": base64.b64encode(bytes.fromhex(rekor.log_id)).decode()},
    }
    root = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [log],
        "certificateAuthorities": [],
        "ctlogs": [],
        "timestampAuthorities": [],
    }
    return json.dumps(root).encode()


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

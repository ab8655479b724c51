"""Public keys: every encoding cosign accepts, fingerprints, and hash/padding choices."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from gate.errors import InvalidArgument
from gate.signatures import load_public_key

COSIGN = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "cosign" / "cases"


def _spki(key: object) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]


def test_pem_pkix_der_and_pkcs1_forms_load_to_the_same_key() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key()
    forms = [
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1),
    ]
    fingerprints = {load_public_key(form).fingerprint for form in forms}
    assert fingerprints == {"sha256:" + hashlib.sha256(_spki(public)).hexdigest()}
    assert load_public_key(forms[0]).key_type == "rsa-2048"


@pytest.mark.parametrize(
    ("case", "file", "key_type"),
    [
        ("cosign-pubkey-der-ecdsa-p256", "key.der", "ecdsa-p256"),
        ("cosign-pubkey-pkcs1-rsa", "key.pem", "rsa-4096"),
        ("cosign-pubkey-pkix-rsa4096", "key.pem", "rsa-4096"),
    ],
)
def test_corpus_keys_load_with_their_type(case: str, file: str, key_type: str) -> None:
    assert load_public_key((COSIGN / case / file).read_bytes()).key_type == key_type


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a key",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        b"\x30\x03\x02\x01\x01",
    ],
)
def test_garbage_is_an_invalid_argument(data: bytes) -> None:
    with pytest.raises(InvalidArgument, match=r"^key: not a PEM or DER public key"):
        load_public_key(data)


def test_oversized_input_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidArgument, match="too large"):
        load_public_key(b"A" * 20000)


def test_ecdsa_uses_the_curve_hash_then_sha256_but_never_a_wrong_policy_hash() -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    key = load_public_key(_spki(private.public_key()))
    sha384_sig = private.sign(b"data", ec.ECDSA(hashes.SHA384()))
    sha256_sig = private.sign(b"data", ec.ECDSA(hashes.SHA256()))
    assert key.default_hash() == "sha384"
    assert key.verify(sha384_sig, b"data")
    assert key.verify(sha256_sig, b"data")
    assert not key.verify(sha256_sig, b"data", "sha384")
    assert not key.verify(sha384_sig, b"data", "sha256")
    assert not key.verify(sha384_sig, b"other")


def test_rsa_accepts_pkcs1v15_and_pss() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = load_public_key(_spki(private.public_key()))
    pkcs1 = private.sign(b"data", padding.PKCS1v15(), hashes.SHA256())
    pss = private.sign(
        b"data", padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH), hashes.SHA256()
    )
    assert key.verify(pkcs1, b"data")
    assert key.verify(pss, b"data")
    assert not key.verify(pkcs1[:-1], b"data")


def test_ed25519_signs_whole_messages_only() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    key = load_public_key(_spki(private.public_key()))
    signature = private.sign(b"data")
    assert key.key_type == "ed25519"
    assert key.verify(signature, b"data")
    assert not key.verify(signature, b"datA")
    assert not key.verify_digest(signature, hashlib.sha256(b"data").digest(), "sha256")


def test_digest_verification_matches_message_verification() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = load_public_key(_spki(private.public_key()))
    digest = hashlib.sha256(b"artifact").digest()
    signature = private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    assert key.verify(signature, b"artifact")
    assert key.verify_digest(signature, digest, "sha256")
    assert not key.verify_digest(signature, digest[:-1], "sha256")
    assert not key.verify_digest(signature, hashlib.sha256(b"other").digest(), "sha256")


@pytest.mark.parametrize(
    "mutate", [lambda s: s[:-1], lambda s: s + b"\x00", lambda s: b"", lambda s: bytes(len(s))]
)
def test_malformed_signatures_are_false_not_exceptions(mutate: object) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = load_public_key(_spki(private.public_key()))
    signature = private.sign(b"data", ec.ECDSA(hashes.SHA256()))
    assert not key.verify(mutate(signature), b"data")  # type: ignore[operator]

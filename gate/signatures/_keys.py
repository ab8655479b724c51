"""Public keys: loading (PEM/DER, PKIX/PKCS#1), fingerprints and signature checks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from gate.errors import InvalidArgument

# A PEM public key is well under 4 KiB even for RSA-8192; anything larger is not a key.
MAX_KEY_BYTES = 16 * 1024

VerifyingKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

# The hash a curve is used with when the policy does not say (cosign's key details pair them so).
_CURVE_HASH: dict[str, str] = {"secp256r1": "sha256", "secp384r1": "sha384", "secp521r1": "sha512"}
_CURVE_NAME: dict[str, str] = {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}


def hash_algorithm(name: str) -> hashes.HashAlgorithm:
    """The hash named ``sha256``, ``sha384`` or ``sha512``.

    Raises:
        InvalidArgument: for any other name.
    """
    try:
        return _HASHES[name.lower().replace("-", "")]()
    except KeyError:
        raise InvalidArgument("hash_algorithm", f"expected sha256, sha384 or sha512, got {name!r}") from None


@dataclass(frozen=True)
class PublicKey:
    """A verifying key with its fingerprint (``sha256:`` of the DER SubjectPublicKeyInfo)."""

    key: VerifyingKey = field(repr=False, compare=False)
    spki_der: bytes = field(repr=False)
    fingerprint: str
    key_type: str

    def default_hash(self) -> str:
        """The hash used with this key when the policy names none."""
        if isinstance(self.key, ec.EllipticCurvePublicKey):
            return _CURVE_HASH.get(self.key.curve.name, "sha256")
        return "sha256"

    def pem(self) -> bytes:
        """The key as PEM ``PUBLIC KEY`` (what cosign writes into Rekor entries)."""
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verify(self, signature: bytes, data: bytes, hash_name: str | None = None) -> bool:
        """True when ``signature`` is valid over ``data``; never raises for a bad signature.

        ECDSA and RSA use ``hash_name`` when given. Otherwise the key's :meth:`default_hash`
        is tried, then SHA-256: nothing in a cosign signature names the hash, and P-384 keys
        signing SHA-256 exist (both hashes are collision resistant, so trying both admits no
        forgery). RSA accepts PKCS#1 v1.5 and PSS (cosign signs with either).
        """
        if hash_name is not None:
            return self._check(signature, data, hash_name, prehashed=False)
        default = self.default_hash()
        if self._check(signature, data, default, prehashed=False):
            return True
        return default != "sha256" and self._check(signature, data, "sha256", prehashed=False)

    def verify_digest(self, signature: bytes, digest: bytes, hash_name: str) -> bool:
        """True when ``signature`` is valid over the message whose ``hash_name`` digest is ``digest``.

        Ed25519 signs the whole message, so it cannot be checked from a digest (returns False).
        """
        if isinstance(self.key, ed25519.Ed25519PublicKey):
            return False
        return self._check(signature, digest, hash_name, prehashed=True)

    def _check(self, signature: bytes, data: bytes, hash_name: str | None, *, prehashed: bool) -> bool:
        key = self.key
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, data)
                return True
            algorithm = hash_algorithm(hash_name or self.default_hash())
            if prehashed and len(data) != algorithm.digest_size:
                return False
            chosen: hashes.HashAlgorithm | Prehashed = Prehashed(algorithm) if prehashed else algorithm
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, data, ec.ECDSA(chosen))
                return True
            try:
                key.verify(signature, data, padding.PKCS1v15(), chosen)
                return True
            except InvalidSignature:
                pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
                key.verify(signature, data, pss, chosen)
                return True
        except (InvalidSignature, ValueError, UnsupportedAlgorithm):
            return False


def public_key_from_crypto(key: object) -> PublicKey:
    """Wrap a ``cryptography`` public key (for example a certificate's) as a :class:`PublicKey`.

    Raises:
        InvalidArgument: for key types gate does not verify with (DSA, X25519, ...).
    """
    if isinstance(key, ec.EllipticCurvePublicKey):
        key_type = f"ecdsa-{_CURVE_NAME.get(key.curve.name, key.curve.name)}"
    elif isinstance(key, rsa.RSAPublicKey):
        key_type = f"rsa-{key.key_size}"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key_type = "ed25519"
    else:
        raise InvalidArgument("key", f"unsupported key type {type(key).__name__}")
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(
        key=key, spki_der=spki, fingerprint="sha256:" + hashlib.sha256(spki).hexdigest(), key_type=key_type
    )


@lru_cache(maxsize=256)
def load_public_key(data: bytes) -> PublicKey:
    """Parse a public key: PEM ``PUBLIC KEY`` or ``RSA PUBLIC KEY``, or the same as DER.

    Parsed keys are cached by their bytes, so policies that name the same key
    share one object and verification does no parsing.

    Raises:
        InvalidArgument: the bytes are not a supported public key.
    """
    if len(data) > MAX_KEY_BYTES:
        raise InvalidArgument(
            "key", f"{len(data)} bytes is too large for a public key (limit {MAX_KEY_BYTES})"
        )
    stripped = data.strip()
    try:
        if stripped.startswith(b"-----BEGIN"):
            key: object = serialization.load_pem_public_key(stripped)
        else:
            try:
                key = serialization.load_der_public_key(data)
            except ValueError:
                # Bare PKCS#1 RSAPublicKey in DER: wrap it the way the PEM loader would.
                key = serialization.load_pem_public_key(_pem(b"RSA PUBLIC KEY", data))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidArgument("key", f"not a PEM or DER public key ({_first_line(exc)})") from None
    return public_key_from_crypto(key)


def _pem(label: bytes, der: bytes) -> bytes:
    import base64

    body = base64.encodebytes(der)
    return b"-----BEGIN " + label + b"-----\n" + body + b"-----END " + label + b"-----\n"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

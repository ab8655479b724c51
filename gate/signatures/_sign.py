"""Signing gate's own signatures and attestations (pure: key and bytes in, bytes out)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gate.errors import InvalidArgument
from gate.signatures._dsse import pae, split_digest
from gate.signatures._keys import PublicKey, public_key_from_crypto
from gate.signatures._verify import SIMPLE_SIGNING_TYPE

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
_DOCKER_HUB = "index.docker.io"
# Made once: every decision record is signed, and building the algorithm object cost ~6 us a signature.
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True)
class SigningKey:
    """An ECDSA P-256 private key and its public half."""

    private: ec.EllipticCurvePrivateKey = field(repr=False)
    public: PublicKey

    def sign(self, data: bytes) -> bytes:
        """ECDSA-SHA256 over ``data``, DER encoded (cosign's signature encoding)."""
        return self.private.sign(data, _ECDSA_SHA256)


def load_private_key(pem: bytes, password: bytes | None = None) -> SigningKey:
    """Load an ECDSA P-256 private key from PKCS#8 (or SEC1) PEM, optionally encrypted.

    Raises:
        InvalidArgument: not a PEM private key, wrong password, or not ECDSA P-256.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=password or None)
    except TypeError:
        raise InvalidArgument("key", "the key is encrypted: a password is required") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidArgument("key", "not a PEM private key, or the password is wrong") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise InvalidArgument("key", "gate signs with ECDSA P-256 keys only")
    return SigningKey(private=key, public=public_key_from_crypto(key.public_key()))


def _go_json(value: Any) -> bytes:
    # Go's encoding/json: no spaces, UTF-8 kept, and <, >, &, U+2028, U+2029 escaped.
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text.encode()


def docker_reference(image_ref: str) -> str:
    """The repository cosign names in ``docker-reference``: no tag or digest, Docker Hub expanded.

    Raises:
        InvalidArgument: the reference is empty.
    """
    name = image_ref.partition("@")[0]
    head, _, last = name.rpartition("/")
    if ":" in last:
        last = last.partition(":")[0]
    name = f"{head}/{last}" if head else last
    if not name:
        raise InvalidArgument("image_ref", f"no repository in {image_ref!r}")
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = f"{_DOCKER_HUB}/{name if rest else 'library/' + name}"
    elif first == "docker.io":
        name = f"{_DOCKER_HUB}/{rest if '/' in rest else 'library/' + rest}"
    return name


def sign_simple_signing(image_ref: str, image_digest: str, key: SigningKey) -> tuple[bytes, str]:
    """Sign an image the way ``cosign sign --key`` does.

    Returns the simple-signing payload bytes (the signature layer's blob) and the base64
    signature (the ``dev.cosignproject.cosign/signature`` annotation).

    Raises:
        InvalidArgument: the digest is not ``sha256:<hex>``.
    """
    algorithm, hex_value = split_digest(image_digest)
    payload = _go_json(
        {
            "critical": {
                "identity": {"docker-reference": docker_reference(image_ref)},
                "image": {"docker-manifest-digest": f"{algorithm}:{hex_value}"},
                "type": SIMPLE_SIGNING_TYPE,
            },
            "optional": None,
        }
    )
    return payload, base64.b64encode(key.sign(payload)).decode()


def make_statement(
    subjects: Sequence[tuple[str, str]] | Mapping[str, str], predicate_type: str, predicate: Any
) -> bytes:
    """An in-toto Statement v1 for ``subjects`` (name -> ``sha256:<hex>``) as compact JSON.

    Raises:
        InvalidArgument: no subjects, a bad digest or an empty predicate type.
    """
    pairs = list(subjects.items()) if isinstance(subjects, Mapping) else list(subjects)
    if not pairs:
        raise InvalidArgument("subjects", "a statement needs at least one subject")
    if not predicate_type:
        raise InvalidArgument("predicate_type", "must not be empty")
    entries = []
    for name, digest in pairs:
        algorithm, hex_value = split_digest(digest)
        entries.append({"name": name, "digest": {algorithm: hex_value}})
    return _go_json(
        {"_type": STATEMENT_V1, "subject": entries, "predicateType": predicate_type, "predicate": predicate}
    )


def sign_dsse(payload: bytes, payload_type: str, key: SigningKey) -> bytes:
    """A DSSE envelope (JSON bytes) with one ECDSA-SHA256 signature over the PAE."""
    signature = key.sign(pae(payload_type, payload))
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
    }
    # orjson: every decision record is signed, and the stdlib encoder took a third of the
    # signing time copying the ~7 KB base64 payload. Same compact JSON (non-ASCII payload
    # types are written as UTF-8 rather than escaped; both are the same JSON text).
    return orjson.dumps(envelope)

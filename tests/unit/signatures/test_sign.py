"""What gate signs: cosign's exact payload bytes, loadable keys, envelopes that verify."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from gate.errors import InvalidArgument
from gate.signatures import docker_reference, load_private_key, parse_envelope, sign_dsse, sign_simple_signing
from tests.unit.signatures.support import DIGEST

COSIGN = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "cosign" / "cases"


def _pem(key: object, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)  # type: ignore[attr-defined]


def test_payload_is_byte_identical_to_what_cosign_signed() -> None:
    stored = json.loads((COSIGN / "ci-key-rekor-set-valid" / "signature-1").read_bytes()[15:])
    cosign_payload = base64.b64decode(stored["payload"])
    key = load_private_key(_pem(ec.generate_private_key(ec.SECP256R1())))
    payload, _ = sign_simple_signing(
        "192.168.64.2:5000/cosign-signed/key-1:latest",
        "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a",
        key,
    )
    assert payload == cosign_payload


def test_payload_escapes_html_characters_like_go() -> None:
    key = load_private_key(_pem(ec.generate_private_key(ec.SECP256R1())))
    payload, _ = sign_simple_signing("registry.example/a<b>&c", DIGEST, key)
    assert b"a\\u003cb\\u003e\\u0026c" in payload


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("nginx", "index.docker.io/library/nginx"),
        ("nginx:1.25@sha256:" + "ab" * 32, "index.docker.io/library/nginx"),
        ("docker.io/team/app:1", "index.docker.io/team/app"),
        ("team/app", "index.docker.io/team/app"),
        ("localhost:5000/a/b:tag", "localhost:5000/a/b"),
        ("ghcr.io/o/r@sha256:" + "ab" * 32, "ghcr.io/o/r"),
    ],
)
def test_docker_reference_is_the_repository_cosign_names(ref: str, expected: str) -> None:
    assert docker_reference(ref) == expected


def test_encrypted_keys_need_their_password() -> None:
    pem = _pem(ec.generate_private_key(ec.SECP256R1()), b"secret")
    assert load_private_key(pem, b"secret").public.key_type == "ecdsa-p256"
    with pytest.raises(InvalidArgument, match="password is required"):
        load_private_key(pem)
    with pytest.raises(InvalidArgument, match="password is wrong"):
        load_private_key(pem, b"wrong")


@pytest.mark.parametrize(
    "key",
    [ec.generate_private_key(ec.SECP384R1()), ed25519.Ed25519PrivateKey.generate()],
    ids=["p384", "ed25519"],
)
def test_only_p256_keys_sign(key: object) -> None:
    with pytest.raises(InvalidArgument, match="ECDSA P-256"):
        load_private_key(_pem(key))


def test_garbage_private_key_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="not a PEM private key"):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_sign_dsse_writes_a_standard_envelope() -> None:
    key = load_private_key(_pem(ec.generate_private_key(ec.SECP256R1())))
    envelope = sign_dsse(b'{"a":1}', "application/vnd.in-toto+json", key)
    parsed = parse_envelope(envelope)
    assert parsed.payload == b'{"a":1}'
    assert key.public.verify(parsed.signatures[0], parsed.pae())
    assert json.loads(envelope)["signatures"][0]["keyid"] == ""

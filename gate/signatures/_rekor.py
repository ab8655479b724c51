"""Rekor evidence carried beside legacy cosign signatures: the SET bundle and entry bodies."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gate.errors import InvalidArgument
from gate.signatures._json import load_json
from gate.signatures._keys import PublicKey, load_public_key
from gate.signatures._trust import TrustRoot

MAX_REKOR_BUNDLE_BYTES = 1024 * 1024
# RFC 8785 writes numbers as IEEE doubles, so a SET can only sign integers up to 2^53-1.
MAX_SAFE_INTEGER = 2**53 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 9999-12-31T23:59:59Z, the last second a datetime can hold.
MAX_UNIX_TIME = 253402300799

Signer = PublicKey | x509.Certificate


@dataclass(frozen=True)
class RekorEntry:
    """A Rekor entry whose log proof verified.

    ``log_index`` and ``integrated_time`` are None unless something the log signed (its SET,
    or for the index an inclusion proof in a tree that is the whole log) vouches for them.
    ``tree``/``tree_index`` are the checkpoint origin and index an inclusion proof verified
    (empty and None without one, as for SET-only evidence).
    """

    log_index: int | None
    log_id: bytes
    integrated_time: datetime | None
    body: dict[str, Any]
    tree: str = ""
    tree_index: int | None = None


def unix_time(seconds: int, what: str) -> datetime:
    """The UTC moment ``seconds`` after the epoch, for a time a log signed.

    Raises:
        InvalidArgument: before 1970 or after 9999, where no log entry can have been made.
    """
    if not 0 <= seconds <= MAX_UNIX_TIME:
        raise InvalidArgument(
            what, f"got {seconds}, expected Unix seconds from 0 to {MAX_UNIX_TIME} (1970 to 9999)"
        )
    # Arithmetic instead of fromtimestamp(): no platform time_t limits (OverflowError, EOVERFLOW).
    return _EPOCH + timedelta(seconds=seconds)


def b64decode_strict(text: object, what: str) -> bytes:
    """Standard base64 with padding; anything else is an error naming ``what``.

    Line breaks are skipped, as Go's decoder (and so cosign) skips them.

    Raises:
        InvalidArgument: ``text`` is not a string of valid base64.
    """
    if not isinstance(text, str | bytes):
        raise InvalidArgument(what, f"expected a base64 string, got {type(text).__name__}")
    if isinstance(text, str):
        text = text.replace("\n", "").replace("\r", "")
    else:
        text = text.replace(b"\n", b"").replace(b"\r", b"")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(what, "not valid base64") from None


def verify_set(bundle: str | bytes, trust: TrustRoot) -> RekorEntry:
    """Verify a ``dev.sigstore.cosign/bundle`` annotation (Rekor signed entry timestamp).

    The SET is an ECDSA signature by the log key named by ``logID`` over the RFC 8785
    canonical JSON of ``Payload``; the key must have been valid at the integrated time.

    Raises:
        InvalidArgument: the bundle is malformed, names an untrusted log or its SET is invalid.
    """
    raw = bundle.encode() if isinstance(bundle, str) else bundle
    if len(raw) > MAX_REKOR_BUNDLE_BYTES:
        raise InvalidArgument("rekor bundle", f"{len(raw)} bytes exceeds {MAX_REKOR_BUNDLE_BYTES}")
    document = load_json(raw, "rekor bundle")
    if not isinstance(document, dict) or not isinstance(document.get("Payload"), dict):
        raise InvalidArgument("rekor bundle", "expected an object with SignedEntryTimestamp and Payload")
    payload = document["Payload"]
    set_signature = b64decode_strict(
        document.get("SignedEntryTimestamp"), "rekor bundle SignedEntryTimestamp"
    )
    body_b64, integrated, index, log_id_hex = (
        payload.get("body"),
        payload.get("integratedTime"),
        payload.get("logIndex"),
        payload.get("logID"),
    )
    for name, value, kind in (
        ("body", body_b64, str),
        ("integratedTime", integrated, int),
        ("logIndex", index, int),
        ("logID", log_id_hex, str),
    ):
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidArgument(f"rekor bundle Payload.{name}", f"expected {kind.__name__}, got {value!r}")
    assert isinstance(body_b64, str)
    assert isinstance(log_id_hex, str)
    assert isinstance(integrated, int)
    assert isinstance(index, int)
    for name, number in (("integratedTime", integrated), ("logIndex", index)):
        if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
            raise InvalidArgument(
                f"rekor bundle Payload.{name}",
                f"got {number}, expected an integer from -(2^53-1) to 2^53-1 "
                "(what RFC 8785 can canonicalize)",
            )
    try:
        log_id = bytes.fromhex(log_id_hex)
    except ValueError:
        raise InvalidArgument("rekor bundle Payload.logID", "not hex") from None
    key = trust.rekor_key(log_id)
    if key is None:
        raise InvalidArgument("rekor bundle", f"log {log_id_hex[:16]}... is not a trusted Rekor log")
    try:
        canonical = rfc8785.dumps(
            {"body": body_b64, "integratedTime": integrated, "logID": log_id_hex, "logIndex": index}
        )
    except ValueError as exc:
        raise InvalidArgument("rekor bundle Payload", f"cannot be canonicalized (RFC 8785): {exc}") from None
    if not key.key.verify(set_signature, canonical, "sha256"):
        raise InvalidArgument("rekor bundle", "signed entry timestamp does not verify under the Rekor key")
    # Only now is integratedTime the log's word rather than the bundle author's.
    when = unix_time(integrated, "rekor bundle Payload.integratedTime")
    if not key.validity.contains(when):
        raise InvalidArgument("rekor bundle", f"Rekor key {key.name} was not valid at {when.isoformat()}")
    body = load_json(b64decode_strict(body_b64, "rekor bundle Payload.body"), "rekor bundle Payload.body")
    if not isinstance(body, dict):
        raise InvalidArgument("rekor bundle Payload.body", "not a JSON object")
    return RekorEntry(log_index=index, log_id=log_id, integrated_time=when, body=body)


def _signer_der(signer: Signer) -> bytes:
    if isinstance(signer, x509.Certificate):
        return signer.public_bytes(serialization.Encoding.DER)
    return signer.spki_der


def _recorded_signer(content: object, what: str) -> bytes:
    # Rekor records the verifier as base64 of a PEM certificate or PEM public key.
    pem = b64decode_strict(content, what)
    if b"CERTIFICATE" in pem.split(b"\n", 1)[0]:
        try:
            return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
        except ValueError:
            raise InvalidArgument(what, "not a PEM certificate") from None
    return load_public_key(pem).spki_der


def _path(body: object, *keys: str) -> object:
    node: object = body
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def check_hashedrekord(entry: RekorEntry, *, message_sha256: str, signature: bytes, signer: Signer) -> None:
    """Check that a hashedrekord body records this message hash (hex), signature and signer.

    Both Rekor v1 (0.0.1) and Rekor v2 (0.0.2) bodies are understood.

    Without this, a valid SET for some other signature could vouch for this one
    (CVE-2022-36056).

    Raises:
        InvalidArgument: naming the first field that differs.
    """
    body = entry.body
    kind, version = body.get("kind"), body.get("apiVersion")
    if kind == "hashedrekord" and version == "0.0.1":
        algorithm = _path(body, "spec", "data", "hash", "algorithm")
        value = _path(body, "spec", "data", "hash", "value")
        hash_ok = algorithm == "sha256" and value == message_sha256
        sig_field = _path(body, "spec", "signature", "content")
        key = _recorded_signer(
            _path(body, "spec", "signature", "publicKey", "content"), "rekor entry publicKey"
        )
    elif kind == "hashedrekord" and version == "0.0.2":
        spec = _path(body, "spec", "hashedRekordV002")
        recorded_digest = b64decode_strict(_path(spec, "data", "digest"), "rekor entry digest")
        hash_ok = _path(spec, "data", "algorithm") == "SHA2_256" and recorded_digest.hex() == message_sha256
        sig_field = _path(spec, "signature", "content")
        verifier = _path(spec, "signature", "verifier")
        if isinstance(_path(verifier, "publicKey"), dict):
            key = b64decode_strict(_path(verifier, "publicKey", "rawBytes"), "rekor entry publicKey")
        else:
            key = b64decode_strict(_path(verifier, "x509Certificate", "rawBytes"), "rekor entry certificate")
    else:
        raise InvalidArgument("rekor entry", f"expected a hashedrekord entry, got {kind} {version}")
    if not hash_ok:
        raise InvalidArgument("rekor entry", "recorded payload hash does not match sha256 of the payload")
    if b64decode_strict(sig_field, "rekor entry signature") != signature:
        raise InvalidArgument("rekor entry", "recorded signature differs from the signature")
    if key != _signer_der(signer):
        raise InvalidArgument("rekor entry", "recorded public key or certificate differs from the signer")


def _intoto_signature(recorded: object) -> bytes:
    # Rekor's intoto 0.0.2 records each signature as base64 of the envelope's base64 text;
    # a body holding the raw signature's base64 is read as such (it then has to match too).
    once = b64decode_strict(recorded, "rekor entry sig")
    try:
        return base64.b64decode(once, validate=True) if once.isascii() else once
    except (binascii.Error, ValueError):
        return once


def check_dsse_entry(entry: RekorEntry, *, payload: bytes, signatures: list[bytes], signer: Signer) -> None:
    """Check an ``intoto`` (0.0.1, 0.0.2) or ``dsse`` (0.0.1) body against an envelope.

    The payload hash and every signature with its verifier must match; the envelope hash
    itself is over uncanonicalised JSON and cannot be recomputed.

    Raises:
        InvalidArgument: naming the first field that differs.
    """
    body = entry.body
    kind, version = body.get("kind"), body.get("apiVersion")
    payload_hex = hashlib.sha256(payload).hexdigest()
    recorded_sigs: list[tuple[bytes, bytes]] = []
    if kind == "dsse" and version == "0.0.1":
        payload_hash = _path(body, "spec", "payloadHash")
        items = _path(body, "spec", "signatures")
        for item in items if isinstance(items, list) else []:
            sig = b64decode_strict(_path(item, "signature"), "rekor entry signature")
            recorded_sigs.append((sig, _recorded_signer(_path(item, "verifier"), "rekor entry verifier")))
    elif kind == "intoto" and version in ("0.0.1", "0.0.2"):
        content = _path(body, "spec", "content")
        payload_hash = _path(content, "payloadHash") if isinstance(content, dict) else None
        items = _path(content, "envelope", "signatures") if isinstance(content, dict) else None
        for item in items if isinstance(items, list) else []:
            sig = _intoto_signature(_path(item, "sig"))
            recorded_sigs.append((sig, _recorded_signer(_path(item, "publicKey"), "rekor entry publicKey")))
    else:
        raise InvalidArgument("rekor entry", f"unsupported entry type {kind} {version} for an attestation")
    if not isinstance(payload_hash, dict) or payload_hash.get("algorithm") != "sha256":
        raise InvalidArgument("rekor entry", "no sha256 payload hash recorded")
    if payload_hash.get("value") != payload_hex:
        raise InvalidArgument("rekor entry", "recorded payload hash does not match sha256 of the payload")
    if kind == "intoto" and version == "0.0.1":
        # 0.0.1 records the signer once, beside the content, and no signatures.
        recorded = _recorded_signer(_path(body, "spec", "publicKey"), "rekor entry publicKey")
        if recorded != _signer_der(signer):
            raise InvalidArgument("rekor entry", "recorded public key or certificate differs from the signer")
        return
    expected = sorted((sig, _signer_der(signer)) for sig in signatures)
    if sorted(recorded_sigs) != expected:
        raise InvalidArgument("rekor entry", "recorded signatures or verifier differ from the envelope")

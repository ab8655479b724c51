"""DSSE envelopes (exact PAE) and in-toto statements (v0.1 and v1)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from gate.errors import InvalidArgument
from gate.signatures._json import load_json
from gate.signatures._keys import PublicKey
from gate.signatures._rekor import b64decode_strict

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPES = ("https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1")
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024
MAX_SIGNATURES = 16
MAX_SUBJECTS = 4096


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``.

    Lengths are ASCII decimal byte counts of the UTF-8 type and of the decoded payload.
    """
    type_bytes = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    """A parsed DSSE envelope: the decoded payload and the raw signatures."""

    payload_type: str
    payload: bytes = field(repr=False)
    signatures: tuple[bytes, ...] = field(repr=False)

    def pae(self) -> bytes:
        """The bytes each signature signs."""
        return pae(self.payload_type, self.payload)

    def signers(self, keys: tuple[PublicKey, ...], hash_name: str | None = None) -> list[PublicKey]:
        """The keys (each once) that produced at least one valid signature."""
        message = self.pae()
        return [key for key in keys if any(key.verify(sig, message, hash_name) for sig in self.signatures)]


def parse_envelope(data: bytes) -> Envelope:
    """Parse DSSE envelope JSON (``payloadType``, base64 ``payload``, ``signatures[].sig``).

    Raises:
        InvalidArgument: the envelope is malformed, too large or has no signature.
    """
    if len(data) > MAX_ENVELOPE_BYTES:
        raise InvalidArgument("envelope", f"{len(data)} bytes exceeds {MAX_ENVELOPE_BYTES}")
    document = load_json(data, "envelope")
    if not isinstance(document, dict):
        raise InvalidArgument("envelope", "not a JSON object")
    payload_type = document.get("payloadType")
    if not isinstance(payload_type, str):
        raise InvalidArgument("envelope.payloadType", "missing or not a string")
    payload = b64decode_strict(document.get("payload"), "envelope.payload")
    raw_signatures = document.get("signatures")
    if not isinstance(raw_signatures, list) or not raw_signatures:
        raise InvalidArgument("envelope.signatures", "missing or empty")
    if len(raw_signatures) > MAX_SIGNATURES:
        raise InvalidArgument("envelope.signatures", f"{len(raw_signatures)} exceeds {MAX_SIGNATURES}")
    signatures = []
    for index, item in enumerate(raw_signatures):
        if not isinstance(item, dict):
            raise InvalidArgument(f"envelope.signatures[{index}]", "not an object")
        signatures.append(b64decode_strict(item.get("sig"), f"envelope.signatures[{index}].sig"))
    return Envelope(payload_type=payload_type, payload=payload, signatures=tuple(signatures))


@dataclass(frozen=True)
class Statement:
    """An in-toto statement: its type, predicate type, subjects and predicate (any JSON)."""

    type: str
    predicate_type: str
    subjects: tuple[dict[str, Any], ...] = field(repr=False)
    predicate: Any = field(repr=False, default=None)

    def subject_digests(self, algorithm: str = "sha256") -> list[str]:
        """The subjects' digests for ``algorithm`` (only exact keys; other algorithms ignored)."""
        found = []
        for subject in self.subjects:
            digest = subject.get("digest")
            if isinstance(digest, dict) and isinstance(digest.get(algorithm), str):
                found.append(digest[algorithm])
        return found


def parse_statement(payload: bytes) -> Statement:
    """Parse an in-toto Statement v0.1 or v1.

    A string predicate (legacy cosign SPDX) is kept as is. A ``null`` subject entry is an
    error, as in cosign.

    Raises:
        InvalidArgument: the statement is malformed or of another type.
    """
    document = load_json(payload, "statement", "payload is not JSON")
    if not isinstance(document, dict):
        raise InvalidArgument("statement", "not a JSON object")
    statement_type = document.get("_type")
    if statement_type not in STATEMENT_TYPES:
        raise InvalidArgument(
            "statement._type", f"expected one of {list(STATEMENT_TYPES)}, got {statement_type!r}"
        )
    predicate_type = document.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise InvalidArgument("statement.predicateType", "missing or not a string")
    try:
        # Reported with the verdict (printed, stored, sent over gRPC): it must be text.
        predicate_type.encode()
    except UnicodeEncodeError as exc:
        raise InvalidArgument(
            "statement.predicateType",
            f"got a lone surrogate at character {exc.start}, expected text that encodes as UTF-8",
        ) from None
    subjects = document.get("subject")
    if not isinstance(subjects, list):
        raise InvalidArgument("statement.subject", "missing or not a list")
    if len(subjects) > MAX_SUBJECTS:
        raise InvalidArgument("statement.subject", f"{len(subjects)} subjects exceeds {MAX_SUBJECTS}")
    for index, subject in enumerate(subjects):
        if not isinstance(subject, dict):
            raise InvalidArgument(f"statement.subject[{index}]", f"expected an object, got {subject!r}")
    return Statement(
        type=statement_type,
        predicate_type=predicate_type,
        subjects=tuple(subjects),
        predicate=document.get("predicate"),
    )


def sha256_subject(artifact: bytes | None, digest: str | None, what: str) -> tuple[str, str]:
    """The ``sha256:<hex>`` digest (and its hex) of an artifact given as bytes or as its digest.

    ``what`` names the thing verified in the error (``bundles are verified against ...``).

    Raises:
        InvalidArgument: neither or both given, a malformed digest, or not SHA-256.
    """
    if (artifact is None) == (digest is None):
        raise InvalidArgument("artifact", "give the artifact bytes or its digest, not both or neither")
    if digest is None:
        assert artifact is not None
        digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    algorithm, hex_value = split_digest(digest)
    if algorithm != "sha256":
        raise InvalidArgument("digest", f"{what} against sha256 digests, got {algorithm}")
    return digest, hex_value


def split_digest(digest: str) -> tuple[str, str]:
    """``sha256:<hex>`` -> (``sha256``, lowercase hex).

    Raises:
        InvalidArgument: not an ``algorithm:hex`` digest of the right length.
    """
    algorithm, _, hex_value = digest.partition(":")
    sizes = {"sha256": 64, "sha384": 96, "sha512": 128}
    if algorithm not in sizes or len(hex_value) != sizes[algorithm]:
        raise InvalidArgument("digest", f"expected sha256:<64 hex>, got {digest!r}")
    try:
        bytes.fromhex(hex_value)
    except ValueError:
        raise InvalidArgument("digest", f"not hex: {digest!r}") from None
    return algorithm, hex_value.lower()


def check_statement(statement: Statement, *, digest: str, predicate_type: str | None) -> None:
    """Require a subject with this digest and, when given, exactly this predicate type.

    Raises:
        InvalidArgument: no subject matches or the predicate type differs.
    """
    algorithm, hex_value = split_digest(digest)
    if hex_value not in statement.subject_digests(algorithm):
        raise InvalidArgument(
            "statement.subject",
            f"no subject has {algorithm} digest {hex_value} ({len(statement.subjects)} subjects)",
        )
    if predicate_type is not None and statement.predicate_type != predicate_type:
        raise InvalidArgument(
            "statement.predicateType", f"got {statement.predicate_type!r}, expected {predicate_type!r}"
        )

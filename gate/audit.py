"""Proving decisions after the fact: signature checks and replays of recorded decisions.

A decision record holds everything needed to judge it again: the request (an
AdmissionReview's ``request``, or the resources a pipeline Decide evaluated),
the digest of the policy bundle (whose documents gate keeps by digest), and the
ids of the evidence records the rules read. Evidence records never change once
written, so a replay rebuilds exactly the evidence documents the rules saw.

What a replay cannot reproduce exactly is said in its differences: a bundle
gate no longer holds, and ``verifyImages`` rules, which ask the registry again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gate.decisions import (
    BATCH_PREDICATE_TYPE,
    PREDICATE_TYPE,
    SEAL_MEDIA_TYPE,
    Evidence,
    statement,
    statement_payload,
    tree_root,
)
from gate.errors import GateError, InvalidArgument
from gate.evidence import ArtifactEvidence, FindingTally, ScanEvidence, evidence_document, evidence_resolver
from gate.model import Decision, FindingKind, Severity


@dataclass(frozen=True, slots=True)
class DecisionCheck:
    """Whether a decision record's signature holds and matches the record."""

    verified: bool
    reason: str = ""
    signer: str = ""
    statement: bytes = b""


@dataclass(frozen=True, slots=True)
class Replay:
    """The outcome of re-evaluating a recorded decision."""

    recorded: Decision
    replayed: Decision
    differences: tuple[str, ...]
    bundle_found: bool

    @property
    def same(self) -> bool:
        """True when the replay gives the recorded answer and every recorded rule outcome."""
        return not self.differences


def verify_decision(decision: Decision, public_key_pem: bytes) -> DecisionCheck:
    """Check that ``decision`` carries a valid signature by ``public_key_pem`` over its own content.

    A seal (:data:`gate.decisions.SEAL_MEDIA_TYPE`): the batch's envelope must verify, and the
    statement rebuilt from the stored record must lead, through the seal's inclusion proof, to
    the tree root the envelope signs. A record written before seals: its envelope must verify,
    name the request digest as subject, and carry the statement rebuilt from the record. Either
    way a record edited after signing (an answer flipped, a result removed) does not verify.
    """
    if not decision.signature:
        return DecisionCheck(False, "the decision carries no signature (it was recorded without a signer)")
    if not decision.request_digest:
        return DecisionCheck(False, "the decision has no request digest to check the signed subject against")
    try:
        key, document = _key_and_signature(public_key_pem, decision.signature)
    except GateError as error:
        return DecisionCheck(False, error.message)
    if "payloadType" in document:
        return _verify_envelope(decision, key)
    return _verify_seal(statement_payload(decision), document, key)


def verify_statement(statement: bytes, signature: bytes, public_key_pem: bytes) -> DecisionCheck:
    """Check, with no store and no gate, that ``signature`` signs a decision's ``statement``.

    ``statement`` is the canonical JSON of the decision's in-toto Statement (GetDecision's
    ``statement``) and ``signature`` its seal. A record written before seals carries an
    envelope whose payload is the statement itself: that payload is what is checked and
    returned then. The statement of a check that verifies is the record: read the decision
    from it, not from what came beside it.
    """
    try:
        key, document = _key_and_signature(public_key_pem, signature)
    except GateError as error:
        return DecisionCheck(False, error.message)
    if "payloadType" in document:
        return _verify_own_envelope(signature, key)
    return _verify_seal(statement, document, key)


def _verify_own_envelope(signature: bytes, key: Any) -> DecisionCheck:
    """A record signed on its own: the envelope verifies, and its payload is the statement."""
    try:
        signed, subjects = _unverified_subjects(signature)
    except GateError as error:
        return DecisionCheck(False, error.message)
    result = _signed_by(key, signature, f"sha256:{subjects[0]}" if subjects else "", PREDICATE_TYPE)
    if not result.verified:
        return DecisionCheck(False, result.reason)
    return DecisionCheck(True, "", key.fingerprint, signed)


def _key_and_signature(public_key_pem: bytes, signature: bytes) -> tuple[Any, dict[str, Any]]:
    """The caller's public key, parsed, and the signature column's JSON object."""
    from gate.signatures import load_public_key

    try:
        key = load_public_key(public_key_pem)
    except Exception as error:  # a malformed key given by the caller
        raise InvalidArgument("public key", str(error)) from None
    return key, _json_object(signature)


def _json_object(signature: bytes) -> dict[str, Any]:
    try:
        document = json.loads(signature)
    except RecursionError:
        # A stored column is as hostile as any input: "[" * 100000 exhausts the parser's stack.
        raise InvalidArgument(
            "signature", "got JSON nested too deeply to parse, expected a seal or envelope object"
        ) from None
    except ValueError as error:
        raise InvalidArgument("signature", f"not JSON ({error})") from None
    if not isinstance(document, dict):
        raise InvalidArgument("signature", f"got a JSON {type(document).__name__}, expected an object")
    return document


def _verify_envelope(decision: Decision, key: Any) -> DecisionCheck:
    """A record signed on its own (before seals): one envelope over the decision's statement."""
    result = _signed_by(key, decision.signature, decision.request_digest, PREDICATE_TYPE)
    if not result.verified:
        return DecisionCheck(False, result.reason)
    return _matches_record(decision, result.predicate, key.fingerprint)


def _verify_seal(leaf: bytes, document: dict[str, Any], key: Any) -> DecisionCheck:
    """A seal: the batch's envelope signs a root, and ``leaf`` leads to it through the proof."""
    try:
        index, size, proof, envelope = _seal_parts(document)
        signed_root = _tree_root_of(_unverified_subjects(envelope)[1])
    except GateError as error:
        return DecisionCheck(False, error.message)
    result = _signed_by(key, envelope, f"sha256:{signed_root}", BATCH_PREDICATE_TYPE)
    if not result.verified:
        return DecisionCheck(False, result.reason)
    signed_size = result.predicate.get("treeSize") if isinstance(result.predicate, dict) else None
    if signed_size != size:
        return DecisionCheck(
            False, f"seal.treeSize: got {size}, but the signed batch has {signed_size!r} leaves"
        )
    try:
        root = tree_root(leaf, index, size, proof)
    except ValueError as error:
        return DecisionCheck(False, f"seal.proof: {error}")
    if root.hex() != signed_root:
        return DecisionCheck(
            False,
            "the stored record differs from what was signed: its statement does not lead to the signed "
            f"tree root (got sha256:{root.hex()}, signed sha256:{signed_root})",
        )
    return DecisionCheck(True, "", key.fingerprint, leaf)


def _seal_parts(document: dict[str, Any]) -> tuple[int, int, list[bytes], bytes]:
    """The leaf index, tree size, proof and envelope of a seal, checked for shape."""
    media_type = document.get("mediaType")
    if media_type != SEAL_MEDIA_TYPE:
        raise InvalidArgument("seal.mediaType", f"got {media_type!r}, expected {SEAL_MEDIA_TYPE}")
    index, size, proof = _whole(document, "index"), _whole(document, "treeSize"), document.get("proof")
    if not isinstance(proof, list) or not all(_is_sha256_hex(item) for item in proof):
        raise InvalidArgument("seal.proof", "expected a list of SHA-256 hashes in lowercase hex")
    envelope = document.get("envelope")
    if not isinstance(envelope, dict):
        raise InvalidArgument(
            "seal.envelope", f"got {type(envelope).__name__}, expected a DSSE envelope object"
        )
    try:
        encoded = json.dumps(envelope).encode()
    except RecursionError:
        # Parsed just under the recursion limit, it can still be too deep to write back out.
        raise InvalidArgument(
            "seal.envelope", "got JSON nested too deeply to re-encode, expected a DSSE envelope object"
        ) from None
    return index, size, [bytes.fromhex(item) for item in proof], encoded


def _whole(document: dict[str, Any], name: str) -> int:
    value = document.get(name)
    # bool is an int subclass: true is not a leaf index.
    if type(value) is not int or value < 0:
        raise InvalidArgument(f"seal.{name}", f"got {value!r}, expected a whole number")
    return value


def _is_sha256_hex(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _signed_by(key: Any, envelope: bytes, digest: str, predicate_type: str) -> Any:
    """The envelope's check with gate's decision ``key`` as the only trusted signer."""
    from gate.signatures import SignaturePolicy, TrustRoot, verify_attestation

    return verify_attestation(
        envelope,
        digest=digest,
        predicate_type=predicate_type,
        policy=SignaturePolicy(keys=(key,)),
        trust=TrustRoot(),
    )


def _unverified_subjects(envelope: bytes) -> tuple[bytes, list[str]]:
    """An envelope's payload and its statement's SHA-256 subjects, before any signature check."""
    from gate.signatures import parse_envelope, parse_statement

    payload = parse_envelope(envelope).payload
    return payload, parse_statement(payload).subject_digests("sha256")


def _tree_root_of(roots: list[str]) -> str:
    if len(roots) != 1 or not _is_sha256_hex(roots[0]):
        raise InvalidArgument("seal.envelope", f"got subjects {roots!r}, expected one SHA-256 tree root")
    return str(roots[0])


def _matches_record(decision: Decision, signed: Any, signer: str) -> DecisionCheck:
    expected = statement(decision)["predicate"]
    if _normal(signed) != _normal(expected):
        got = signed if isinstance(signed, dict) else {}
        changed = sorted(k for k in expected if _normal(expected.get(k)) != _normal(got.get(k)))
        return DecisionCheck(
            False, f"the stored record differs from what was signed: {', '.join(changed) or 'predicate'}"
        )
    return DecisionCheck(True, "", signer, json.dumps(signed, sort_keys=True).encode())


def _normal(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class RecordedEvidence:
    """The evidence documents of a recorded decision, rebuilt from its evidence ids."""

    def __init__(self, store: Any, decision: Decision) -> None:
        self._store = store
        self._by_digest: dict[str, ArtifactEvidence] = {}
        self._aliases: dict[str, str] = {}
        scans: dict[str, list[Any]] = {}
        for record_id in decision.evidence_ids:
            scan = store.get_scan(record_id)
            if scan is not None:
                scans.setdefault(scan.artifact_digest, []).append(scan)
                continue
            sbom = store.get_sbom(record_id)
            if sbom is not None:
                self._merge(sbom.artifact_digest, sbom=sbom)
                continue
            verification = store.get_verification(record_id)
            if verification is not None:
                self._merge(verification.artifact_digest, verification=verification)
        tallies = store.finding_tallies([s.id for group in scans.values() for s in group])
        for digest, group in scans.items():
            built = tuple(
                ScanEvidence(
                    s,
                    tuple(
                        FindingTally(FindingKind(k), Severity(sev), fix, n)
                        for k, sev, fix, n in tallies.get(s.id, ())
                    ),
                )
                for s in group
            )
            self._merge(digest, scans=built)
        for digest in self._by_digest:
            artifact = store.get_artifact(digest)
            for alias in artifact.aliases if artifact is not None else ():
                self._aliases[alias] = digest

    def _merge(self, digest: str, **parts: Any) -> None:
        current = self._by_digest.get(digest) or ArtifactEvidence(digest)
        self._by_digest[digest] = replace(current, **parts)

    def document(self, image: str) -> dict[str, Any]:
        """The evidence document the rules saw for ``image`` (as far as the records tell)."""
        from policies._images import parse_image

        digest = image.rsplit("@", 1)[1] if "@" in image else None
        if digest is None:
            digest = self._aliases.get(image) or self._aliases.get(parse_image(image)["reference"])
        return evidence_document(image, self._by_digest.get(digest) if digest else None)

    def evidence(self, urls: Sequence[str]) -> Evidence:
        """An evidence context answering the rules' evidence calls from the records."""
        return Evidence(api_calls=evidence_resolver({}, urls=urls, missing=self.document))


def compare(recorded: Decision, replayed: Decision) -> tuple[str, ...]:
    """What differs between a recorded and a replayed decision (answer and rule outcomes)."""
    differences = []
    if recorded.allowed != replayed.allowed:
        differences.append(
            f"answer: recorded {'allowed' if recorded.allowed else 'denied'}, "
            f"replayed {'allowed' if replayed.allowed else 'denied'}"
        )

    def outcomes(decision: Decision) -> Mapping[tuple[str, str, str], str]:
        return {(r.policy, r.rule, r.resource): r.outcome.value for r in decision.results}

    before, after = outcomes(recorded), outcomes(replayed)
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            policy, rule, resource = key
            differences.append(
                f"{policy}/{rule} on {resource}: recorded {before.get(key, 'no result')}, "
                f"replayed {after.get(key, 'no result')}"
            )
    return tuple(differences)

"""What gate signs about decisions: an in-toto Statement per decision, one signature per batch.

Each decision's record is an in-toto Statement (:func:`statement_payload`). The decisions
stored together are sealed together (:func:`seal_all`): their statements are the leaves of a
Merkle tree (RFC 6962 hashing, :mod:`gate.decisions._merkle`), and the signer signs one
Statement whose subject is the tree's root (a DSSE envelope). A decision's signature column
holds its *seal*, a JSON document that proves it on its own::

    {"mediaType": SEAL_MEDIA_TYPE, "envelope": <the batch's DSSE envelope>,
     "index": <leaf index>, "treeSize": <leaves>, "proof": [<hex SHA-256>, ...]}

Why a batch: the ECDSA signature and a ~7 KB envelope per record (its payload repeated the
rule results, in base64) were a third of the CPU of recording a review and half of its row.

Records written before seals existed hold a DSSE envelope over their own statement instead;
``gate audit verify`` checks both. With no signer configured the column stays empty;
``gate audit verify`` then has nothing to check and says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from gate.decisions._merkle import leaf_hash, root_from_proof, tree
from gate.decisions._review import canonical_json, request_digest
from gate.model import (
    ACTION_TEXT,
    OUTCOME_TEXT,
    Decision,
    DecisionTimings,
    decision_text_holds_nul,
    replace_decision,
)

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://gate.dev/attestations/decision/v1"
# The signed Statement of a batch: its subject is the root of the tree over the decisions' statements.
BATCH_PREDICATE_TYPE = "https://gate.dev/attestations/decision-batch/v1"
SEAL_MEDIA_TYPE = "application/vnd.gate.decision-seal.v1+json"
TREE_HASH = "RFC 6962 SHA-256"
_TIMING_FIELDS = tuple(f.name for f in dataclasses.fields(DecisionTimings))


class DecisionSigner(Protocol):
    """Signs decision records (the DSSE signer of the signatures feature implements this)."""

    def sign(self, payload: bytes, payload_type: str) -> bytes:
        """Return the signed envelope (DSSE JSON) over ``payload`` of ``payload_type``."""


def statement(decision: Decision) -> dict[str, Any]:
    """The in-toto Statement of a recorded decision (subject: the request digest).

    Everything an auditor needs to judge the decision is in the predicate: the
    answer, who asked, about what, with which policy bundle and evidence, and
    every rule result. ``request_digest`` must be set.
    """
    return _statement(decision, decision.request_digest)


def _statement(decision: Decision, digest: str) -> dict[str, Any]:
    timings = decision.timings
    algorithm, _, hexdigest = digest.partition(":")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"decision/{decision.id}", "digest": {algorithm: hexdigest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "id": decision.id,
            "allowed": decision.allowed,
            "message": decision.message,
            "stage": decision.stage,
            "decidedAt": decision.decided_at.isoformat(),
            "caller": decision.caller,
            "subject": decision.subject,
            "requestDigest": digest,
            "policyBundleDigest": decision.policy_bundle_digest,
            "evidenceIds": list(decision.evidence_ids),
            "artifactDigests": list(decision.artifact_digests),
            "results": [
                {
                    "policy": r.policy,
                    "rule": r.rule,
                    "outcome": OUTCOME_TEXT[r.outcome],
                    "action": ACTION_TEXT[r.action],
                    "message": r.message,
                    "remediation": r.remediation,
                    "resource": r.resource,
                }
                for r in decision.results
            ],
            # What dataclasses.asdict gives, without its recursive deep copy (~5 us per record).
            "timings": {name: getattr(timings, name) for name in _TIMING_FIELDS},
        },
    }


def statement_payload(decision: Decision) -> bytes:
    """The bytes that are signed: the canonical JSON of :func:`statement`."""
    return canonical_json(statement(decision))


def batch_statement(root: bytes, size: int) -> dict[str, Any]:
    """The Statement signed for a batch: the tree's root as its subject, what the leaves are."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "gate-decision-batch", "digest": {"sha256": root.hex()}}],
        "predicateType": BATCH_PREDICATE_TYPE,
        "predicate": {"treeSize": size, "treeHash": TREE_HASH, "leafPredicateType": PREDICATE_TYPE},
    }


def tree_root(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root a seal's inclusion ``proof`` leads to from the statement ``leaf`` (its canonical JSON).

    Raises:
        ValueError: the index, size and proof do not fit together.
    """
    return root_from_proof(index, size, leaf_hash(leaf), proof)


def seal(decision: Decision, signer: DecisionSigner | None) -> Decision:
    """:func:`seal_all` of one decision (a tree of one leaf, whose proof is empty)."""
    return seal_all([decision], signer)[0]


# The decision's fields stored in text columns; the rest are JSON, which escapes a NUL itself.
_TEXT_FIELDS = ("message", "subject", "caller", "stage")


def storable(decision: Decision) -> Decision:
    """``decision`` with each NUL of its text fields written as the six characters ``\\u0000``.

    PostgreSQL's text columns cannot hold a NUL (SQLite's can), and one can come from what was
    decided about: a policy message quoting an annotation, a resource named by a caller that is
    not the API server. Refused by the database, it failed the whole batch of decisions sharing
    its commit. Escaped here, before the seal, the record, its seal and a later verification agree
    on every backend.
    """
    if not decision_text_holds_nul(decision):
        return decision
    fields = {name: getattr(decision, name).replace("\x00", "\\u0000") for name in _TEXT_FIELDS}
    return replace_decision(decision, **fields)


def seal_all(batch: Sequence[Decision], signer: DecisionSigner | None) -> list[Decision]:
    """The decisions with their request digests set and, when a signer is given, their seals.

    One signature covers every decision of ``batch`` that has none yet; a decision already
    sealed (on the request path, or by an earlier attempt to store it) keeps its seal.

    A NUL in a decision's text fields is written as ``\\u0000`` first (see :func:`storable`).

    Raises:
        Exception: whatever the signer raises (nothing is half sealed).
    """
    batch = [storable(decision) for decision in batch]
    digests = [decision.request_digest or request_digest(decision.request) for decision in batch]
    unsealed = [] if signer is None else [i for i, decision in enumerate(batch) if not decision.signature]
    to_seal = set(unsealed)
    # Those to seal are replaced once, below, with their digest and seal together.
    sealed = [
        decision
        if index in to_seal or digest == decision.request_digest
        else replace_decision(decision, request_digest=digest)
        for index, (decision, digest) in enumerate(zip(batch, digests, strict=True))
    ]
    if not unsealed or signer is None:
        return sealed
    leaves = [leaf_hash(canonical_json(_statement(batch[i], digests[i]))) for i in unsealed]
    root, proofs = tree(leaves)
    size = len(leaves)
    envelope = orjson.Fragment(signer.sign(canonical_json(batch_statement(root, size)), PAYLOAD_TYPE))
    for leaf, (index, proof) in enumerate(zip(unsealed, proofs, strict=True)):
        document = {
            "mediaType": SEAL_MEDIA_TYPE,
            "envelope": envelope,
            "index": leaf,
            "treeSize": size,
            "proof": [sibling.hex() for sibling in proof],
        }
        # One copy of the record, not two.
        sealed[index] = replace_decision(
            batch[index], request_digest=digests[index], signature=orjson.dumps(document)
        )
    return sealed

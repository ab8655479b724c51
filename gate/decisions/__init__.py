"""Admission decisions: AdmissionReview in, allow/deny with Kyverno's messages and a record out.

The core is pure (:func:`parse_review`, :func:`decide`, :func:`failure_outcome`):
bytes and a policy bundle in, a :class:`ReviewOutcome` out. Recording goes
through :class:`DecisionRecorder` (a batch writer over the store port), which
computes request digests and, when a :class:`DecisionSigner` is configured,
seals each batch: every record is an in-toto Statement (:func:`statement_payload`), one
signature covers the batch's Merkle tree, and each record keeps its proof (:func:`seal_all`).
"""

from gate.decisions._acknowledge import (
    AcknowledgedRecorder,
    Acknowledgements,
    after_commit,
    deferred_acknowledgements,
)
from gate.decisions._decide import (
    STAGE,
    AdmissionSettings,
    Evidence,
    EvidenceSource,
    Failure,
    FailureMode,
    ReviewOutcome,
    decide,
    enforces,
    failure_outcome,
    new_decision_id,
    response_json,
    with_waivers,
)
from gate.decisions._recorder import DecisionRecorder, DecisionSink, NoWaitSink, Seal, SealingSink
from gate.decisions._replay import Answered, ReplayGuard
from gate.decisions._review import (
    API_VERSIONS,
    MAX_REVIEW_BYTES,
    MAX_REVIEW_DEPTH,
    AdmissionReview,
    canonical_json,
    parse_review,
    request_digest,
)
from gate.decisions._statement import (
    BATCH_PREDICATE_TYPE,
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    SEAL_MEDIA_TYPE,
    DecisionSigner,
    batch_statement,
    seal,
    seal_all,
    statement,
    statement_payload,
    tree_root,
)
from gate.decisions._writer_process import LocalWriter, WriterProcess

__all__ = [
    "API_VERSIONS",
    "BATCH_PREDICATE_TYPE",
    "MAX_REVIEW_BYTES",
    "MAX_REVIEW_DEPTH",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "SEAL_MEDIA_TYPE",
    "STAGE",
    "AcknowledgedRecorder",
    "Acknowledgements",
    "AdmissionReview",
    "AdmissionSettings",
    "Answered",
    "DecisionRecorder",
    "DecisionSigner",
    "DecisionSink",
    "Evidence",
    "EvidenceSource",
    "Failure",
    "FailureMode",
    "LocalWriter",
    "NoWaitSink",
    "ReplayGuard",
    "ReviewOutcome",
    "Seal",
    "SealingSink",
    "WriterProcess",
    "after_commit",
    "batch_statement",
    "canonical_json",
    "decide",
    "deferred_acknowledgements",
    "enforces",
    "failure_outcome",
    "new_decision_id",
    "parse_review",
    "request_digest",
    "response_json",
    "seal",
    "seal_all",
    "statement",
    "statement_payload",
    "tree_root",
    "with_waivers",
]

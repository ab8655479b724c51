"""Conformance harnesses: run gate's verifier over the cosign and Sigstore case corpora.

``python -m gate.signatures.conformance cosign|sigstore CASES_DIR [--known-gaps FILE]``
prints one line per case that disagrees with its expected verdict and ends with
``N passed, M failed`` (exit status 1 when anything failed). A case listed in the
known-gaps file (YAML mapping case -> reason) counts as failed and prints its reason.
"""

from gate.signatures.conformance._report import CaseResult, Report
from gate.signatures.conformance._run_cosign import run_cosign
from gate.signatures.conformance._run_sigstore import run_sigstore

__all__ = ["CaseResult", "Report", "run_cosign", "run_sigstore"]

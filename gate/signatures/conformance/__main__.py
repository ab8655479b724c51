"""``python -m gate.signatures.conformance cosign|sigstore CASES_DIR [--known-gaps FILE]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gate.errors import GateError
from gate.signatures.conformance._report import load_known_gaps
from gate.signatures.conformance._run_cosign import run_cosign
from gate.signatures.conformance._run_sigstore import run_sigstore


def main(argv: list[str] | None = None) -> int:
    """Run one corpus; print failures and ``N passed, M failed``; 1 if any failed, 2 on usage errors."""
    parser = argparse.ArgumentParser(prog="python -m gate.signatures.conformance", description=__doc__)
    parser.add_argument("corpus", choices=["cosign", "sigstore"])
    parser.add_argument("cases_dir", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case with its reason")
    parser.add_argument("--known-gaps", type=Path, default=None, help="YAML mapping: case name -> reason")
    args = parser.parse_args(argv)
    if not args.cases_dir.is_dir():
        print(f"error: {args.cases_dir} is not a directory", file=sys.stderr)
        return 2
    try:
        gaps = load_known_gaps(args.known_gaps)
    except GateError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    report = (run_cosign if args.corpus == "cosign" else run_sigstore)(args.cases_dir).with_gaps(gaps)
    if not report.results:
        print(f"error: no cases found under {args.cases_dir}", file=sys.stderr)
        return 2
    for line in report.lines(verbose=args.verbose):
        print(line)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())

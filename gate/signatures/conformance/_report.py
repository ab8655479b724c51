"""Per-case outcomes and the summary both harnesses print."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gate.errors import InvalidArgument


@dataclass(frozen=True)
class CaseResult:
    """One case: whether gate's verdict agrees with the expected one, and why not."""

    name: str
    agrees: bool
    expected: str
    reason: str = ""


@dataclass
class Report:
    """All case results of one run, with the known gaps that were applied."""

    results: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        """Cases that agree."""
        return sum(1 for r in self.results if r.agrees)

    @property
    def failed(self) -> int:
        """Cases that disagree (known gaps included)."""
        return len(self.results) - self.passed

    def with_gaps(self, gaps: Mapping[str, str]) -> Report:
        """The report where each known gap counts as failed with the gap's reason."""
        return Report(
            [
                CaseResult(r.name, False, r.expected, f"known gap: {gaps[r.name]}") if r.name in gaps else r
                for r in self.results
            ]
        )

    def lines(self, *, verbose: bool = False) -> list[str]:
        """One line per failed case (per case when ``verbose``), then the summary line."""
        out = [
            f"{'ok  ' if r.agrees else 'FAIL'} {r.name} (expected {r.expected}): {r.reason}".rstrip(": ")
            for r in self.results
            if verbose or not r.agrees
        ]
        out.append(f"{self.passed} passed, {self.failed} failed")
        return out


def load_known_gaps(path: Path | None) -> dict[str, str]:
    """Read a known-gaps YAML mapping (case name -> reason); an empty file means none.

    Raises:
        InvalidArgument: the file is not a mapping of strings.
    """
    if path is None:
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidArgument("known-gaps", f"{path}: {exc}") from None
    if document is None:
        return {}
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in document.items()
    ):
        raise InvalidArgument("known-gaps", f"{path}: expected a mapping of case name to reason")
    return document


def outcome(name: str, expect_pass: bool, verified: bool, reason: str) -> CaseResult:
    """Compare a verdict with the expectation."""
    expected = "pass" if expect_pass else "fail"
    if verified == expect_pass:
        return CaseResult(name, True, expected, reason)
    why = "verified" if verified else f"not verified: {reason}"
    return CaseResult(name, False, expected, why)

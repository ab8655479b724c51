"""Errors of the policy engine, in gate's two families."""

from __future__ import annotations

from gate.errors import EvidenceError


class PolicyLoadError(EvidenceError):
    """A policy, resource or test file is malformed: names the file, line and field path."""

    def __init__(self, source: str, line: int | None, field: str, problem: str) -> None:
        where = source
        if line is not None:
            where += f":{line}"
        if field:
            where += f": {field}"
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.line = line
        self.field = field
        self.problem = problem


class ResourceLimitError(EvidenceError):
    """An input is too deep or too large to evaluate safely."""


class EvaluationError(Exception):
    """A rule could not be evaluated (becomes an ``error`` rule result, never escapes the engine)."""

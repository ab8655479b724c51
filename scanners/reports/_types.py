"""The values report parsing returns: a parsed report, its artifact hints and quality gate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gate.errors import InvalidArgument
from gate.model import Finding, SeverityCounts


class ReportError(InvalidArgument):
    """A report is malformed: ``field`` names the source and the JSON path."""


class UnsupportedReport(ReportError):
    """A document is well-formed but not a report format gate reads (an SBOM, CSV, a rule)."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(where, f"unsupported format: {what}")


@dataclass(frozen=True, slots=True)
class ArtifactHints:
    """What a report says about the scanned artifact; empty strings where it says nothing.

    Attributes:
        name: The artifact as the tool names it (image reference, path, project key).
        type: The tool's artifact type (``container_image``, ``filesystem``, ...).
        image_id: The image config digest (Trivy ``Metadata.ImageID``).
        repo_digests: ``name@sha256:...`` references of the image.
        repo_url: The source repository URL.
        commit: The commit the scan looked at (or the last one for a history scan).
        branch: The branch, where the report names one.
    """

    name: str = ""
    type: str = ""
    image_id: str = ""
    repo_digests: tuple[str, ...] = ()
    repo_url: str = ""
    commit: str = ""
    branch: str = ""


@dataclass(frozen=True, slots=True)
class QualityGateCondition:
    """One condition of a SonarQube quality gate."""

    metric: str
    status: str
    comparator: str = ""
    threshold: str = ""
    actual: str = ""


@dataclass(frozen=True, slots=True)
class QualityGate:
    """A SonarQube quality gate result: ``status`` is ``OK``, ``ERROR``, ``WARN`` or ``NONE``."""

    status: str
    conditions: tuple[QualityGateCondition, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedReport:
    """A scanner report turned into gate's findings.

    Attributes:
        tool: The scanner that wrote the report (``trivy``, ``gitleaks``, ``snyk``,
            ``sonarqube``, or a SARIF producer's name in lower case).
        format: The report shape read, e.g. ``trivy-json``, ``gitleaks-legacy``, ``sarif``.
        tool_version: The scanner's version where the report names it.
        findings: One finding per fingerprint; entries of the report that describe the same
            issue (Snyk dependency paths, a secret in several commits) are merged.
        occurrences: For each fingerprint, how many report entries were merged into it.
        artifact: What the report says about the scanned artifact.
        quality_gate: The SonarQube quality gate, where the report carries one.
        redacted_report: The report with every secret value replaced (valid JSON, safe to store).
        warnings: Things that were unexpected but tolerated.
        entry_counts: Report entries by severity before merging (what the tool's own
            summary counts: every dependency path, every commit a secret is in).
    """

    tool: str
    format: str
    tool_version: str
    findings: tuple[Finding, ...]
    occurrences: Mapping[str, int]
    artifact: ArtifactHints
    redacted_report: bytes
    quality_gate: QualityGate | None = None
    warnings: tuple[str, ...] = ()
    entry_counts: SeverityCounts = field(default_factory=SeverityCounts)

    def counts(self) -> SeverityCounts:
        """Findings by severity (one per fingerprint)."""
        return SeverityCounts.of(finding.severity for finding in self.findings)

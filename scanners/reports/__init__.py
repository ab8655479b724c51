"""Scanner reports to gate findings: parsing, normalisation, redaction and SARIF export.

Pure functions over bytes and values: nothing here runs a process or opens a connection.

* :func:`parse_report` reads a Trivy, gitleaks, Snyk, SonarQube or SARIF report and returns a
  :class:`ParsedReport`: findings on gate's model, artifact hints, the SonarQube quality
  gate, and the report with every secret replaced (safe to store).
* :func:`detect_tool` tells which ``tool`` value a report needs.
* :func:`to_sarif` exports findings as SARIF 2.1.0.

Fingerprints (``sha256:<hex>``) name the issue, not the occurrence:

* vulnerability: advisory id, package without version or qualifiers (purl type, namespace,
  name) and the manifest or jar that declares it (empty for OS packages), plus the workload
  for Kubernetes reports. Not the tool, the installed version, the image tag or the commit.
* secret: tool, rule, file path and the HMAC-SHA256 (under ``secret_key``) of the secret.
  When a report hides the value (``gitleaks --redact``) the start line and column stand in.
* misconfiguration: tool, rule, file, resource and message.
* licence: tool, licence, package name, file.
* code, bug, code smell: tool, rule, file and the tool's stable hash (SonarQube ``hash``,
  SARIF ``partialFingerprints``/``fingerprints``), else a whitespace-normalised snippet hash,
  else the message. Hotspots: SonarQube's hotspot key.

Redacted previews show ``min(4, len // 4)`` leading characters then ``********``.
"""

from scanners.reports._parse import DEFAULT_MAX_BYTES, TOOLS, detect_tool, parse_report
from scanners.reports._sarif_out import to_sarif
from scanners.reports._types import (
    ArtifactHints,
    ParsedReport,
    QualityGate,
    QualityGateCondition,
    ReportError,
    UnsupportedReport,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "TOOLS",
    "ArtifactHints",
    "ParsedReport",
    "QualityGate",
    "QualityGateCondition",
    "ReportError",
    "UnsupportedReport",
    "detect_tool",
    "parse_report",
    "to_sarif",
]
